import type { MiddlewareHandler } from 'hono';
import { problem } from '../problem.js';
import type { AppEnv } from '../types.js';

/**
 * No cross-origin access, ever: the API is for the `jit-ssh` command and
 * scripts, the web pages are same-origin, and a browser on another site must
 * not be able to read an answer (nor send a bearer token it was given). A
 * CORS preflight (OPTIONS with Access-Control-Request-Method) is refused with
 * 403 and no Access-Control-* header, and any such header a route might set
 * is taken off every response (response-headers.ts), so no later change can
 * open it by accident.
 */
export function noCors(): MiddlewareHandler<AppEnv> {
  return async function noCorsMiddleware(c, next) {
    if (c.req.method === 'OPTIONS' && c.req.header('Access-Control-Request-Method') !== undefined) {
      return problem(c, 403, 'cross-origin requests are not allowed');
    }
    return next();
  };
}
