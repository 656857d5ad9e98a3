// Login throttling counters, shared by every instance through the database.
// An attempt is counted before its credentials are checked, in one atomic
// statement that also refuses it when the limit is reached: concurrent
// guesses, on one instance or several, see each other, so no burst of
// parallel attempts gets past a lockout or an address limit. A success gives
// its count back.

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

/** An attempt the counters let through, or the reason it was refused and the seconds to wait. */
export type Attempt = { ok: true } | { ok: false; reason: 'locked' | 'too_many_attempts'; retryAfter: number };

/** How long to wait when attempts still being checked fill the allowance (each takes well under this). */
const IN_FLIGHT_RETRY_SECONDS = 5;

/**
 * Counts an attempt for a user name as a consecutive failure before it is
 * checked. Refused while the name is locked, or when `threshold` failures
 * (finished or still being checked) are already counted.
 */
export async function beginUserAttempt(db: Db, key: string, now: Date, threshold: number): Promise<Attempt> {
  const { rows } = await sql<{ failures: number }>`
    insert into login_throttle as t (key, failures, lockouts, locked_until, window_start)
    values (${key}, 1, 0, null, ${now})
    on conflict (key) do update set failures = t.failures + 1
      where (t.locked_until is null or t.locked_until <= ${now}) and t.failures < ${threshold}
    returning failures`.execute(db);
  if (rows.length > 0) return { ok: true };
  const state = await getThrottle(db, key);
  if (state?.lockedUntil && state.lockedUntil > now) return { ok: false, reason: 'locked', retryAfter: Math.ceil((state.lockedUntil.getTime() - now.getTime()) / 1000) };
  return { ok: false, reason: 'too_many_attempts', retryAfter: IN_FLIGHT_RETRY_SECONDS };
}

/**
 * An attempt begun with beginUserAttempt failed: its failure is already
 * counted; if the count has reached `threshold` the name is locked for
 * base × 2^(earlier lockouts), capped at `maxSeconds`, and the count starts
 * again. Returns the lock's end when this failure locked it.
 */
export async function failUserAttempt(db: Db, key: string, now: Date, threshold: number, baseSeconds: number, maxSeconds: number): Promise<Date | null> {
  const { rows } = await sql<{ locked_until: Date }>`
    update login_throttle set
      failures = 0,
      lockouts = lockouts + 1,
      locked_until = ${now}::timestamptz + make_interval(secs => least(${baseSeconds}::float8 * power(2, least(lockouts, 30)), ${maxSeconds}::float8))
    where key = ${key} and failures >= ${threshold}
    returning locked_until`.execute(db);
  return rows[0]?.locked_until ?? null;
}

/** An attempt begun with beginUserAttempt succeeded where earlier failures still count (a step-up): gives its count back. */
export async function releaseUserAttempt(db: Db, key: string): Promise<void> {
  await sql`update login_throttle set failures = greatest(failures - 1, 0) where key = ${key}`.execute(db);
}

/** A window attempt the counters let through: its window, to give the count back to the same one. */
export type WindowAttempt = { ok: true; windowStart: Date } | { ok: false; retryAfter: number };

/**
 * Counts an attempt in a fixed window of `windowSeconds` before it is
 * checked; refused when `limit` are already counted in the current window.
 */
export async function beginWindowAttempt(db: Db, key: string, now: Date, windowSeconds: number, limit: number): Promise<WindowAttempt> {
  const { rows } = await sql<{ window_start: Date }>`
    insert into login_throttle as t (key, failures, window_start)
    values (${key}, 1, ${now})
    on conflict (key) do update set
      failures = case when t.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds}) then 1 else t.failures + 1 end,
      window_start = case when t.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds}) then ${now} else t.window_start end
      where t.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds}) or t.failures < ${limit}
    returning window_start`.execute(db);
  if (rows[0]) return { ok: true, windowStart: rows[0].window_start };
  const state = await getThrottle(db, key);
  const ends = (state?.windowStart.getTime() ?? now.getTime()) + windowSeconds * 1000;
  return { ok: false, retryAfter: Math.max(1, Math.ceil((ends - now.getTime()) / 1000)) };
}

/** A window attempt that succeeded (or was refused for another reason): gives its count back, if its window is still the current one. */
export async function releaseWindowAttempt(db: Db, key: string, windowStart: Date): Promise<void> {
  await sql`update login_throttle set failures = greatest(failures - 1, 0) where key = ${key} and window_start = ${windowStart}`.execute(db);
}

/** Window attempts taken for several keys. */
export type WindowAttempts = { ok: true; taken: Array<{ key: string; windowStart: Date }> } | { ok: false; key: string; retryAfter: number };

/**
 * A window attempt for each key, each with its own limit: all are counted,
 * or none (a refusal gives back the ones already taken).
 */
export async function beginWindowAttempts(db: Db, limits: ReadonlyArray<{ key: string; limit: number }>, now: Date, windowSeconds: number): Promise<WindowAttempts> {
  const taken: Array<{ key: string; windowStart: Date }> = [];
  for (const { key, limit } of limits) {
    const a = await beginWindowAttempt(db, key, now, windowSeconds, limit);
    if (!a.ok) {
      await releaseWindowAttempts(db, taken);
      return { ok: false, key, retryAfter: a.retryAfter };
    }
    taken.push({ key, windowStart: a.windowStart });
  }
  return { ok: true, taken };
}

export async function releaseWindowAttempts(db: Db, taken: ReadonlyArray<{ key: string; windowStart: Date }>): Promise<void> {
  for (const t of taken) await releaseWindowAttempt(db, t.key, t.windowStart);
}

/** Whether `limit` events are already counted in the current window of `key`. */
export async function windowFull(db: Db, key: string, now: Date, windowSeconds: number, limit: number): Promise<boolean> {
  const s = await getThrottle(db, key);
  return s !== undefined && s.windowStart.getTime() > now.getTime() - windowSeconds * 1000 && s.failures >= limit;
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
