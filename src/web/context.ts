// What the web pages are built from, and the per-request steps every route
// goes through: find the session behind the cookie, require it, require a
// role, check the form's CSRF token. Authorization is decided here and again
// by the services; hiding a link is never the check.

import type { Context, MiddlewareHandler } from 'hono';
import type { AuditService } from '../services/audit.js';
import type { AuthService, Principal, StepUpVerifier } from '../services/auth.js';
import type { Caller, RequestService } from '../services/requests.js';
import type { Logger } from '../log.js';
import type { OidcService } from '../services/oidc.js';
import type { Site, WebauthnService } from '../services/webauthn.js';
import type { MfaRules } from '../core/policy-types.js';
import { WebError } from './errors.js';
import { csrfTokenFor, overHttps, sameSecret, sessionCookie } from './security.js';
import type { Viewer } from './views/layout.js';

export interface WebDeps {
  logger: Logger;
  auth: AuthService;
  stepUp: StepUpVerifier;
  requests: RequestService;
  audit: AuditService;
  clientAddress: (c: Context) => string | null;
  /** Sign-in through identity providers; null/absent = standalone. */
  oidc?: OidcService | null;
  /** Passkeys; absent = none offered (and policy asking for them is refused). */
  webauthn?: WebauthnService | null;
  /** The policy's second factors, as in force now; absent = totp for both. */
  mfa?: () => MfaRules;
  /** The origin browsers use (JIT_SSH_PUBLIC_URL); null = each request's own. */
  publicUrl: string | null;
  now?: () => Date;
}

export interface WebEnv {
  Variables: {
    /** Set by the app the pages are mounted into, for every request. */
    requestId: string;
    log: Logger;
    /** The logged-in user (only set with `viewer`). */
    principal: Principal;
    /** The login token from the session cookie (only set with `viewer`). */
    sessionToken: string;
    viewer: Viewer;
    /** The posted form's text fields, once checkCsrf has read them. */
    form: Record<string, string>;
  };
}

export type WebContext = Context<WebEnv>;

/** Finds the live session behind the cookie, if any; pages that need one use requireSession after it. */
export function loadSession(deps: WebDeps): MiddlewareHandler<WebEnv> {
  return async function loadSessionMiddleware(c, next) {
    const token = sessionCookie(c, overHttps(c, deps.publicUrl));
    const who = token ? await deps.auth.authenticate(token, 'web') : null;
    if (token && who) {
      c.set('principal', who);
      c.set('sessionToken', token);
      c.set('viewer', {
        who,
        csrf: csrfTokenFor(token),
        approver: who.isAdmin || deps.requests.decidableRoles(who).length > 0,
        auditor: who.isAuditor || who.isAdmin,
      });
    }
    await next();
  };
}

/** A safe place to come back to after login: one of our own pages, never another site. */
export function safeNext(path: string | undefined): string {
  return path && /^\/ui(\/[A-Za-z0-9._~/-]*)?$/.test(path) && !path.includes('//') && !/\/\.\.?(\/|$)/.test(path) ? path : '/ui';
}

export function requireSession(): MiddlewareHandler<WebEnv> {
  return async function requireSessionMiddleware(c, next) {
    if (c.get('viewer')) return next();
    // A page asked for without a session goes to the login form (the path only; never the query).
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return c.redirect(`/ui/login?next=${encodeURIComponent(safeNext(c.req.path))}`, 303);
    throw new WebError(401, 'Your session has ended. Log in again, then repeat what you were doing.');
  };
}

export function requireAuditor(): MiddlewareHandler<WebEnv> {
  return async function requireAuditorMiddleware(c, next) {
    if (!c.get('viewer').auditor) throw new WebError(403, 'Only auditors may see the audit pages.');
    return next();
  };
}

export function requireApprover(): MiddlewareHandler<WebEnv> {
  return async function requireApproverMiddleware(c, next) {
    if (!c.get('viewer').approver) throw new WebError(403, 'Only approvers named in the policy may see the approval queue.');
    return next();
  };
}

/**
 * The text fields of a urlencoded form (what our forms send); anything else is refused.
 * Browsers send a textarea's line breaks as CRLF; they are read back as the LF the
 * person typed (and the length `maxlength` counted), so a multi-line reason is text.
 */
export async function readForm(c: Context): Promise<Record<string, string>> {
  if (!(c.req.header('Content-Type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new WebError(415, 'Forms must be sent as application/x-www-form-urlencoded.');
  }
  // A body that stops part way (the client closed the connection) is the client's fault, not an unhandled error.
  const body = await c.req.parseBody().catch(() => {
    throw new WebError(400, 'The form could not be read to its end. Send it again.');
  });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v.replace(/\r\n/g, '\n');
  return out;
}

/** Reads the posted form and checks its CSRF token against the session's; refuses with 403 otherwise. */
export async function formWithCsrf(c: WebContext): Promise<Record<string, string>> {
  const form = await readForm(c);
  if (!sameSecret(form['csrf'], c.get('viewer').csrf)) {
    throw new WebError(403, 'This form’s security token is missing or out of date, so it was refused. Open the page again and retry.');
  }
  return form;
}

/** Every form post of a logged-in user must carry the session's CSRF token. */
export function checkCsrf(): MiddlewareHandler<WebEnv> {
  return async function checkCsrfMiddleware(c, next) {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    c.set('form', await formWithCsrf(c));
    return next();
  };
}

export function callerOf(c: WebContext, deps: WebDeps): Caller {
  return { principal: c.get('viewer').who, clientAddress: deps.clientAddress(c) };
}

/** The second factors the policy asks for now. */
export const mfaRules = (deps: WebDeps): MfaRules => deps.mfa?.() ?? { login: 'totp', approval: 'totp' };

/** The RP id and origin passkey ceremonies on this request are checked against. */
export const siteOf = (c: Context, deps: WebDeps & { webauthn: WebauthnService }): Site => deps.webauthn.site(new URL(c.req.url).origin, deps.publicUrl);
