// Whether a certificate was issued and revoked, by serial: what a revocation
// that revoked nothing tells its caller.

import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The certificate with `serial` (decimal, below 2^63): its end and whether it is revoked; undefined when none was issued. */
export async function certificateState(db: Db, serial: string): Promise<{ valid_before: Date; revoked: boolean } | undefined> {
  const row = await db
    .selectFrom('certificates as c')
    .leftJoin('revocations as v', 'v.serial', 'c.serial')
    .select(['c.valid_before', 'v.serial as revoked_serial'])
    .where('c.serial', '=', serial)
    .executeTakeFirst();
  return row && { valid_before: row.valid_before, revoked: row.revoked_serial !== null };
}
