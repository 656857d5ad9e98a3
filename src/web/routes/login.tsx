// Login and logout. The session is login's own (POST /v1/auth/login makes the
// same kind), for the web pages only: its token is no bearer token for the
// API. The login form is protected from cross-site posts by a double-submit
// token and the same-origin check.

import { Hono } from 'hono';
import { PasswordQueueFullError } from '../../auth/password.js';
import { DomainError, RateLimitedError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import { newToken } from '../../auth/tokens.js';
import type { SessionAuth } from '../../core/auth-method.js';
import { passkeyAtLogin } from '../../core/webauthn.js';
import { CHALLENGE_TTL, type WebauthnService } from '../../services/webauthn.js';
import { formWithCsrf, mfaRules, readForm, safeNext, siteOf, type WebContext, type WebDeps, type WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { clearLoginCsrf, clearPendingSignIn, clearSessionCookie, csrfTokenFor, loginCsrf, loginCsrfCookie, overHttps, pendingSignIn, sameSecret, setPendingSignIn, setSessionCookie } from '../security.js';
import { Alert, CodeField, Field, PasskeySignInForm } from '../views/components.js';
import { page } from '../views/layout.js';

interface LoginForm {
  csrf: string;
  next: string;
  username: string;
  error?: string;
  /** Identity providers to offer ("Sign in with <name>"). */
  providers: Array<{ id: string; name: string }>;
}

const LoginPage = ({ csrf, next, username, error, providers }: LoginForm) => (
  <>
    <h1>Log in</h1>
    {providers.length > 0 && (
      <ul class="sso stack" aria-label="Sign in with your organization">
        {providers.map((p) => (
          <li>
            <a class="button primary" href={`/ui/sso/${p.id}/start?next=${encodeURIComponent(next)}`}>
              Sign in with {p.name}
            </a>
          </li>
        ))}
      </ul>
    )}
    <p>{providers.length > 0 ? 'Or use' : 'Use'} your jit-ssh password and the six-digit code from your authenticator app.</p>
    <Alert message={error} id="login-error" />
    <form method="post" action="/ui/login" class="stack">
      <input type="hidden" name="csrf" value={csrf} />
      <input type="hidden" name="next" value={next} />
      <Field id="username" name="username" label="User name" value={username} autocomplete="username" required maxlength={128} autofocus={!username} invalid={!!error} errorId="login-error" />
      <Field id="password" name="password" label="Password" type="password" autocomplete="current-password" required maxlength={1024} autofocus={!!username} invalid={!!error} errorId="login-error" />
      <CodeField id="totp" invalid={!!error} errorId="login-error" />
      <button type="submit" class="primary">
        Log in
      </button>
    </form>
  </>
);

/** The passkey step of a sign-in: one button; the script asks the authenticator and posts its answer. */
const PasskeyStep = ({ username, csrf, options, error }: { username: string; csrf: string; options: string; error?: string }) => (
  <>
    <h1>Confirm with your passkey</h1>
    <p>
      Signing in as <strong>{username}</strong>. Use one of your passkeys or security keys to finish.
    </p>
    <Alert message={error} id="passkey-error" />
    <PasskeySignInForm action="/ui/login/passkey" csrf={csrf} options={options} />
    <p>
      <a href="/ui/login">Start again</a>
    </p>
  </>
);

/**
 * Whether this web sign-in of `username` must end with a passkey (policy, or the person has one),
 * and if so, starts that step: the first factor's `auth` waits, bound to a cookie of this browser.
 */
export async function passkeyStep(c: WebContext, deps: WebDeps, username: string, begin: () => Promise<{ auth: SessionAuth } | null>, next: string): Promise<boolean> {
  const wa = deps.webauthn;
  const login = mfaRules(deps).login;
  if (!wa) {
    if (login === 'webauthn') throw new WebError(403, 'This server’s policy asks for a passkey to sign in, and passkeys are not available here.');
    return false;
  }
  if (!passkeyAtLogin(login, await wa.hasPasskey(username))) return false;
  const first = await begin();
  if (!first) return false;
  const token = newToken();
  await wa.beginLogin({ username, binding: token, auth: first.auth, next });
  setPendingSignIn(c, overHttps(c, deps.publicUrl), token, CHALLENGE_TTL);
  return true;
}

/** Revokes a session; one that has already ended is fine. */
async function endSession(deps: WebDeps, token: string, clientAddress: string | null): Promise<void> {
  await deps.auth.logout(token, clientAddress, 'web').catch((e: unknown) => {
    if (!(e instanceof DomainError && e.code === 'unauthenticated')) throw e;
  });
}

export function loginRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();
  const providers = () => deps.oidc?.issuers() ?? [];

  app.get('/ui/login', (c) => {
    if (c.get('viewer')) return c.redirect('/ui', 303);
    const csrf = loginCsrf(c, overHttps(c, deps.publicUrl));
    return page(c, 200, { title: 'Log in', viewer: null }, <LoginPage csrf={csrf} next={safeNext(c.req.query('next'))} username="" providers={providers()} />);
  });

  app.post('/ui/login', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    const form = await readForm(c);
    const again = (status: 400 | 401 | 403 | 429 | 503, error: string, renew = false) =>
      page(c, status, { title: 'Log in', viewer: null }, <LoginPage csrf={loginCsrf(c, secure, renew)} next={safeNext(form['next'])} username={form['username'] ?? ''} error={error} providers={providers()} />);
    if (!sameSecret(form['csrf'], loginCsrfCookie(c, secure))) {
      // A new token replaces the refused one, in the cookie and the re-shown form, so the next try works (cookies must be enabled).
      return again(403, 'The login form had expired or did not come from this site. Please try again (cookies must be enabled).', true);
    }
    // Outside the try: an unreadable proxy chain is its own error page, not "enter your user name".
    const clientAddress = deps.clientAddress(c);
    try {
      const input = { username: form['username'], password: form['password'], totp: (form['totp'] ?? '').trim(), clientAddress, audience: 'web' as const };
      // Where a passkey must end the sign-in, the password and code are checked (the same way, with the same limits) without a session.
      // A name login would refuse as input (NUL and other control characters) is not looked up here either.
      const plausible = typeof input.username === 'string' && input.username.length > 0 && input.username.length <= 128 && !/[\x00-\x1f\x7f]/.test(input.username);
      if (plausible && (await passkeyStep(c, deps, input.username as string, () => deps.auth.firstFactor(input), safeNext(form['next'])))) {
        clearLoginCsrf(c, secure);
        return c.redirect('/ui/login/passkey', 303);
      }
      const out = await deps.auth.login(input);
      // The session this browser held until now is replaced: end it, or it would live on where no logout reaches.
      const replaced = c.get('sessionToken');
      if (replaced) await endSession(deps, replaced, clientAddress);
      clearLoginCsrf(c, secure);
      setSessionCookie(c, secure, out.token, new Date(out.expires_at), (deps.now ?? (() => new Date()))());
      return c.redirect(safeNext(form['next']), 303);
    } catch (e) {
      if (e instanceof RateLimitedError) {
        c.header('Retry-After', String(e.retryAfter));
        return again(429, `Too many failed logins. Try again in ${Math.max(1, Math.ceil(e.retryAfter / 60))} minute(s).`);
      }
      if (e instanceof PasswordQueueFullError) {
        // Many logins at once: this one was not checked, and nothing was counted against it.
        c.header('Retry-After', String(e.retryAfter));
        return again(503, `The server is busy checking other logins. Try again in ${e.retryAfter} second(s).`);
      }
      if (e instanceof DomainError && (e.code === 'unauthenticated' || e.code === 'invalid_input')) {
        return again(STATUS_OF[e.code] as 400 | 401, e.code === 'invalid_input' ? 'Enter your user name, password and code.' : 'Invalid user name, password or code.');
      }
      throw e;
    }
  });

  if (deps.webauthn) passkeyRoutes(app, { ...deps, webauthn: deps.webauthn });

  // Logout revokes the session server-side; a stale cookie is simply cleared.
  app.post('/ui/logout', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    if (c.get('viewer')) {
      await formWithCsrf(c);
      await endSession(deps, c.get('sessionToken'), deps.clientAddress(c));
    }
    clearSessionCookie(c, secure);
    return c.redirect('/ui/login', 303);
  });

  return app;
}

