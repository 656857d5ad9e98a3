// Login throttling counters, shared by every instance through the database.
// Each change is one atomic statement, so concurrent failures on several
// instances all count.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface ThrottleState {
  failures: number;
  lockedUntil: Date | null;
  windowStart: Date;
}

export async function getThrottle(db: Db, key: string): Promise<ThrottleState | undefined> {
  const row = await db.selectFrom('login_throttle').select(['failures', 'locked_until', 'window_start']).where('key', '=', key).executeTakeFirst();
  return row && { failures: row.failures, lockedUntil: row.locked_until, windowStart: row.window_start };
}

/**
 * Counts a consecutive failure for a user name (threshold ≥ 2: the first
 * failure only inserts the counter). On reaching `threshold` the
 * name is locked for base × 2^(earlier lockouts), capped at `maxSeconds`, and
 * the count starts again. Returns the lock's end when this failure locked it.
 */
export async function recordUserFailure(db: Db, key: string, now: Date, threshold: number, baseSeconds: number, maxSeconds: number): Promise<Date | null> {
  const { rows } = await sql<{ locked_until: Date | null; locked_now: boolean }>`
    insert into login_throttle as t (key, failures, lockouts, locked_until, window_start)
    values (${key}, 1, 0, null, ${now})
    on conflict (key) do update set
      failures = case when t.failures + 1 >= ${threshold} then 0 else t.failures + 1 end,
      lockouts = case when t.failures + 1 >= ${threshold} then t.lockouts + 1 else t.lockouts end,
      locked_until = case when t.failures + 1 >= ${threshold}
        then ${now}::timestamptz + make_interval(secs => least(${baseSeconds}::float8 * power(2, least(t.lockouts, 30)), ${maxSeconds}::float8))
        else t.locked_until end
    returning locked_until, (failures = 0) as locked_now`.execute(db);
  const row = rows[0]!;
  return row.locked_now ? row.locked_until : null;
}

/** Counts a failure in a fixed window of `windowSeconds`; returns the count in the current window. */
export async function recordWindowFailure(db: Db, key: string, now: Date, windowSeconds: number): Promise<number> {
  const { rows } = await sql<{ failures: number }>`
    insert into login_throttle as t (key, failures, window_start)
    values (${key}, 1, ${now})
    on conflict (key) do update set
      failures = case when t.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds}) then 1 else t.failures + 1 end,
      window_start = case when t.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds}) then ${now} else t.window_start end
    returning failures`.execute(db);
  return rows[0]!.failures;
}

export async function clearThrottle(db: Db, key: string): Promise<void> {
  await db.deleteFrom('login_throttle').where('key', '=', key).execute();
}

/** Drops counters nobody has touched for `idleSeconds` (locks long over, windows long closed). */
export async function pruneThrottle(db: Db, now: Date, idleSeconds: number): Promise<number> {
  const cutoff = new Date(now.getTime() - idleSeconds * 1000);
  const res = await db
    .deleteFrom('login_throttle')
    .where('window_start', '<', cutoff)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', cutoff)]))
    .executeTakeFirst();
  return Number(res.numDeletedRows);
}
