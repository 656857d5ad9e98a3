// The HTTP application, built from its collaborators: production and tests
// construct it the same way, tests without opening a port (app.request()).

import { Hono } from 'hono';
import { bodyLimit } from './middleware/body-limit.js';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError, RateLimitedError, UnavailableError } from '../core/errors.js';
import { errorFields, type Logger } from '../log.js';
import { accessLog } from './middleware/access-log.js';
import { deadline } from './middleware/deadline.js';
import { noCors } from './middleware/no-cors.js';
import { requestId } from './middleware/request-id.js';
import { jsonOnly } from './json.js';
import { HttpProblem, problem, STATUS_OF } from './problem.js';
import { adminRoutes, type AdminRoutesDeps } from './routes/admin.js';
import { auditRoutes, type AuditRoutesDeps } from './routes/audit.js';
import { authRoutes, type AuthDeps } from './routes/auth.js';
import { requestRoutes, type RequestRoutesDeps } from './routes/requests.js';
import { caRoutes, type CaDeps } from './routes/ca.js';
import { healthRoutes, type HealthDeps } from './routes/health.js';
import type { AppEnv } from './types.js';
import { isWebPath, webErrorPage, webRoutes, type WebDeps } from '../web/index.js';

export interface AppDeps extends HealthDeps, CaDeps, AuthDeps, Omit<RequestRoutesDeps, 'auth' | 'clientAddress'>, Omit<AdminRoutesDeps, 'auth'>, Omit<AuditRoutesDeps, 'auth'> {
  logger: Logger;
  /** Largest accepted request body in bytes. */
  bodyLimit: number;
  /** The web pages under /ui (and a landing page at /), built on the same services; absent = the API only. */
  web?: Pick<WebDeps, 'stepUp' | 'publicUrl' | 'now'>;
  /** Every request is answered within this many ms (503 and Retry-After past it), auditors' log walks excepted; default 10 s, 0 = none. */
  requestTimeoutMs?: number;
}

/** Paths whose work grows with the whole log (verify, export, reports): bounded per statement, not per request. */
const LONG_RUNNING = /^\/(v1|ui)\/audit(\/|$)/;

export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requestId());
  app.use(accessLog(deps.logger));
  app.use(secureHeaders({ crossOriginResourcePolicy: 'same-origin' }));
  app.use(noCors());
  app.use('/v1/*', async function noStore(c, next) {
    await next();
    // On the response's own headers: c.header() after the handler would rebuild the
    // response around a stream, and the server would then read it back chunk by chunk.
    if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
  });
  // The API reads JSON only: bodies a cross-site page can send without a preflight never reach a route.
  app.use('/v1/*', jsonOnly());
  app.use(
    bodyLimit({
      maxSize: deps.bodyLimit,
      onError: (c) =>
        deps.web && isWebPath(c.req.path)
          ? webErrorPage(c, 413, `The form was larger than this server accepts (${deps.bodyLimit} bytes). Shorten the text and send it again.`)
          : problem(c, 413, `request body is larger than ${deps.bodyLimit} bytes`),
    }),
  );
  const requestTimeoutMs = deps.requestTimeoutMs ?? 10_000;
  app.use(
    deadline({
      ms: requestTimeoutMs,
      skip: (c) => LONG_RUNNING.test(c.req.path),
      onTimeout: (c) => {
        const detail = `the request did not complete within ${requestTimeoutMs / 1000} s (the database is slow or unreachable); try again shortly`;
        return deps.web && isWebPath(c.req.path) ? webErrorPage(c, 503, `${detail}.`) : problem(c, 503, detail, { code: 'unavailable', headers: { 'Retry-After': '5' } });
      },
    }),
  );

  app.route('/', healthRoutes(deps));
  app.route('/', caRoutes(deps));
  app.route('/', authRoutes(deps));
  app.route('/', auditRoutes(deps));
  app.route('/', requestRoutes(deps));
  app.route('/', adminRoutes(deps));
  if (deps.web) {
    app.route('/', webRoutes({ logger: deps.logger, auth: deps.auth, requests: deps.requests, audit: deps.audit, clientAddress: deps.clientAddress, ...deps.web }));
  }

  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    if (err instanceof HttpProblem) return problem(c, err.status, err.detail, { title: err.title, extra: err.extra, headers: err.headers });
    if (err instanceof DomainError) {
      const headers: Record<string, string> = err instanceof RateLimitedError || err instanceof UnavailableError ? { 'Retry-After': String(err.retryAfter) } : {};
      return problem(c, STATUS_OF[err.code], err.message, { code: err.code, headers });
    }
    if (err instanceof HTTPException) return problem(c, err.status as ContentfulStatusCode, err.message || 'request refused');
    // Unknown errors are logged in full and answered with nothing the caller could learn from.
    deps.logger.error('unhandled error', { request_id: c.get('requestId'), ...errorFields(err, true) });
    return problem(c, 500, 'the server could not complete the request');
  });
  return app;
}

export type App = ReturnType<typeof createApp>;
