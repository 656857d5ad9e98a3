// What an error becomes, once for every surface: the API and the admin socket
// answer RFC 9457 problem details (application/problem+json), the web pages a
// page for a person; each keeps the status, and Retry-After when the error
// says how long to wait. Each app installs answerErrors() as its onError.

import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { Refusal, retryAfterOf, STATUS_OF } from '../core/error-status.js';
import { DomainError, type ErrorCode } from '../core/errors.js';
import { errorFields, type Logger } from '../log.js';
import type { AppEnv } from './types.js';

export { STATUS_OF };

/** A refusal of the HTTP layer itself (a body that is not JSON, a missing login), with its problem's title and fields. */
export class HttpProblem extends Refusal {
  override name = 'HttpProblem';
  constructor(
    override readonly status: ContentfulStatusCode,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(status, detail, headers);
  }
}

const TITLES: Partial<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function titleOf(status: number): string {
  return TITLES[status] ?? 'Error';
}

export function problem(
  c: Context<AppEnv>,
  status: ContentfulStatusCode,
  detail: string,
  opts: { title?: string; code?: string; extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Response {
  const body = {
    type: 'about:blank',
    title: opts.title ?? titleOf(status),
    status,
    detail,
    ...(opts.code ? { code: opts.code } : {}),
    ...(c.get('requestId') ? { request_id: c.get('requestId') } : {}),
    ...opts.extra,
  };
  return c.body(JSON.stringify(body), status, { ...opts.headers, 'content-type': 'application/problem+json' });
}

/** What an error is answered with, whatever the surface shows it as. */
export interface ErrorAnswer {
  status: ContentfulStatusCode;
  title: string;
  detail: string;
  code?: ErrorCode;
  extra: Record<string, unknown>;
  /** Retry-After, when the error says how long to wait. */
  headers: Record<string, string>;
  /** Whether `detail` is a sentence meant for the caller (a refusal), not the framework's words or a failure's. */
  refusal: boolean;
  /** The sentence for a person, where the pages word a refusal apart from the API. */
  page?: string;
}

/** The answer to an error someone raised on purpose; null for any other (a failure: 500, logged in full). */
export function errorAnswer(err: unknown): ErrorAnswer | null {
  if (err instanceof HttpProblem) return { status: err.status, title: err.title, detail: err.detail, extra: err.extra, headers: { ...err.headers }, refusal: true };
  if (err instanceof Refusal) {
    const status = err.status as ContentfulStatusCode;
    return { status, title: titleOf(status), detail: err.message, extra: {}, headers: { ...err.headers }, refusal: true };
  }
  if (err instanceof DomainError) {
    const status = STATUS_OF[err.code];
    const wait = retryAfterOf(err);
    return { status, title: titleOf(status), detail: err.message, code: err.code, extra: {}, headers: wait === null ? {} : { 'Retry-After': String(wait) }, refusal: true };
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    return { status, title: titleOf(status), detail: err.message || 'request refused', extra: {}, headers: {}, refusal: false };
  }
  return null;
}

/** Pages that own some paths (the web UI): there an error is shown as a page, not as problem+json. */
export interface ErrorPages {
  owns(path: string): boolean;
  errorPage(c: Context, answer: ErrorAnswer): Response | Promise<Response>;
}

/** Sends `answer` the way the request's surface shows errors. */
export function respond(c: Context<AppEnv>, answer: ErrorAnswer, pages?: ErrorPages): Response | Promise<Response> {
  if (pages?.owns(c.req.path)) return pages.errorPage(c, answer);
  return problem(c, answer.status, answer.detail, { title: answer.title, code: answer.code, extra: answer.extra, headers: answer.headers });
}

export interface ErrorSurface {
  logger: Logger;
  /** The log line of a failure (an error nobody raised on purpose). */
  failure: string;
  pages?: ErrorPages;
}

/**
 * The onError of an app: refusals keep their status and words (and
 * Retry-After); anything else is logged in full and answered with nothing the
 * caller could learn from. `page`: the sentence the pages show instead, for a
 * refusal they word apart from the API.
 */
export function answerErrors(surface: ErrorSurface) {
  return (err: unknown, c: Context<AppEnv>, page?: string): Response | Promise<Response> => {
    let answer = errorAnswer(err);
    if (answer && page !== undefined) answer = { ...answer, page };
    if (!answer) {
      surface.logger.error(surface.failure, { request_id: c.get('requestId'), ...errorFields(err, true) });
      answer = { status: 500, title: titleOf(500), detail: 'the server could not complete the request', extra: {}, headers: {}, refusal: false };
    }
    return respond(c, answer, surface.pages);
  };
}
