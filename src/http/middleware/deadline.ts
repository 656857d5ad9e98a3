import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../types.js';

export interface DeadlineOptions {
  /** How long a request may take before it is answered `onTimeout`; 0 = no deadline. */
  ms: number;
  /** Requests that may legitimately run longer (an auditor's walk over the whole log). */
  skip?: (c: Context<AppEnv>) => boolean;
  onTimeout: (c: Context<AppEnv>) => Response | Promise<Response>;
}

/**
 * Answers every request within `ms`. The database's own timeouts bound each
 * statement, but a request makes several in a row and a hung server makes each
 * wait its full time: the caller should hear "try again" long before that.
 *
 * The work is not cancelled: it ends on those timeouts, and whatever it would
 * have answered is dropped unsent. A certificate is only ever sent in the
 * answer, so one minted after its deadline never leaves the server, even if
 * its row commits later (a logged certificate nobody received is harmless;
 * the reverse is what must never happen).
 */
export function deadline(opts: DeadlineOptions): MiddlewareHandler<AppEnv> {
  const watch = deadlineWatch(opts.ms);
  return async function deadlineMiddleware(c, next) {
    if (opts.ms <= 0 || opts.skip?.(c)) return next();
    const work = next();
    const expired = watch(work);
    if (!(await expired)) return;
    work.catch(() => {});
    c.get('log')?.warn('request deadline passed', { request_id: c.get('requestId'), method: c.req.method, path: c.req.path, ms: opts.ms });
    c.res = await opts.onTimeout(c);
  };
}

interface Watched {
  at: number;
  settle: (expired: boolean) => void;
  settled: boolean;
}

/**
 * Every request's deadline is `ms` after its start, so the deadlines come due
 * in the order they were set: one queue and one timer serve them all, instead
 * of a timer set and cleared per request. Resolves true when `work` is still
 * running at its deadline, false when it settled first (rejecting when it
 * failed first). Due within a tick (a fiftieth of `ms`, at most 100 ms) of
 * the deadline.
 */
function deadlineWatch(ms: number): (work: Promise<unknown>) => Promise<boolean> {
  const tick = Math.max(1, Math.min(100, Math.floor(ms / 50)));
  let queue: Watched[] = [];
  let head = 0;
  let timer: NodeJS.Timeout | null = null;
  const sweep = () => {
    const now = performance.now();
    while (head < queue.length && (queue[head]!.settled || queue[head]!.at <= now)) {
      const w = queue[head++]!;
      if (!w.settled) {
        w.settled = true;
        w.settle(true);
      }
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
      clearInterval(timer!);
      timer = null;
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };
  return (work) =>
    new Promise<boolean>((resolve, reject) => {
      const w: Watched = { at: performance.now() + ms, settle: resolve, settled: false };
      queue.push(w);
      timer ??= setInterval(sweep, tick);
      work.then(
        () => {
          if (w.settled) return;
          w.settled = true;
          resolve(false);
        },
        (e) => {
          if (w.settled) return;
          w.settled = true;
          reject(e);
        },
      );
    });
}
