// The period filters the access review's queries share (db/report-*.ts).
//
// Request ids are ULIDs of the filing time (core/ulid.ts), and grants take
// their request's id, so a time bound on created_at is also a range on the
// primary key: the index the requests table offers for "everything filed in a
// period". The timestamps stay the authoritative filter.

import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { ulidFloor } from '../core/ulid.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** One period [since, until). */
export interface Period {
  since: Date;
  until: Date;
}

/** Requests (as `r`) filed in the period. */
export const requestsIn = (p: Period) =>
  sql<SqlBool>`r.id >= ${ulidFloor(p.since)} and r.id < ${ulidFloor(p.until)} and r.created_at >= ${p.since} and r.created_at < ${p.until}`;

// A grant starts no earlier than its request was filed, so its id is below the
// period's upper ULID bound; grants has no index on starts_at itself.
/** Grants (as `g`) that started in the period. */
export const grantsIn = (p: Period) => sql<SqlBool>`g.starts_at >= ${p.since} and g.starts_at < ${p.until} and g.id < ${ulidFloor(p.until)}`;

/** A grant's (`g`) length in seconds, extensions included. */
export const grantSeconds = sql<number>`extract(epoch from g.ends_at - g.starts_at)::float8`;

/** Runs `fn` in one read-only snapshot, so every query sees the same history while the server keeps writing. */
export function inReadOnlySnapshot<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn);
}
