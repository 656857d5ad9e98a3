import type { Context, MiddlewareHandler } from 'hono';
import { HttpProblem } from './problem.js';

const NOT_JSON = 'the request body must be sent as Content-Type: application/json';

/** A 415 problem: the body is not declared as JSON. */
function notJson(): HttpProblem {
  return new HttpProblem(415, 'Unsupported Media Type', NOT_JSON);
}

/**
 * The request body as a JSON object, or a problem saying what is wrong with
 * it: 415 unless it is declared as JSON (a cross-site page can send text/plain,
 * a form or an untyped body without a CORS preflight, never JSON), 400 when it
 * is not a JSON object.
 */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  if (!isJsonType(c.req.header('Content-Type'))) throw notJson();
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new HttpProblem(400, 'Bad Request', 'the request body must be a JSON object');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpProblem(400, 'Bad Request', 'the request body must be a JSON object');
  if (!wellFormed(body)) throw new HttpProblem(400, 'Bad Request', 'the request body holds a string that is not valid Unicode (a lone surrogate escape such as \\udfff)');
  return body as Record<string, unknown>;
}

const LONE_SURROGATE = /\p{Cs}/u; // with the u flag a proper pair reads as one code point, never Cs

/**
 * Whether every string in a parsed JSON value, names included, is valid Unicode.
 * JSON lets a body escape half of a surrogate pair (`"\udfff"`), which no UTF-8
 * text can hold: the database refuses it as text or jsonb, so it is refused here
 * as the client's mistake, before any route stores it.
 */
function wellFormed(value: unknown): boolean {
  // A loop, not recursion: a body may nest as deep as JSON.parse allows.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return false;
    } else if (Array.isArray(v)) {
      for (const inner of v) pending.push(inner);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, inner] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) return false;
        pending.push(inner);
      }
    }
  }
  return true;
}

/**
 * JSON only, for every route of an API: a request that declares a body of
 * another type, or carries one with no type, is refused with 415 before any
 * route, middleware or service reads it; a bodiless POST (no type, no length)
 * passes. Routes that need a body check its type again in jsonBody. GET and
 * HEAD carry no body to check.
 */
export function jsonOnly(): MiddlewareHandler {
  return async function jsonOnlyMiddleware(c, next) {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const type = c.req.header('Content-Type');
    if (type !== undefined ? !isJsonType(type) : hasBody(c)) throw notJson();
    return next();
  };
}

/** Whether the request declares a body: one in chunks, or a non-zero length. */
function hasBody(c: Context): boolean {
  const length = c.req.header('Content-Length');
  return c.req.header('Transfer-Encoding') !== undefined || (length !== undefined && length.trim() !== '0');
}

/**
 * A body that could not be read to its end: the client closed the connection
 * part way. Its fault, not the server's: a 400, and no error in the log.
 */
export function unreadableBody(): HttpProblem {
  return new HttpProblem(400, 'Bad Request', 'the request body could not be read to its end: the connection was closed');
}

/**
 * Whether a Content-Type header names JSON: application/json or
 * application/<something>+json, in any case, with a UTF-8 charset or none
 * (JSON is UTF-8; another charset would be read wrong). Parameters other
 * than charset are allowed. One type only: a list is no media type.
 */
export function isJsonType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(';');
  if (!/^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/.test(type!.trim().toLowerCase())) return false;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) return false;
    if (p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    if (!/^"?utf-?8"?$/.test(p.slice(eq + 1).trim().toLowerCase())) return false;
  }
  return true;
}
