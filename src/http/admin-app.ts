// The local administration API, served only on a Unix socket that only the
// CA's OS user can open (mode 0600 in a 0700 directory). Reaching it is the
// proof of authority, as with a root shell on the CA host; the client names
// the OS user it runs as, and every change is logged under that name.

import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { DomainError } from '../core/errors.js';
import { errorFields, type Logger } from '../log.js';
import type { AuditService } from '../services/audit.js';
import type { RevocationService } from '../services/revocation.js';
import type { UserAdmin } from '../services/users.js';
import { jsonBody, jsonOnly } from './json.js';
import { HttpProblem, problem, STATUS_OF } from './problem.js';
import type { AppEnv } from './types.js';

export const ACTOR_HEADER = 'X-Jit-Ssh-Actor';
const ACTOR = /^os:[A-Za-z0-9._-]{1,64}$/;

export interface AdminAppDeps {
  users: UserAdmin;
  audit: AuditService;
  revocation: RevocationService;
  logger: Logger;
}

export function createAdminApp(deps: AdminAppDeps) {
  const app = new Hono<AppEnv>();
  app.use(async function adminActor(c, next) {
    const actor = c.req.header(ACTOR_HEADER) ?? '';
    if (!ACTOR.test(actor)) throw new HttpProblem(400, 'Bad Request', `${ACTOR_HEADER} must be os:NAME`);
    c.set('actor', actor);
    await next();
    deps.logger.info('admin', { actor, method: c.req.method, path: c.req.path, status: c.res.status });
  });
  app.use(jsonOnly());

  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const list = (v: unknown) => (Array.isArray(v) ? v : []);
  const optStr = (v: unknown) => (typeof v === 'string' ? v : undefined);

  app.get('/admin/users', async (c) => c.json({ users: await deps.users.list() }));
  app.post('/admin/users', async (c) => {
    const b = await jsonBody(c);
    return c.json(await deps.users.add({ name: str(b['name']), groups: list(b['groups']), password: str(b['password']) }, c.get('actor')), 201);
  });
  app.post('/admin/users/:name/disable', async (c) => {
    await deps.users.disable(c.req.param('name'), c.get('actor'));
    return c.body(null, 204);
  });
  app.post('/admin/users/:name/enable', async (c) => {
    await deps.users.enable(c.req.param('name'), c.get('actor'));
    return c.body(null, 204);
  });
  app.post('/admin/users/:name/reset-mfa', async (c) => c.json(await deps.users.resetMfa(c.req.param('name'), c.get('actor'))));
  app.post('/admin/users/:name/password', async (c) => {
    await deps.users.setPassword(c.req.param('name'), str((await jsonBody(c))['password']), c.get('actor'));
    return c.body(null, 204);
  });
  app.post('/admin/users/:name/groups', async (c) => {
    await deps.users.setGroups(c.req.param('name'), list((await jsonBody(c))['groups']), c.get('actor'));
    return c.body(null, 204);
  });

  // The auditors' views, for `jit-ssh-ca audit ...` and `revoke` on the CA host.
  app.get('/admin/audit/certificates', async (c) => c.json(await deps.audit.certificates(c.req.query())));
  app.get('/admin/audit/events', async (c) => c.json(await deps.audit.events(c.req.query())));
  app.get('/admin/audit/verify', async (c) => c.json(await deps.audit.verify()));
  app.get('/admin/audit/chain', (c) => {
    c.header('Content-Type', 'application/x-ndjson');
    return stream(c, async (s) => {
      for await (const chunk of deps.audit.exportChain()) await s.write(chunk);
    });
  });
  app.get('/admin/ca/key-usage', async (c) => c.json({ keys: await deps.audit.caKeyUsage() }));
  app.get('/admin/audit/report', async (c) => c.json(await deps.audit.report(c.req.query())));
  app.post('/admin/audit/sshd-log', async (c) => {
    const b = await jsonBody(c);
    return c.json(await deps.audit.ingestSshd(b['text'] as string, b['host'] as string));
  });
  app.post('/admin/revocations', async (c) => {
    const b = await jsonBody(c);
    const target = { serial: optStr(b['serial']), user: optStr(b['user']), request: optStr(b['request']) };
    return c.json(await deps.revocation.revoke(target, str(b['reason']), c.get('actor')));
  });
  app.get('/admin/krl', async (c) => {
    const k = await deps.revocation.krl();
    return c.json({ ...k, krl: k.krl.toString('base64') });
  });

  app.notFound((c) => problem(c, 404, `no admin route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    if (err instanceof HttpProblem) return problem(c, err.status, err.detail);
    if (err instanceof DomainError) return problem(c, STATUS_OF[err.code], err.message, { code: err.code });
    deps.logger.error('admin request failed', errorFields(err, true));
    return problem(c, 500, 'the server could not complete the request');
  });
  return app;
}
