// Servers' enrollment tokens and renewal credentials (host_enrollments). The
// secrets themselves never reach the database: only their SHA-256.

import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, HostEnrollmentsTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type HostEnrollmentRow = Selectable<HostEnrollmentsTable>;

export async function insertEnrollment(db: Db, row: Insertable<HostEnrollmentsTable>): Promise<void> {
  await db.insertInto('host_enrollments').values(row).execute();
}

/**
 * Spends a token: one conditional UPDATE, so of two instances given the same
 * token at once exactly one gets the row (the other waits for its commit,
 * then finds it used). Only a token that covers every name asked for is
 * spent; undefined when none matched.
 */
export async function spendToken(db: Db, tokenHash: Buffer, names: string[], renewalHash: Buffer, now: Date, from: string | null): Promise<HostEnrollmentRow | undefined> {
  return db
    .updateTable('host_enrollments')
    .set({ used_at: now, used_from: from, renewal_hash: renewalHash })
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where(sql<boolean>`names @> ${sql.val(names)}::text[]`)
    .returningAll()
    .executeTakeFirst();
}

export async function enrollmentByToken(db: Db, tokenHash: Buffer): Promise<HostEnrollmentRow | undefined> {
  return db.selectFrom('host_enrollments').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** The enrollment whose renewal credential hashes to `renewalHash` and may still renew at `now`, locked for the renewal. */
export async function renewableEnrollment(trx: Transaction<Database>, renewalHash: Buffer, now: Date): Promise<HostEnrollmentRow | undefined> {
  return trx.selectFrom('host_enrollments').selectAll().where('renewal_hash', '=', renewalHash).where('renew_until', '>', now).forUpdate().executeTakeFirst();
}

export async function setRenewUntil(db: Db, id: string, until: Date, renewedAt: Date | null): Promise<void> {
  await db.updateTable('host_enrollments').set({ renew_until: until, ...(renewedAt ? { renewed_at: renewedAt } : {}) }).where('id', '=', id).execute();
}
