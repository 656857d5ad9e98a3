import { Hono } from 'hono';
import type { Krl } from '../../services/revocation.js';
import type { AppEnv } from '../types.js';

/** The body of `/v1/ca.pub`: what `/v1/ca.pub.sig` signs, byte for byte. */
export function caPublicKeysText(lines: readonly string[]): string {
  return lines.join('\n') + '\n';
}

export interface CaDeps {
  /** `TrustedUserCAKeys` lines: the current signer first, then older keys still trusted. */
  caPublicKeys: () => readonly string[];
  /** SSHSIG (namespace jit-ssh-ca-keys) over the exact bytes of `/v1/ca.pub`, by the current CA key. */
  caPublicKeysSignature: () => Promise<string>;
  /** The current KRL and its detached signature. */
  krl: () => Promise<Krl>;
}

export function caRoutes(deps: CaDeps) {
  return new Hono<AppEnv>()
    .get('/v1/ca.pub', (c) => {
      c.header('Cache-Control', 'public, max-age=300');
      return c.text(caPublicKeysText(deps.caPublicKeys()));
    })
    // Servers refreshing their TrustedUserCAKeys accept a new list only when a key they
    // already trust signed it: a rotation is announced by the old key, never by the network.
    .get('/v1/ca.pub.sig', async (c) => {
      c.header('Cache-Control', 'public, max-age=300');
      return c.text(await deps.caPublicKeysSignature());
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