/** The passkey step of a web sign-in: its page, and the answer's post. */
function passkeyRoutes(app: Hono<WebEnv>, deps: WebDeps & { webauthn: WebauthnService }) {
  const wa = deps.webauthn;
  const expired = () => new WebError(401, 'This sign-in had expired or was already used. Log in again.');

  app.get('/ui/login/passkey', async (c) => {
    const token = pendingSignIn(c, overHttps(c, deps.publicUrl));
    if (!token) throw expired();
    let pending;
    try {
      pending = await wa.loginOptions({ binding: token, site: siteOf(c, deps) });
    } catch (e) {
      if (e instanceof DomainError) throw new WebError(STATUS_OF[e.code], e.message);
      throw e;
    }
    if (!pending) throw expired();
    return page(c, 200, { title: 'Confirm with your passkey', viewer: null, passkey: true }, <PasskeyStep username={pending.username} csrf={csrfTokenFor(token)} options={JSON.stringify(pending.options)} />);
  });

  app.post('/ui/login/passkey', async (c) => {
    const secure = overHttps(c, deps.publicUrl);
    const token = pendingSignIn(c, secure);
    const form = await readForm(c);
    if (!token) throw expired();
    if (!sameSecret(form['csrf'], csrfTokenFor(token))) throw new WebError(403, 'This form’s security token is missing or out of date, so it was refused. Log in again.');
    const clientAddress = deps.clientAddress(c);
    clearPendingSignIn(c, secure);
    try {
      const out = await wa.finishLogin({ binding: token, site: siteOf(c, deps), response: form['webauthn'] ?? '', clientAddress });
      const replaced = c.get('sessionToken');
      if (replaced) await endSession(deps, replaced, clientAddress);
      setSessionCookie(c, secure, out.token, new Date(out.expires_at), (deps.now ?? (() => new Date()))());
      return c.redirect(safeNext(out.next), 303);
    } catch (e) {
      if (e instanceof DomainError && e.code === 'unauthenticated') throw new WebError(401, `${e.message[0]!.toUpperCase()}${e.message.slice(1)}. Log in again.`);
      throw e;
    }
  });
}
