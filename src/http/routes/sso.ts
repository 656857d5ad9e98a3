// Sign-in through an identity provider, for the `jit-ssh login --sso` helper
// (src/cli/client/sso.ts). The browser half of the loopback flow
// (GET /v1/auth/sso/start and the callback) is served with the web pages.

import { Hono, type Context } from 'hono';
import type { MfaRules } from '../../core/policy-types.js';
import type { OidcService } from '../../services/oidc.js';
import { jsonBody } from '../json.js';
import type { AppEnv } from '../types.js';

export interface SsoDeps {
  /** null/absent = standalone: no identity provider configured. */
  oidc?: OidcService | null;
  clientAddress: (c: Context) => string | null;
  /** The policy's second factors now; absent = totp. */
  mfa?: () => MfaRules;
}

export function ssoRoutes(deps: SsoDeps) {
  const app = new Hono<AppEnv>();
  const { oidc } = deps;
  app.get('/v1/auth/sso', (c) => c.json({ issuers: oidc ? oidc.issuers() : [] }));
  if (!oidc) return app;
  // Under mfa.login: webauthn the helper's sign-ins end on jit-ssh's passkey page (the service
  // refuses a loopback code whose sign-in did not); the password login stays refused (http/routes/auth.ts).
  app.post('/v1/auth/sso/exchange', async (c) => {
    const body = await jsonBody(c);
    return c.json(await oidc.exchange(body['code'], body['code_verifier'], deps.clientAddress(c)));
  });
  app.post('/v1/auth/sso/device', async (c) => {
    const body = await jsonBody(c);
    return c.json(await oidc.startDevice(body['issuer'], deps.clientAddress(c)));
  });
  app.post('/v1/auth/sso/device/token', async (c) => {
    const body = await jsonBody(c);
    return c.json(await oidc.pollDevice(body['handle'], deps.clientAddress(c)));
  });
  return app;
}
