import { Hono } from 'hono';
import type { Krl } from '../../services/revocation.js';
import type { AppEnv } from '../types.js';

export interface CaDeps {
  /** `TrustedUserCAKeys` lines: the current signer first, then older keys still trusted. */
  caPublicKeys: () => readonly string[];
  /** The current KRL and its detached signature. */
  krl: () => Promise<Krl>;
}

export function caRoutes(deps: CaDeps) {
  return new Hono<AppEnv>()
    .get('/v1/ca.pub', (c) => {
      c.header('Cache-Control', 'public, max-age=300');
      return c.text(deps.caPublicKeys().join('\n') + '\n');
    })
    .get('/v1/krl', async (c) => {
      const k = await deps.krl();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Krl-Version', k.version);
      return c.body(new Uint8Array(k.krl), 200, { 'Content-Type': 'application/octet-stream' });
    })
    .get('/v1/krl.sig', async (c) => {
      const k = await deps.krl();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Krl-Version', k.version);
      return c.text(k.signature);
    });
}
