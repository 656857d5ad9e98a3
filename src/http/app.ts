// The HTTP application, built from its collaborators: production and tests
// construct it the same way, tests without opening a port (app.request()).

import { Hono } from 'hono';
import { bodyLimit } from './middleware/body-limit.js';
import { UnavailableError } from '../core/errors.js';
import type { Logger } from '../log.js';
import { accessLog } from './middleware/access-log.js';
import { deadline } from './middleware/deadline.js';
import { noCors } from './middleware/no-cors.js';
import { requestId } from './middleware/request-id.js';
import { responseHeaders } from './response-headers.js';
import { jsonOnly } from './json.js';
import { answerErrors, HttpProblem, problem, titleOf, type ErrorPages } from './problem.js';
import { adminRoutes, type AdminRoutesDeps } from './routes/admin.js';
import { auditRoutes, type AuditRoutesDeps } from './routes/audit.js';
import { authRoutes, type AuthDeps } from './routes/auth.js';
import { ssoRoutes, type SsoDeps } from './routes/sso.js';
import { requestRoutes, type RequestRoutesDeps } from './routes/requests.js';
import { caRoutes, type CaDeps } from './routes/ca.js';
import { healthRoutes, type HealthDeps } from './routes/health.js';
import { hostRoutes, type HostRoutesDeps } from './routes/hosts.js';
import type { AppEnv } from './types.js';

export interface AppDeps extends HealthDeps, CaDeps, AuthDeps, SsoDeps, Omit<RequestRoutesDeps, 'auth' | 'clientAddress'>, Omit<AdminRoutesDeps, 'auth'>, Omit<AuditRoutesDeps, 'auth'>, Omit<HostRoutesDeps, 'clientAddress'> {
  logger: Logger;
  /** Largest accepted request body in bytes. */
  bodyLimit: number;
  /** Pages served beside the API (the web UI), mounted where the app is composed; absent = the API only. */
  pages?: Pages;
  /** Every request is answered within this many ms (503 and Retry-After past it), auditors' log walks excepted; default 10 s, 0 = none. */
  requestTimeoutMs?: number;
}

/** Pages mounted into the app: their routes, the paths they own (where errors are pages, not problem+json), their error page. */
export interface Pages extends ErrorPages {
  /** Their routes: any Hono app, whatever its own environment. */
  app: Hono<any, any, any>;
}

/** Paths whose work grows with the whole log (verify, export, reports): bounded per statement, not per request. */
const LONG_RUNNING = /^\/(v1|ui)\/audit(\/|$)/;

export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  const answer = answerErrors({ logger: deps.logger, failure: 'unhandled error', pages: deps.pages });
  app.use(requestId());
  app.use(accessLog(deps.logger));
  // Security headers, no Access-Control-*, no-store on /v1 (see response-headers.ts).
  app.use(responseHeaders());
  app.use(noCors());
  // The API reads JSON only: bodies a cross-site page can send without a preflight never reach a route.
  app.use('/v1/*', jsonOnly());
  app.use(
    bodyLimit({
      maxSize: deps.bodyLimit,
      onError: (c) =>
        answer(
          new HttpProblem(413, titleOf(413), `request body is larger than ${deps.bodyLimit} bytes`),
          c,
          `The form was larger than this server accepts (${deps.bodyLimit} bytes). Shorten the text and send it again.`,
        ),
    }),
  );
  const requestTimeoutMs = deps.requestTimeoutMs ?? 10_000;
  app.use(
    deadline({
      ms: requestTimeoutMs,
      skip: (c) => LONG_RUNNING.test(c.req.path),
      onTimeout: (c) => {
        const detail = `the request did not complete within ${requestTimeoutMs / 1000} s (the database is slow or unreachable); try again shortly`;
        return answer(new UnavailableError(detail, 5), c, `${detail}.`);
      },
    }),
  );

  app.route('/', healthRoutes(deps));
  app.route('/', caRoutes(deps));
  app.route('/', hostRoutes(deps));
  app.route('/', authRoutes(deps));
  app.route('/', ssoRoutes(deps));
  app.route('/', auditRoutes(deps));
  app.route('/', requestRoutes(deps));
  app.route('/', adminRoutes(deps));
  if (deps.pages) app.route('/', deps.pages.app);

  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => answer(err, c));
  return app;
}

export type App = ReturnType<typeof createApp>;
