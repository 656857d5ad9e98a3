// RFC 9457 problem details: every error the API answers has this shape.

import type { Context } from 'hono';
import type { AppEnv } from './types.js';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorCode } from '../core/errors.js';

export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const STATUS_OF: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_input: 400,
  invalid_public_key: 400,
  invalid_certificate: 400,
  unauthenticated: 401,
  forbidden: 403,
  step_up_required: 403,
  step_up_failed: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
};

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
