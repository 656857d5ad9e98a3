// Batching of the hot path's database work. Under load many requests want the
// same kind of statement at once (look up a session, a grant; insert a
// certificate). Each round trip to PostgreSQL costs the CA more CPU than the
// signature (a loopback write is a full trip through the kernel's network
// stack), so requests that arrive while one statement is in flight are served
// by the next, for all of them at once. Nothing is cached: every answer comes
// from a statement run after the request arrived, and a write is acknowledged
// only once the statement holding it has committed.

import { isDatabaseUnavailable } from './errors.js';

/** Collects keys until the event loop turns, then looks them all up with one call. */
export function batchedLookup<K, V>(lookup: (keys: K[]) => Promise<Map<K, V>>, opts: { max?: number } = {}): (key: K) => Promise<V | undefined> {
  const max = opts.max ?? 256;
  let pending: Array<{ key: K; resolve: (v: V | undefined) => void; reject: (e: unknown) => void }> = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    for (let i = 0; i < batch.length; i += max) {
      const part = batch.slice(i, i + max);
      lookup([...new Set(part.map((p) => p.key))]).then(
        (found) => part.forEach((p) => p.resolve(found.get(p.key))),
        (e) => part.forEach((p) => p.reject(e)),
      );
    }
  };
  return (key) =>
    new Promise((resolve, reject) => {
      pending.push({ key, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

/**
 * Writes items in groups: while one group's statement runs, new items queue
 * for the next. When a group fails, each of its items is written alone, so an
 * item fails only for its own fault (a duplicate key, say), never another's;
 * when it fails for want of the database, every item of the group fails at once.
 */
export function batchedWriter<T>(write: (items: T[]) => Promise<void>, opts: { max?: number; concurrency?: number } = {}): (item: T) => Promise<void> {
  const max = opts.max ?? 256;
  // Several groups may be in flight (a pool has several connections); beyond that, items wait and group up.
  const concurrency = opts.concurrency ?? 4;
  let queue: Array<{ item: T; resolve: () => void; reject: (e: unknown) => void }> = [];
  let inFlight = 0;
  const pump = () => {
    while (inFlight < concurrency && queue.length > 0) {
      const group = queue.slice(0, max);
      queue = queue.slice(group.length);
      inFlight++;
      write(group.map((g) => g.item))
        .then(
          () => group.forEach((g) => g.resolve()),
          async (e: unknown) => {
            // Without the database, writing one by one would only fail again, slower; and a statement
            // whose connection broke may or may not have committed: its items fail, none is answered "written".
            if (isDatabaseUnavailable(e)) return group.forEach((g) => g.reject(e));
            if (group.length === 1) return write([group[0]!.item]).then(group[0]!.resolve, group[0]!.reject);
            await Promise.all(group.map((g) => write([g.item]).then(g.resolve, g.reject)));
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };
  return (item) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      // Let the requests of this turn of the event loop join before the first statement leaves.
      if (queue.length === 1) setImmediate(pump);
    });
}
