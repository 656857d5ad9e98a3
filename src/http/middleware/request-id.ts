import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { ServerResponse } from 'node:http';
import { onHardenedServer } from '../response-headers.js';
import type { AppEnv } from '../types.js';

// A caller's (or proxy's) X-Request-Id is kept when it is short and plain, so
// one id follows a request through every log; anything else is replaced.
const ACCEPTABLE = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(header = 'X-Request-Id'): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header(header);
    const id = given && ACCEPTABLE.test(given) ? given : randomUUID();
    c.set('requestId', id);
    // On our server, straight onto Node's headers: c.header() makes the answer carry a web Headers object.
    if (onHardenedServer(c)) (c.env as { outgoing: ServerResponse }).outgoing.setHeader(header, id);
    else c.header(header, id);
    await next();
  };
}
