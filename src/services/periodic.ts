// Background work that runs every so often (sealing the audit log, expiring
// requests, webhooks, housekeeping) and must outlive database outages: a run
// never overlaps the one before it (a hung database does not pile runs up),
// a failing run is retried at the next tick, and the log says once that the
// job is failing and once that it has recovered, not once a second.

import { errorFields, type Logger } from '../log.js';

export interface Periodic {
  /** Runs the job now (after a run in progress, if any); rejects with its error. */
  runOnce(): Promise<void>;
  /** No more runs; resolves when the one in progress, if any, has ended. */
  stop(): Promise<void>;
}

export function every(name: string, intervalMs: number, job: () => Promise<unknown>, logger: Logger): Periodic {
  let current: Promise<void> | null = null;
  let failures = 0;
  let firstFailure = 0;
  let stopped = false;
  const run = (): Promise<void> => {
    const previous = current ?? Promise.resolve();
    const next: Promise<void> = previous
      .catch(() => {})
      .then(job)
      .then(
        () => {
          if (failures > 0) logger.info(`${name} resumed`, { failures, down_ms: Date.now() - firstFailure });
          failures = 0;
        },
        (e: unknown) => {
          if (failures++ === 0) {
            firstFailure = Date.now();
            logger.warn(`${name} failed; retrying every ${intervalMs / 1000} s`, errorFields(e));
          } else {
            logger.debug(`${name} failed again`, { failures, ...errorFields(e) });
          }
          throw e;
        },
      )
      .finally(() => {
        if (current === next) current = null;
      });
    current = next;
    return next;
  };
  const timer = setInterval(() => {
    // A run still going (a slow or hung database) is not queued behind: the next tick looks again.
    if (current === null && !stopped) run().catch(() => {});
  }, intervalMs);
  timer.unref();
  return {
    runOnce: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current?.catch(() => {});
    },
  };
}
