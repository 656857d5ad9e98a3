import { Hono } from 'hono';
import type { AuthService } from '../../services/auth.js';
import { jsonBody } from '../json.js';
import { requireUser } from '../middleware/auth.js';
import type { AppEnv } from '../types.js';
import type { Context } from 'hono';
import { DomainError } from '../../core/errors.js';
import type { MfaRules } from '../../core/policy-types.js';
import { apiSignInRefusal } from '../../core/webauthn.js';

export interface AuthDeps {
  auth: AuthService;
  /** The client's address as rate limits and the audit log see it. */
  clientAddress: (c: Context) => string | null;
  /** The policy's second factors now; absent = totp. */
  mfa?: () => MfaRules;
}

export function authRoutes(deps: AuthDeps) {
  const app = new Hono<AppEnv>();
  app.post('/v1/auth/login', async (c) => {
    const body = await jsonBody(c);
    // Before anything is checked (the same answer for every name): this sign-in cannot end with a passkey.
    const refusal = apiSignInRefusal(deps.mfa?.().login ?? 'totp');
    if (refusal) throw new DomainError('mfa_required', refusal);
    const out = await deps.auth.login({ username: body['username'], password: body['password'], totp: body['totp'], clientAddress: deps.clientAddress(c) });
    return c.json({ token: out.token, expires_at: out.expires_at, username: out.username });
  });
  app.post('/v1/auth/logout', requireUser(deps.auth), async (c) => {
    const token = c.req.header('Authorization')!.slice('Bearer '.length);
    await deps.auth.logout(token, deps.clientAddress(c));
    return c.body(null, 204);
  });
  app.get('/v1/auth/session', requireUser(deps.auth), (c) => {
    const p = c.get('principal');
    return c.json({ username: p.username, groups: p.groups, is_admin: p.isAdmin, is_auditor: p.isAuditor, expires_at: p.expiresAt.toISOString(), auth: p.auth });
  });
  return app;
}
