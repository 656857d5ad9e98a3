import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../types.js';

// A caller's (or proxy's) X-Request-Id is kept when it is short and plain, so
// one id follows a request through every log; anything else is replaced.
const ACCEPTABLE = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(header = 'X-Request-Id'): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header(header);
    const id = given && ACCEPTABLE.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.header(header, id);
    await next();
  };
}
