import type { Context, MiddlewareHandler, Next } from 'hono';
import { bodyLimit as streamingBodyLimit } from 'hono/body-limit';
import { unreadableBody } from '../json.js';
import type { AppEnv } from '../types.js';

/**
 * Refuses request bodies over `maxSize` bytes. A body with a Content-Length
 * is judged by it (Node's HTTP parser never hands on more bytes than it
 * declares) without touching the body, so the JSON parser can still read it
 * straight from the socket; Hono's own middleware turns every body into a web
 * stream first, which costs more than the rest of an issuance. A chunked body
 * is counted as it streams in, by Hono's middleware.
 */
export function bodyLimit(opts: { maxSize: number; onError: (c: Context<AppEnv>) => Response | Promise<Response> }): MiddlewareHandler<AppEnv> {
  const counting = streamingBodyLimit(opts);
  // Hono's middleware reads the whole body before the handler runs: a body that stops part way
  // (the client closed the connection) is the client's fault, not an unhandled error.
  const streaming = async (c: Context<AppEnv>, next: Next) => {
    let reading = true;
    try {
      return await counting(c, () => {
        reading = false;
        return next();
      });
    } catch (e) {
      if (reading) throw unreadableBody();
      throw e;
    }
  };
  return async function bodyLimitMiddleware(c, next) {
    const headers = c.req.raw.headers;
    if (headers.has('transfer-encoding')) return streaming(c, next);
    const length = headers.get('content-length');
    if (length !== null) return /^\d+$/.test(length) && Number(length) <= opts.maxSize ? next() : opts.onError(c);
    // Over HTTP/1.1 a request with neither header has no body; a Request made in
    // process (app.request(), other runtimes) may, so anything but GET and HEAD is counted.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return streaming(c, next);
  };
}
