import type { MiddlewareHandler } from 'hono';
import type { AuthService, Principal } from '../../services/auth.js';
import { HttpProblem } from '../problem.js';
import type { AppEnv } from '../types.js';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="jit-ssh"' };

/** Requires `Authorization: Bearer <token>` of a live session of an enabled user; sets `principal`. */
export function requireUser(auth: Pick<AuthService, 'authenticate'>): MiddlewareHandler<AppEnv> {
  return async function requireUserMiddleware(c, next) {
    const header = c.req.header('Authorization') ?? '';
    const m = /^Bearer ([^\s]+)$/.exec(header);
    if (!m) throw new HttpProblem(401, 'Unauthorized', 'log in first: Authorization: Bearer <token> is missing', {}, CHALLENGE);
    const principal = await auth.authenticate(m[1]!);
    if (!principal) throw new HttpProblem(401, 'Unauthorized', 'the session has expired or was revoked; log in again', {}, CHALLENGE);
    c.set('principal', principal);
    await next();
  };
}

/** Requires the authenticated principal to pass `allowed` (after requireUser). */
export function requireRole(allowed: (p: Principal) => boolean, what: string): MiddlewareHandler<AppEnv> {
  return async function requireRoleMiddleware(c, next) {
    if (!allowed(c.get('principal'))) throw new HttpProblem(403, 'Forbidden', `only ${what} may do this`);
    await next();
  };
}

export const admins = (p: Principal) => p.isAdmin;
export const auditors = (p: Principal) => p.isAuditor || p.isAdmin;
