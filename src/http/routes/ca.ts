import { Hono } from 'hono';
import type { CaKeysDocument } from '../../services/ca-keys.js';
import type { Krl } from '../../services/revocation.js';
import type { AppEnv } from '../types.js';

export interface CaDeps {
  /** The signed CA key list: `/v1/ca.pub` (a TrustedUserCAKeys file) and `/v1/ca.pub.sig`. */
  caKeys: () => Promise<CaKeysDocument>;
  /** The current KRL and its detached signature. */
  krl: () => Promise<Krl>;
}

// Both documents are signed afresh every signing period, and a body must meet
// the signature made over it: no cache may keep one of the pair longer.
export function caRoutes(deps: CaDeps) {
  return new Hono<AppEnv>()
    .get('/v1/ca.pub', async (c) => {
      const d = await deps.caKeys();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Ca-Keys-Version', d.version);
      c.header('X-Signed-At', d.signed_at);
      return c.text(d.text);
    })
    // Servers refreshing their TrustedUserCAKeys accept a new list only when a key they
    // already trust signed it: a rotation is announced by the old key, never by the network.
    .get('/v1/ca.pub.sig', async (c) => {
      const d = await deps.caKeys();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Ca-Keys-Version', d.version);
      c.header('X-Signed-At', d.signed_at);
      return c.text(d.signature);
    })
    .get('/v1/krl', async (c) => {
      const k = await deps.krl();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Krl-Version', k.version);
      c.header('X-Signed-At', k.generated_at);
      return c.body(new Uint8Array(k.krl), 200, { 'Content-Type': 'application/octet-stream' });
    })
    .get('/v1/krl.sig', async (c) => {
      const k = await deps.krl();
      c.header('Cache-Control', 'no-cache');
      c.header('X-Krl-Version', k.version);
      c.header('X-Signed-At', k.generated_at);
      return c.text(k.signature);
    });
}
