// Sign-in through an identity provider, for the `jit-ssh login --sso` helper
// (src/cli/client/sso.ts). The browser half of the loopback flow
// (GET /v1/auth/sso/start and the callback) is served with the web pages.

import { Hono, type Context } from 'hono';
import { DomainError } from '../../core/errors.js';
import type { MfaRules } from '../../core/policy-types.js';
import { apiSignInRefusal } from '../../core/webauthn.js';
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
  // The loopback exchange ends in a session of the API that no passkey step precedes: refused where
  // policy asks for a passkey at every sign-in. The device flow ends on jit-ssh's passkey page instead.
  app.use('/v1/auth/sso/exchange', async (_c, next) => {
    if (apiSignInRefusal(deps.mfa?.().login ?? 'totp')) throw new DomainError('mfa_required', 'this server’s policy asks for a passkey at every sign-in (mfa.login: webauthn), which the loopback sign-in cannot give: use jit-ssh login --sso --device, which ends on a page of this server where your passkey confirms it');
    return next();
  });
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
