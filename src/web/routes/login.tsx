// Login and logout. The session is login's own (POST /v1/auth/login makes the
// same kind), for the web pages only: its token is no bearer token for the
// API. The login form is protected from cross-site posts by a double-submit
// token and the same-origin check.

import { Hono } from 'hono';
import { PasswordQueueFullError } from '../../auth/password.js';
import { DomainError, RateLimitedError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import { formWithCsrf, readForm, safeNext, type WebDeps, type WebEnv } from '../context.js';
import { clearLoginCsrf, clearSessionCookie, loginCsrf, loginCsrfCookie, overHttps, sameSecret, setSessionCookie } from '../security.js';
import { Alert, CodeField, Field } from '../views/components.js';
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
      const out = await deps.auth.login({ username: form['username'], password: form['password'], totp: (form['totp'] ?? '').trim(), clientAddress, audience: 'web' });
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
