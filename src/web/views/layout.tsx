// The page frame: skip link, header with navigation and logout, main content.
// Hono JSX escapes every value it renders; nothing here is written raw except
// the constant doctype.

import type { Context } from 'hono';
import { html } from 'hono/html';
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Principal } from '../../services/auth.js';
import { ICON, PASSKEY_SCRIPT, STYLESHEET, TIME_SCRIPT, WEBAUTHN_LIB } from '../static.js';

/** Who is looking, and what the navigation may offer them (the routes check again). */
export interface Viewer {
  who: Principal;
  csrf: string;
  approver: boolean;
  auditor: boolean;
}

export interface LayoutProps {
  title: string;
  viewer: Viewer | null;
  /** The nav entry to mark as the current page. */
  current?: 'home' | 'new' | 'queue' | 'audit' | 'account';
  /** The page has a passkey form: load the WebAuthn scripts. */
  passkey?: boolean;
}

const NavLink: FC<PropsWithChildren<{ href: string; here: boolean }>> = ({ href, here, children }) => (
  <li>
    <a href={href} aria-current={here ? 'page' : undefined}>
      {children}
    </a>
  </li>
);

export const Layout: FC<PropsWithChildren<LayoutProps>> = ({ title, viewer, current, passkey, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      {/* Same-origin requests keep their Origin header (checked on every form post); other sites get no referrer. */}
      <meta name="referrer" content="same-origin" />
      <title>{title} · jit-ssh</title>
      <link rel="icon" href={ICON.path} type="image/svg+xml" />
      <link rel="stylesheet" href={STYLESHEET.path} />
      <script src={TIME_SCRIPT.path} defer></script>
      {passkey && <script src={WEBAUTHN_LIB.path} defer></script>}
      {passkey && <script src={PASSKEY_SCRIPT.path} defer></script>}
    </head>
    <body>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="site">
        <a class="brand" href={viewer ? '/ui' : '/'}>
          jit-ssh
        </a>
        {viewer && (
          <>
            <nav aria-label="Main">
              <ul>
                <NavLink href="/ui" here={current === 'home'}>My access</NavLink>
                <NavLink href="/ui/requests/new" here={current === 'new'}>New request</NavLink>
                {viewer.approver && <NavLink href="/ui/queue" here={current === 'queue'}>Approvals</NavLink>}
                {viewer.auditor && <NavLink href="/ui/audit" here={current === 'audit'}>Audit</NavLink>}
                <NavLink href="/ui/account" here={current === 'account'}>Passkeys</NavLink>
              </ul>
            </nav>
            <span class="who">
              {viewer.who.username}
              {viewer.who.groups.length > 0 ? ` (${viewer.who.groups.join(', ')})` : ''}
            </span>
            <form method="post" action="/ui/logout">
              <input type="hidden" name="csrf" value={viewer.csrf} />
              <button type="submit">Log out</button>
            </form>
          </>
        )}
      </header>
      <main id="main" tabindex={-1}>
        {children}
      </main>
    </body>
  </html>
);

/** Answers with a whole HTML page. */
export function page(c: Context, status: ContentfulStatusCode, props: LayoutProps, body: Child): Response | Promise<Response> {
  return c.html(html`<!doctype html>${(<Layout {...props}>{body}</Layout>)}`, status);
}
