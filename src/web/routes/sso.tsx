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
import { readForm, safeNext, siteOf, type WebDeps, type WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { clearSsoBinding, csrfTokenFor, overHttps, sameSecret, setSessionCookie, setSsoBinding, ssoBinding } from '../security.js';
import { PasskeySignInForm } from '../views/components.js';
import { page } from '../views/layout.js';
import { passkeyStep } from './login.js';

/** The passkey step of the helper's device sign-in: the provider's part is done, the passkey ends it. */
const CliPasskeyStep = ({ username, action, csrf, options }: { username: string; action: string; csrf: string; options: string }) => (
  <>
    <h1>Confirm with your passkey</h1>
    <p>
      Signing in <code>jit-ssh login --sso</code> as <strong>{username}</strong>. Use one of your passkeys or security keys to finish; the terminal then holds the session.
    </p>
    <PasskeySignInForm action={action} csrf={csrf} options={options} />
  </>
);

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

  // The helper's device sign-in, where a passkey must end it (the helper prints this page's URL).
  const expired = () => new WebError(401, 'This sign-in had expired or was already used. Run jit-ssh login --sso again.');
  app.get('/ui/sso/passkey/:handle', async (c) => {
    const handle = c.req.param('handle');
    const pending = deps.webauthn ? await orPage(() => oidc.passkeyOptions(handle, siteOf(c, { ...deps, webauthn: deps.webauthn! }))) : null;
    if (!pending) throw expired();
    return page(c, 200, { title: 'Confirm with your passkey', viewer: null, passkey: true }, <CliPasskeyStep username={pending.username} action={`/ui/sso/passkey/${handle}`} csrf={csrfTokenFor(handle)} options={JSON.stringify(pending.options)} />);
  });
  app.post('/ui/sso/passkey/:handle', async (c) => {
    const handle = c.req.param('handle');
    const form = await readForm(c);
    if (!deps.webauthn) throw expired();
    if (!sameSecret(form['csrf'], csrfTokenFor(handle))) throw new WebError(403, 'This form’s security token is missing or out of date, so it was refused. Open the link the terminal printed again.');
    const done = await orPage(async () => {
      try {
        return await oidc.finishPasskey(handle, siteOf(c, { ...deps, webauthn: deps.webauthn! }), form['webauthn'] ?? '', deps.clientAddress(c));
      } catch (e) {
        // The loopback helper waits at its listener: it is told of the refusal there.
        const redirect = (e as { redirect?: unknown }).redirect;
        if (typeof redirect === 'string') return { username: '', redirect };
        throw e;
      }
    });
    // A page moves on to the helper's listener (the pages' form-action policy stops a form post's redirect off this site).
    if (done.redirect) {
      const to = done.redirect.replace(/[<>&"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
      return c.html(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${to}"><title>Back to the terminal · jit-ssh</title></head><body><p><a href="${to}">Continue</a></p></body></html>`);
    }
    return page(c, 200, { title: 'Signed in', viewer: null }, (
      <>
        <h1>Signed in</h1>
        <p>
          <code>jit-ssh login --sso</code> is signed in as <strong>{done.username}</strong>. You can close this tab and go back to the terminal.
        </p>
      </>
    ));
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

