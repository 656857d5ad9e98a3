// Sign-in through an identity provider in the browser: "Sign in with <name>"
// on the login page (/ui/sso/:id/start), the helper's loopback start
// (/v1/auth/sso/start), and the one callback both come back to. The state
// sent to the provider is also kept in a cookie of this browser, so only the
// browser that started a sign-in can finish it; PKCE, the nonce and the ID
// token are checked by the service (openid-client).

import { Hono } from 'hono';
import { DomainError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import type { OidcService } from '../../services/oidc.js';
import { safeNext, type WebDeps, type WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { clearSsoBinding, overHttps, setSessionCookie, setSsoBinding, ssoBinding } from '../security.js';
import { passkeyStep } from './login.js';

/** The service's refusals as pages, in its words (they are written for a person). */
async function orPage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof DomainError && e.code !== 'unavailable') throw new WebError(STATUS_OF[e.code], e.message);
    throw e;
  }
}

export function ssoRoutes(deps: WebDeps & { oidc: OidcService }) {
  const app = new Hono<WebEnv>();
  const { oidc } = deps;

  app.get('/ui/sso/:id/start', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    const { url, state } = await orPage(() => oidc.start({ issuer: c.req.param('id'), purpose: 'web', next: safeNext(c.req.query('next')) }));
    setSsoBinding(c, secure, state);
    return c.redirect(url, 303);
  });

  // The helper's loopback flow: the browser it opened starts here (see src/cli/client/sso.ts).
  app.get('/v1/auth/sso/start', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    const q = c.req.query();
    const { url, state } = await oidc.start({ issuer: q['issuer'], purpose: 'cli', cli: { redirectUri: q['redirect_uri'], codeChallenge: q['code_challenge'], state: q['state'] } });
    setSsoBinding(c, secure, state);
    return c.redirect(url, 303);
  });

  app.get('/ui/sso/callback', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    const binding = ssoBinding(c, secure);
    clearSsoBinding(c, secure);
    const clientAddress = deps.clientAddress(c);
    const out = await orPage(() => oidc.finish(new URL(c.req.url).searchParams, binding, clientAddress));
    if (out.purpose === 'cli') return c.redirect(out.redirect, 303);
    // The provider's sign-in (and its MFA) is not proof for jit-ssh where policy asks for a passkey:
    // the session it made is ended at once, and its way of signing in waits for the passkey step.
    const held = out.session.token;
    const passkey = await passkeyStep(c, deps, out.session.username, async () => {
      const p = await deps.auth.authenticate(held, 'web');
      await deps.auth.logout(held, clientAddress, 'web').catch(() => {});
      return p && { auth: p.auth };
    }, safeNext(out.next));
    const replaced = c.get('sessionToken');
    if (replaced) await deps.auth.logout(replaced, clientAddress, 'web').catch(() => {});
    if (!passkey) setSessionCookie(c, secure, out.session.token, new Date(out.session.expires_at), (deps.now ?? (() => new Date()))());
    // The session cookie is SameSite=Strict: a redirect at the end of the provider's
    // (cross-site) redirects would not carry it. A page of ours moves on instead, same-site.
    const next = passkey ? '/ui/login/passkey' : safeNext(out.next);
    return c.html(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${next}"><title>Signed in · jit-ssh</title></head><body><p>${passkey ? `Finish signing in as ${out.session.username} with your passkey.` : `Signed in as ${out.session.username}.`} <a href="${next}">Continue</a></p></body></html>`,
    );
  });

  return app;
}

