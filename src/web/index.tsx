// The web pages for engineers, approvers and auditors, served under /ui by the
// same service as the API and built on the same services (the API stays the
// source of truth). Every request passes, in this order: security headers →
// same-origin check on posts → session from the cookie → login routes →
// session required → CSRF token on posts → the role a page needs → the page.

import { Hono, type Context } from 'hono';
import { checkCsrf, loadSession, requireApprover, requireAuditor, requireSession, type WebDeps, type WebEnv } from './context.js';
import { pageMessage, WebError, type PageError } from './errors.js';
import { accountRoutes } from './routes/account.js';
import { auditRoutes } from './routes/audit.js';
import { engineerRoutes } from './routes/engineer.js';
import { loginRoutes } from './routes/login.js';
import { ssoRoutes } from './routes/sso.js';
import { queueRoutes } from './routes/queue.js';
import { reportRoutes } from './routes/report.js';
import { requestRoutes } from './routes/request.js';
import { timelineRoutes } from './routes/timeline.js';
import { sameOriginPosts, setWebHeaders, webHeaders } from './security.js';
import { STATIC_FILES } from './static.js';
import { page } from './views/layout.js';

export type { WebDeps } from './context.js';

const TITLES: Partial<Record<number, string>> = { 400: 'Bad input', 401: 'Not logged in', 403: 'Not allowed', 404: 'Not found', 409: 'Conflict', 413: 'Too large', 415: 'Wrong form encoding', 429: 'Too many attempts' };

export function webRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();
  // '/ui/*' also matches '/ui' itself.
  const UI = '/ui/*';

  app.use('/', webHeaders());
  app.use(UI, webHeaders());
  for (const f of STATIC_FILES) {
    app.get(f.path, (c) => c.body(f.body, 200, { 'Content-Type': f.type, 'Cache-Control': 'public, max-age=31536000, immutable' }));
  }
  app.get('/', (c) =>
    page(c, 200, { title: 'Just-in-time SSH access', viewer: null }, (
      <>
        <h1>jit-ssh</h1>
        <p>Just-in-time SSH access: ask for a role for a while, with a reason; policy or an approver says yes; you get a short-lived OpenSSH certificate.</p>
        <ul>
          <li>
            <a href="/ui">Web pages</a>: your access and requests, approvals, audit.
          </li>
          <li>
            <a href="/v1/ca.pub">The CA public key</a> for <code>TrustedUserCAKeys</code>.
          </li>
          <li>The JSON API is under <code>/v1</code>; the <code>jit-ssh</code> command talks to it.</li>
        </ul>
      </>
    )),
  );

  app.get('/ui/', (c) => c.redirect('/ui', 301));
  app.use(UI, sameOriginPosts(deps.publicUrl));
  app.use(UI, loadSession(deps));
  app.route('/', loginRoutes(deps));
  if (deps.oidc) app.route('/', ssoRoutes({ ...deps, oidc: deps.oidc }));
  app.use(UI, requireSession());
  app.use(UI, checkCsrf());
  app.route('/', engineerRoutes(deps));
  app.route('/', requestRoutes(deps));
  if (deps.webauthn) app.route('/', accountRoutes({ ...deps, webauthn: deps.webauthn }));
  app.use('/ui/queue', requireApprover());
  app.route('/', queueRoutes(deps));
  app.use('/ui/audit/*', requireAuditor());
  app.route('/', auditRoutes(deps));
  app.route('/', timelineRoutes(deps));
  app.route('/', reportRoutes(deps));

  app.all('/ui/*', () => {
    throw new WebError(404, 'There is no such page.');
  });

  return app;
}

/** Whether a path is one of the web pages' (which answer errors with a page, not problem+json). */
export const isWebPath = (path: string) => path === '/ui' || path.startsWith('/ui/');

/**
 * A refusal or failure as a page: its status, a title, one sentence for a
 * person, Retry-After when the error says how long to wait, and the pages'
 * headers (the refusal may come before the pages' own middleware ran).
 */
export function webErrorPage(c: Context, e: PageError) {
  setWebHeaders(c);
  for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
  const { status } = e;
  const title = TITLES[status] ?? 'Error';
  const viewer = (c as Context<WebEnv>).get('viewer') ?? null;
  return page(c, status, { title, viewer }, (
    <>
      <h1>{title}</h1>
      <p class={status >= 500 ? 'alert' : 'notice'} role="alert">
        {pageMessage(e)}
      </p>
      <p>
        <a href={viewer ? '/ui' : '/ui/login'}>{viewer ? 'Back to your access' : 'Log in'}</a>
      </p>
    </>
  ));
}

/** The web pages as the app they are mounted into sees them: their routes, the paths they own, their error page. */
export function webPages(deps: WebDeps) {
  return { app: webRoutes(deps), owns: isWebPath, errorPage: webErrorPage };
}
