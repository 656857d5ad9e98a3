// The headers every answer carries, and the ones none may carry, in one place:
//
// - the security headers (nosniff, no framing by other sites, no referrer,
//   HSTS, COOP/CORP same-origin, ...), set on every answer over whatever a
//   route set;
// - no Access-Control-* header ever (see middleware/no-cors.ts);
// - Cache-Control: no-store on /v1 answers that set none.
//
// On the server these are applied where the answer is written
// (HardenedServerResponse.writeHead), on Node's own header object: applied
// through the web Headers of every response instead, they were a fifth of
// the CPU of a request doing no other work. Where there is no such server
// (app.request() in tests, another runtime), the middleware applies the very
// same rules to the Response; the server test checks both give the same.

import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';

/** As hono/secure-headers sets them by default, with Cross-Origin-Resource-Policy same-origin. */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['origin-agent-cluster', '?1'],
  ['referrer-policy', 'no-referrer'],
  ['strict-transport-security', 'max-age=15552000; includeSubDomains'],
  ['x-content-type-options', 'nosniff'],
  ['x-dns-prefetch-control', 'off'],
  ['x-download-options', 'noopen'],
  ['x-frame-options', 'SAMEORIGIN'],
  ['x-permitted-cross-domain-policies', 'none'],
  ['x-xss-protection', '0'],
];

const OURS = new Set(SECURITY_HEADERS.map(([k]) => k));
const isCors = (lower: string) => lower.startsWith('access-control-');
const noStorePath = (path: string) => path === '/v1' || path.startsWith('/v1/') || path.startsWith('/v1?');

/** A ServerResponse that writes every answer with the rules above; pass it as the server's `ServerResponse`. */
export class HardenedServerResponse<Req extends IncomingMessage = IncomingMessage> extends ServerResponse<Req> {
  override writeHead(statusCode: number, a?: unknown, b?: unknown): this {
    const message = typeof a === 'string' ? a : undefined;
    const given = (typeof a === 'string' ? b : a) as OutgoingHttpHeaders | unknown[] | undefined;
    for (const name of this.getHeaderNames()) if (isCors(name) || OURS.has(name)) this.removeHeader(name);
    const out: OutgoingHttpHeaders = {};
    let cacheControl = this.hasHeader('cache-control');
    if (Array.isArray(given)) {
      // Raw [name, value, name, value, ...] (no code here passes it; kept correct all the same).
      for (let i = 0; i + 1 < given.length; i += 2) {
        const lower = String(given[i]).toLowerCase();
        if (isCors(lower) || OURS.has(lower)) continue;
        if (lower === 'cache-control') cacheControl = true;
        const prev = out[lower];
        const v = given[i + 1] as string;
        out[lower] = prev === undefined ? v : ([] as Array<string | number>).concat(prev as string, v).map(String);
      }
    } else if (given) {
      for (const name in given) {
        const lower = name.toLowerCase();
        if (isCors(lower) || OURS.has(lower)) continue;
        if (lower === 'cache-control') cacheControl = true;
        out[name] = given[name];
      }
    }
    for (const [k, v] of SECURITY_HEADERS) out[k] = v;
    if (!cacheControl && noStorePath(this.req?.url ?? '')) out['cache-control'] = 'no-store';
    return message === undefined ? super.writeHead(statusCode, out) : super.writeHead(statusCode, message, out);
  }
}

/** Whether this request is answered through a HardenedServerResponse, which applies the rules itself. */
export function onHardenedServer(c: Context): boolean {
  return (c.env as { outgoing?: unknown } | undefined)?.outgoing instanceof HardenedServerResponse;
}

/** The same rules on the Response, for answers not written by a HardenedServerResponse. */
export function responseHeaders(): MiddlewareHandler {
  return async function responseHeadersMiddleware(c, next) {
    await next();
    if (onHardenedServer(c)) return;
    // On the response's own headers: c.header() after the handler would rebuild the
    // response around a stream, and the server would then read it back chunk by chunk.
    const headers = c.res.headers;
    for (const k of [...headers.keys()]) if (isCors(k)) headers.delete(k);
    for (const [k, v] of SECURITY_HEADERS) headers.set(k, v);
    if (noStorePath(c.req.path) && !headers.has('cache-control')) headers.set('cache-control', 'no-store');
  };
}
