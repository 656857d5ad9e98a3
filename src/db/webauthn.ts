// Passkeys (WebAuthn credentials) and the ceremonies in flight.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface StoredCredential {
  id: string;
  username: string;
  name: string;
  publicKey: Uint8Array<ArrayBuffer>;
  signCount: number;
  transports: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
}

type Row = { id: string; username: string; name: string; public_key: Buffer; sign_count: string; transports: string[]; created_at: Date; last_used_at: Date | null };

const asCredential = (r: Row): StoredCredential => ({
  id: r.id,
  username: r.username,
  name: r.name,
  publicKey: new Uint8Array(r.public_key),
  signCount: Number(r.sign_count),
  transports: r.transports,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});

export async function insertCredential(db: Db, c: Omit<StoredCredential, 'lastUsedAt'>): Promise<boolean> {
  const res = await db
    .insertInto('webauthn_credentials')
    .values({ id: c.id, username: c.username, name: c.name, public_key: Buffer.from(c.publicKey), sign_count: String(c.signCount), transports: c.transports, created_at: c.createdAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function credentialsOf(db: Db, username: string): Promise<StoredCredential[]> {
  const rows = await db.selectFrom('webauthn_credentials').selectAll().where('username', '=', username).orderBy('created_at').orderBy('id').execute();
  return rows.map(asCredential);
}

export async function findCredential(db: Db, id: string): Promise<StoredCredential | undefined> {
  const r = await db.selectFrom('webauthn_credentials').selectAll().where('id', '=', id).executeTakeFirst();
  return r && asCredential(r);
}

export async function countCredentials(db: Db, username: string): Promise<number> {
  const r = await db.selectFrom('webauthn_credentials').select((eb) => eb.fn.countAll<string>().as('n')).where('username', '=', username).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function deleteCredential(db: Db, username: string, id: string): Promise<boolean> {
  const res = await db.deleteFrom('webauthn_credentials').where('id', '=', id).where('username', '=', username).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

/** Removes every passkey of `username` (an administrator's MFA reset); the ids removed. */
export async function deleteCredentialsOf(db: Db, username: string): Promise<string[]> {
  const rows = await db.deleteFrom('webauthn_credentials').where('username', '=', username).returning('id').execute();
  return rows.map((r) => r.id).sort();
}

/**
 * Moves the counter from `from` to `to` and marks the credential used, only if it
 * still is `from`: of two assertions racing with one counter value, one wins.
 */
export async function advanceSignCount(db: Db, id: string, from: number, to: number, at: Date): Promise<boolean> {
  const res = await db
    .updateTable('webauthn_credentials')
    .set({ sign_count: String(to), last_used_at: at })
    .where('id', '=', id)
    .where('sign_count', '=', sql<string>`${String(from)}::bigint`)
    .executeTakeFirst();
  return res.numUpdatedRows === 1n;
}

// ---- Ceremonies in flight ----

export type ChallengePurpose = 'register' | 'login' | 'step_up';

export interface Challenge {
  username: string;
  challenge: string;
  data: unknown;
  expiresAt: Date;
}

/** Stores a challenge for (binding, purpose, target), replacing any earlier one. */
export async function putChallenge(db: Db, c: { binding: Buffer; purpose: ChallengePurpose; target: string; username: string; challenge: string; data?: unknown; now: Date; expiresAt: Date }): Promise<void> {
  const values = { binding: c.binding, purpose: c.purpose, target: c.target, username: c.username, challenge: c.challenge, data: JSON.stringify(c.data ?? {}), created_at: c.now, expires_at: c.expiresAt };
  await db
    .insertInto('webauthn_challenges')
    .values(values)
    .onConflict((oc) => oc.columns(['binding', 'purpose', 'target']).doUpdateSet({ username: values.username, challenge: values.challenge, data: values.data, created_at: values.created_at, expires_at: values.expires_at }))
    .execute();
}

/** The live challenge for (binding, purpose, target), without using it. */
export async function readChallenge(db: Db, binding: Buffer, purpose: ChallengePurpose, target: string, now: Date): Promise<Challenge | undefined> {
  const r = await db.selectFrom('webauthn_challenges').selectAll().where('binding', '=', binding).where('purpose', '=', purpose).where('target', '=', target).where('expires_at', '>', now).executeTakeFirst();
  return r && { username: r.username, challenge: r.challenge, data: r.data, expiresAt: r.expires_at };
}

/** Deletes and returns the challenge: it serves once, whoever races for it, live or not. */
export async function takeChallenge(db: Db, binding: Buffer, purpose: ChallengePurpose, target: string, now: Date): Promise<Challenge | undefined> {
  const r = await db.deleteFrom('webauthn_challenges').where('binding', '=', binding).where('purpose', '=', purpose).where('target', '=', target).returningAll().executeTakeFirst();
  return r && r.expires_at > now ? { username: r.username, challenge: r.challenge, data: r.data, expiresAt: r.expires_at } : undefined;
}

export async function pruneChallenges(db: Db, now: Date): Promise<number> {
  const r = await db.deleteFrom('webauthn_challenges').where('expires_at', '<', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
