// The version rows of the signed documents servers fetch (krl_state,
// ca_keys_state: one row each); services/published-version.ts decides when
// a version moves.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type VersionTable = 'krl_state' | 'ca_keys_state';

export interface VersionRow {
  version: string;
  digest: string;
  generated_at: Date;
}

/** The document's version, content digest and publication time, or undefined before its first publication. */
export async function readVersion(db: Db, table: VersionTable): Promise<VersionRow | undefined> {
  const row = await db.selectFrom(table).select(['version', 'digest', 'generated_at']).where('id', '=', 1).executeTakeFirst();
  return row && { version: String(row.version), digest: row.digest, generated_at: new Date(row.generated_at) };
}

/**
 * Publishes the content hashing to `digest` at `at` in one statement: the version stays (and
 * its time) when the stored digest is the same, else it is one more; the first is 1.
 */
export async function publishDigest(db: Db, table: VersionTable, digest: string, at: Date): Promise<{ version: string; generated_at: Date }> {
  const { rows } = await sql<{ version: string; generated_at: Date }>`
    insert into ${sql.table(table)} as k (id, version, digest, generated_at) values (1, 1, ${digest}, ${at})
    on conflict (id) do update set
      version = case when k.digest = ${digest} then k.version else k.version + 1 end,
      generated_at = case when k.digest = ${digest} then k.generated_at else ${at} end,
      digest = ${digest}
    returning version, generated_at`.execute(db);
  return { version: String(rows[0]!.version), generated_at: new Date(rows[0]!.generated_at) };
}
