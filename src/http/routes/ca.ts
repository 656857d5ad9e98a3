import { Hono } from 'hono';
import type { AppEnv } from '../types.js';

export interface CaDeps {
  /** `TrustedUserCAKeys` lines: the current signer first, then older keys still trusted. */
  caPublicKeys: () => readonly string[];
}

export function caRoutes(deps: CaDeps) {
  return new Hono<AppEnv>().get('/v1/ca.pub', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.text(deps.caPublicKeys().join('\n') + '\n');
  });
}
