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
  return async function deadlineMiddleware(c, next) {
    if (opts.ms <= 0 || opts.skip?.(c)) return next();
    let timer: NodeJS.Timeout | undefined;
    const work = next().then(() => 'done' as const);
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), opts.ms);
    });
    const first = await Promise.race([work, expired]);
    clearTimeout(timer);
    if (first === 'done') return;
    // Errors of the abandoned work were answered by onError into a response nobody reads.
    work.catch(() => {});
    c.get('log')?.warn('request deadline passed', { request_id: c.get('requestId'), method: c.req.method, path: c.req.path, ms: opts.ms });
    c.res = await opts.onTimeout(c);
  };
}
