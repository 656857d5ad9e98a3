// The inputs a route declares, so that a client typed from the app
// (hono/client's hc) knows what to send: a JSON body, read as jsonBody reads
// every body (415 unless declared as JSON, 400 unless a JSON object), and the
// query string as given.

import type { MiddlewareHandler } from 'hono';
import { jsonBody } from './json.js';
import type { AppEnv } from './types.js';

export type Query = Record<string, string | undefined>;

/** The JSON body, shaped by `read` (which takes what the caller sent and keeps what the route uses). */
export function jsonInput<T extends object>(read: (body: Record<string, unknown>) => T): MiddlewareHandler<AppEnv, string, { in: { json: T }; out: { json: T } }> {
  return async function jsonInputMiddleware(c, next) {
    c.req.addValidatedData('json', read(await jsonBody(c)));
    await next();
  };
}

/** The query string, one value per name (the first, as c.req.query() gives it). */
export function queryInput(): MiddlewareHandler<AppEnv, string, { in: { query: Query }; out: { query: Query } }> {
  return async function queryInputMiddleware(c, next) {
    c.req.addValidatedData('query', c.req.query());
    await next();
  };
}
