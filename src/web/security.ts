// The web pages' defences, in one place: session and login cookies, CSRF
// tokens, the same-origin check on every form post, and the response headers
// (a strict Content-Security-Policy: our own static files, nothing inline).

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { WebError } from './errors.js';

/**
 * No inline script or style anywhere (not even nonce'd): the pages load one
 * stylesheet and one small script, both from /ui/static. Forms may only post
 * here, nothing may frame the pages, and nothing else loads.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers every /ui answer carries (the app adds nosniff, Referrer-Policy no-referrer, COOP, HSTS). */
export function setWebHeaders(c: Context): void {
  // Once there is a response, on its own headers: c.header() then would rebuild it around a stream.
  const set = c.finalized ? (k: string, v: string) => c.res.headers.set(k, v) : (k: string, v: string) => c.header(k, v);
  set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
  // Pages show who holds access and the audit log: never kept by a cache or the back button.
  if (!c.res.headers.has('Cache-Control')) set('Cache-Control', 'no-store');
}

export function webHeaders(): MiddlewareHandler {
  return async function webHeadersMiddleware(c, next) {
    await next();
    setWebHeaders(c);
  };
}

/** Whether browsers reach us over https: the configured public URL says so, else the request itself. */
export function overHttps(c: Context, publicUrl: string | null): boolean {
  return new URL(publicUrl ?? c.req.url).protocol === 'https:';
}

function expectedOrigin(c: Context, publicUrl: string | null): string {
  return publicUrl ?? new URL(c.req.url).origin;
}

/**
 * Refuses a form post that did not come from our own pages; it stands beside
 * the CSRF token, not instead of it. Sec-Fetch-Site, when the browser sends
 * it, must say same-origin (page script cannot set it). The Origin header
 * (or, without one, the Referer's origin) must be ours. A browser sends
 * `Origin: null` when a page's referrer policy is no-referrer; the pages ask
 * for same-origin (see the layout), and a null Origin is accepted only with
 * Sec-Fetch-Site: same-origin. With no signal at all the post is refused.
 */
export function sameOriginPosts(publicUrl: string | null): MiddlewareHandler {
  return async function sameOriginMiddleware(c, next) {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const expected = expectedOrigin(c, publicUrl);
    const site = c.req.header('Sec-Fetch-Site');
    const origin = c.req.header('Origin');
    const referer = c.req.header('Referer');
    let from: string | null = null;
    if (origin !== undefined && origin !== 'null') from = origin;
    else if (origin === undefined && referer && URL.canParse(referer)) from = new URL(referer).origin;
    const sameOrigin = from === expected || (from === null && origin === 'null' && site === 'same-origin');
    if ((site !== undefined && site !== 'same-origin') || !sameOrigin) {
      throw new WebError(403, 'This form was not sent from this site’s own pages, so it was refused. Open the page again and retry.');
    }
    return next();
  };
}

// ---- Cookies ----

const SESSION = 'jit_ssh_session';
const LOGIN = 'jit_ssh_login';
const SSO = 'jit_ssh_sso';
const MFA = 'jit_ssh_mfa';

/** `__Host-` (Secure, Path=/, no Domain: no other host or subdomain can set or read it) whenever served over https. */
const named = (base: string, secure: boolean) => (secure ? `__Host-${base}` : base);

const cookieOptions = (secure: boolean, maxAge: number) => ({ httpOnly: true, sameSite: 'Strict' as const, secure, path: '/', maxAge });

/** The session cookie holds the login token itself: the session store is login's, and logout revokes it. */
export function setSessionCookie(c: Context, secure: boolean, token: string, expiresAt: Date, now: Date): void {
  setCookie(c, named(SESSION, secure), token, cookieOptions(secure, Math.max(1, Math.floor((expiresAt.getTime() - now.getTime()) / 1000))));
}

export function sessionCookie(c: Context, secure: boolean): string | undefined {
  return getCookie(c, named(SESSION, secure));
}

export function clearSessionCookie(c: Context, secure: boolean): void {
  deleteCookie(c, named(SESSION, secure), { path: '/', secure, httpOnly: true, sameSite: 'Strict' });
}

/**
 * The login form's CSRF secret (double submit: cookie and hidden field must agree); made when the form is shown.
 * `renew` makes a new one even when the browser holds one (after a refusal: the held one is what failed).
 */
export function loginCsrf(c: Context, secure: boolean, renew = false): string {
  const existing = getCookie(c, named(LOGIN, secure));
  if (!renew && existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const fresh = randomBytes(32).toString('base64url');
  setCookie(c, named(LOGIN, secure), fresh, cookieOptions(secure, 3600));
  return fresh;
}

export function loginCsrfCookie(c: Context, secure: boolean): string | undefined {
  return getCookie(c, named(LOGIN, secure));
}

export function clearLoginCsrf(c: Context, secure: boolean): void {
  deleteCookie(c, named(LOGIN, secure), { path: '/', secure, httpOnly: true, sameSite: 'Strict' });
}

/**
 * The state of the sign-in this browser started at an identity provider: the callback
 * must bring back the same. SameSite=Lax, unlike the others: the provider's redirect
 * back is a cross-site navigation, which Strict cookies do not ride on.
 */
export function setSsoBinding(c: Context, secure: boolean, state: string): void {
  setCookie(c, named(SSO, secure), state, { httpOnly: true, sameSite: 'Lax', secure, path: '/', maxAge: 600 });
}

export function ssoBinding(c: Context, secure: boolean): string | undefined {
  return getCookie(c, named(SSO, secure));
}

export function clearSsoBinding(c: Context, secure: boolean): void {
  deleteCookie(c, named(SSO, secure), { path: '/', secure, httpOnly: true, sameSite: 'Lax' });
}

/** A sign-in waiting for its passkey step: the secret its pending challenge is bound to (see services/webauthn.ts). */
export function setPendingSignIn(c: Context, secure: boolean, token: string, seconds: number): void {
  setCookie(c, named(MFA, secure), token, cookieOptions(secure, seconds));
}

export function pendingSignIn(c: Context, secure: boolean): string | undefined {
  return getCookie(c, named(MFA, secure));
}

export function clearPendingSignIn(c: Context, secure: boolean): void {
  deleteCookie(c, named(MFA, secure), { path: '/', secure, httpOnly: true, sameSite: 'Strict' });
}

// ---- CSRF tokens ----

/**
 * A session's CSRF token: HMAC of a fixed label keyed by the session token.
 * Stateless, differs per session, dies with it, and reveals nothing about
 * the session token (a page's HTML may be cached or shared; the cookie is not).
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('jit-ssh web csrf v1').digest('base64url');
}

/** Compares a submitted secret with the expected one in constant time (both hashed first, so lengths match). */
export function sameSecret(given: unknown, expected: string | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0 || !expected) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
