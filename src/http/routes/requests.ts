import { Hono, type Context } from 'hono';
import { DomainError } from '../../core/errors.js';
import { ID_FORM } from '../../services/ids.js';
import { STEP_UP_FAILED, type AuthService, type StepUpVerifier } from '../../services/auth.js';
import type { CertificateService } from '../../services/issuance.js';
import { checkComment, type Caller, type RequestService } from '../../services/requests.js';
import { jsonBody, unreadableBody } from '../json.js';
import { requireUser } from '../middleware/auth.js';
import type { AppEnv } from '../types.js';

export interface RequestRoutesDeps {
  auth: AuthService;
  requests: RequestService;
  certificates: CertificateService;
  clientAddress: (c: Context) => string | null;
  /** Checks the fresh TOTP code an approver gives with a decision; without it, a code given is refused. */
  stepUp?: StepUpVerifier;
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
  // A decision may carry a fresh TOTP code ("totp"), checked and used up for this request and this
  // verdict only; policy makes it required for approvals (approval.step_up, default required).
  for (const verdict of ['approve', 'deny'] as const) {
    app.post(`/v1/requests/:id/${verdict}`, async (c) => {
      const id = idParam(c);
      const body = await optionalBody(c);
      const comment = checkComment(body['comment']); // refused before a code is spent on it
      const who = caller(c);
      const totp = typeof body['totp'] === 'number' ? String(body['totp']).padStart(6, '0') : body['totp'];
      if (totp !== undefined && totp !== null && totp !== '') {
        // What would refuse the decision anyway is answered before the code is used up.
        const r = await deps.requests.get(who.principal, id);
        if (r.status !== 'pending') throw new DomainError('conflict', `request ${id} is already ${r.status}`);
        if (r.requester === who.principal.username) throw new DomainError('forbidden', 'you cannot decide your own request');
        if (!deps.requests.decidableRoles(who.principal).includes(r.role)) throw new DomainError('forbidden', `you may not decide requests for ${r.role}`);
        if (!deps.stepUp) throw new DomainError('step_up_failed', 'this server does not take codes with decisions');
        try {
          who.stepUp = await deps.stepUp.verify({ username: who.principal.username, totp, purpose: `request.${verdict}`, target: id, clientAddress: who.clientAddress });
        } catch (e) {
          // A wrong code is not a dead session: the caller keeps its token and tries the next code.
          if (e instanceof DomainError && e.code === 'unauthenticated' && e.message === STEP_UP_FAILED) throw new DomainError('step_up_failed', STEP_UP_FAILED);
          throw e;
        }
      }
      return c.json(await (verdict === 'approve' ? deps.requests.approve(who, id, comment) : deps.requests.deny(who, id, comment)));
    });
  }
  app.post('/v1/requests/:id/cancel', async (c) => c.json(await deps.requests.cancel(caller(c), idParam(c))));
  app.post('/v1/requests/:id/extend', async (c) => c.json(await deps.requests.extend(caller(c), idParam(c), await jsonBody(c)), 201));
  app.post('/v1/requests/:id/relinquish', async (c) => c.json(await deps.requests.relinquish(caller(c), idParam(c))));
  app.post('/v1/requests/:id/acknowledge', async (c) => c.json(await deps.requests.acknowledge(caller(c), idParam(c), (await optionalBody(c))['comment'])));

  app.post('/v1/certificates', async (c) => c.json(await deps.certificates.issue(caller(c), await jsonBody(c)), 201));
  return app;
}
