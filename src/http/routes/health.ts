import { Hono } from 'hono';
import { problem } from '../problem.js';
import type { AppEnv } from '../types.js';

/** Not ready for a reason the probe may name (the database being away is not named: that leaks nothing but says little). */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}

export interface HealthDeps {
  /** Resolves when the service can do its work (the database answers); rejects with the reason otherwise. */
  ready: () => Promise<void>;
}

export function healthRoutes(deps: HealthDeps) {
  return new Hono<AppEnv>()
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .get('/readyz', async (c) => {
      try {
        await deps.ready();
        return c.json({ status: 'ready' });
      } catch (e) {
        c.get('log')?.warn('not ready', { request_id: c.get('requestId'), detail: (e as Error).message });
        return problem(c, 503, e instanceof NotReadyError ? e.message : 'the database is not reachable');
      }
    });
}
