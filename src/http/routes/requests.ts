import { Hono, type Context } from 'hono';
import { DomainError } from '../../core/errors.js';
import { ID_FORM } from '../../services/ids.js';
import type { AuthService } from '../../services/auth.js';
import type { CertificateService } from '../../services/certificates.js';
import type { Caller, RequestService } from '../../services/requests.js';
import { jsonBody, unreadableBody } from '../json.js';
import { requireUser } from '../middleware/auth.js';
import type { AppEnv } from '../types.js';

export interface RequestRoutesDeps {
  auth: AuthService;
  requests: RequestService;
  certificates: CertificateService;
  clientAddress: (c: Context) => string | null;
}

/** An optional JSON body: none or empty is `{}`. */
async function optionalBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text().catch(() => {
    throw unreadableBody();
  });
  if (text.trim() === '') return {};
  return jsonBody(c);
}

/** The id in the path: ids are ULIDs, and nothing else reaches the services (a NUL in one was a database error, a 500). */
function idParam(c: Context): string {
  const id = c.req.param('id') ?? '';
  if (!ID_FORM.test(id)) throw new DomainError('not_found', 'no such request: ids are 26-character ULIDs');
  return id;
}

export function requestRoutes(deps: RequestRoutesDeps) {
  const app = new Hono<AppEnv>();
  const caller = (c: Context<AppEnv>): Caller => ({ principal: c.get('principal'), clientAddress: deps.clientAddress(c) });
  app.use('/v1/roles', requireUser(deps.auth));
  app.use('/v1/requests', requireUser(deps.auth));
  app.use('/v1/requests/*', requireUser(deps.auth));
  app.use('/v1/certificates', requireUser(deps.auth));

  app.get('/v1/roles', (c) => c.json({ roles: deps.requests.roles(c.get('principal')) }));

  app.post('/v1/requests', async (c) => {
    const body = await jsonBody(c);
    const dryRun = body['dry_run'] === true || c.req.query('dry_run') === 'true';
    const out = await deps.requests.create(caller(c), body, dryRun);
    return c.json(out, dryRun ? 200 : 201);
  });
  app.get('/v1/requests', async (c) => {
    const status = c.req.query('status');
    const reviews = c.req.query('review') === 'open';
    return c.json({ requests: await deps.requests.list(c.get('principal'), { status, reviews }) });
  });
  app.get('/v1/requests/:id', async (c) => c.json(await deps.requests.get(c.get('principal'), idParam(c))));
  app.post('/v1/requests/:id/approve', async (c) => c.json(await deps.requests.approve(caller(c), idParam(c), (await optionalBody(c))['comment'])));
  app.post('/v1/requests/:id/deny', async (c) => c.json(await deps.requests.deny(caller(c), idParam(c), (await optionalBody(c))['comment'])));
  app.post('/v1/requests/:id/cancel', async (c) => c.json(await deps.requests.cancel(caller(c), idParam(c))));
  app.post('/v1/requests/:id/extend', async (c) => c.json(await deps.requests.extend(caller(c), idParam(c), await jsonBody(c)), 201));
  app.post('/v1/requests/:id/relinquish', async (c) => c.json(await deps.requests.relinquish(caller(c), idParam(c))));
  app.post('/v1/requests/:id/acknowledge', async (c) => c.json(await deps.requests.acknowledge(caller(c), idParam(c), (await optionalBody(c))['comment'])));

  app.post('/v1/certificates', async (c) => c.json(await deps.certificates.issue(caller(c), await jsonBody(c)), 201));
  return app;
}
