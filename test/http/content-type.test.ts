// The JSON API takes JSON only. A web page on any site can make the browser
// send a POST with a text/plain, urlencoded or multipart body, or with none
// declared, and no CORS preflight asks first; were such a body read as JSON,
// any page a user visits could try logins in their name (and lock accounts
// out). Every JSON route of the API and of the admin socket, over a real
// socket: each such body is a 415 problem+json that reaches nothing (no
// failed login counted, no audit event, no state changed); JSON and
// application/*+json, with a UTF-8 charset or none, are read as before; the
// jit-ssh client's requests pass.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import { sql } from 'kysely';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { createApi } from '../../src/cli/client/api.js';
import { createAdminApp } from '../../src/http/admin-app.js';
import { listenAdminSocket } from '../../src/http/admin-socket.js';
import { isJsonType } from '../../src/http/json.js';
import { silentLogger } from '../../src/log.js';
import { createUserAdmin } from '../../src/services/users.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { SECRET_KEY, TestClock, totpAt } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { webIdentity } from '../web/helpers.js';

/** The bodies a cross-site page can send without a preflight, and a JSON one in a charset JSON is never in. */
const REFUSED: Array<{ name: string; type: string | null; body: string }> = [
  { name: 'text/plain', type: 'text/plain;charset=UTF-8', body: '{"username":"victim","password":"guess-guess-guess","totp":"000000"}' },
  { name: 'form', type: 'application/x-www-form-urlencoded', body: 'username=victim&password=guess-guess-guess&totp=000000' },
  { name: 'multipart', type: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nvictim\r\n--x--\r\n' },
  { name: 'missing', type: null, body: '{"username":"victim","password":"guess-guess-guess","totp":"000000"}' },
  { name: 'json in utf-16', type: 'application/json; charset=utf-16', body: '{"username":"victim","password":"guess-guess-guess","totp":"000000"}' },
  { name: 'two types', type: 'application/json, text/plain', body: '{"username":"victim","password":"guess-guess-guess","totp":"000000"}' },
];

/** What a refusal must leave as it was: everything, the audit log and the login counters included. */
const TABLES = ['users', 'sessions', 'login_throttle', 'audit_events', 'requests', 'approvals', 'grants', 'certificates', 'revocations'] as const;
async function snapshot(t: TestDb): Promise<string> {
  const parts = TABLES.map((n) => sql`(select count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${sql.table(n)} x) as ${sql.ref(n)}`);
  const { rows } = await sql<Record<string, string>>`select ${sql.join(parts)}`.execute(t.db);
  return JSON.stringify(rows[0]);
}

/** One request over a real connection (TCP or a Unix socket), with the body's length declared as a browser does. */
function call(target: { port: number } | { socketPath: string }, method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; type: string | undefined; json: any }>((resolve, reject) => {
    const req = http.request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : target), method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const backend of BACKENDS) {
  describe(`the JSON API takes JSON only (${backend.name})`, () => {
    let t: TestDb;
    let w: Awaited<ReturnType<typeof webIdentity>>;
    let server: Server;
    let port = 0;
    let token = '';
    let requestId = '';
    const clock = new TestClock();
    let victim: { name: string; password: string; secret: string };

    before(async () => {
      t = await backend.open();
      w = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY });
      const boss = await w.addUser('boss', ['admins', 'auditors', 'engineering', 'sre-leads']);
      victim = await w.addUser('victim', ['engineering']);
      token = await w.tokenFor(boss);
      requestId = (await (await w.as(victim))('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'rotate the keys' })).body.id;
      port = await new Promise<number>((resolve) => {
        server = serve({ fetch: w.app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => resolve(info.port)) as Server;
      });
    });
    after(async () => {
      await new Promise((r) => server?.close(r));
      await t.cleanup();
    });

    /** The API's routes that can take a body, from the app's own route table: a new one is covered without being listed. */
    const jsonRoutes = () => [...new Set(w.app.routes.filter((r) => r.path.startsWith('/v1/') && !['GET', 'HEAD', 'ALL', 'OPTIONS'].includes(r.method)).map((r) => `${r.method} ${r.path}`))];

    test('every JSON route answers 415 problem+json to text/plain, form, multipart, no declared type and non-UTF-8 JSON; nothing is reached', async () => {
      const routes = jsonRoutes();
      for (const r of ['POST /v1/auth/login', 'POST /v1/auth/logout', 'POST /v1/requests', 'POST /v1/requests/:id/approve', 'POST /v1/requests/:id/cancel', 'POST /v1/certificates', 'POST /v1/admin/policy/reload']) {
        assert.ok(routes.includes(r), `${r} is not among ${routes.join(', ')}`);
      }
      const before = await snapshot(t);
      for (const route of routes) {
        const [method, pattern] = route.split(' ') as [string, string];
        const path = pattern.replace(':id', requestId);
        for (const r of REFUSED) {
          const headers: Record<string, string> = { authorization: `Bearer ${token}`, origin: 'https://evil.example' };
          if (r.type !== null) headers['content-type'] = r.type;
          const res = await call({ port }, method, path, headers, r.body);
          assert.equal(res.status, 415, `${route} with ${r.name}: ${res.status} ${JSON.stringify(res.json)}`);
          assert.equal(res.type, 'application/problem+json', `${route} with ${r.name}`);
          assert.equal(res.json.status, 415);
          assert.match(res.json.detail, /application\/json/);
        }
      }
      assert.equal(await snapshot(t), before, 'a refused body reached a service: a counter, an event or a row changed');
      const events = await t.db.selectFrom('audit_events').select('action').where('action', '=', 'login.failed').execute();
      assert.deepEqual(events, [], 'no login was tried');
    });

    test('ok: application/json and application/*+json, with a UTF-8 charset or none, are read; a bodiless POST needs no type', async () => {
      for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;Charset="UTF-8"', 'application/vnd.jit-ssh+json']) {
        clock.advance(30);
        const res = await call({ port }, 'POST', '/v1/auth/login', { 'content-type': type }, JSON.stringify({ username: victim.name, password: victim.password, totp: totpAt(victim.secret, clock) }));
        assert.equal(res.status, 200, `${type}: ${JSON.stringify(res.json)}`);
      }
      const dry = await call({ port }, 'POST', '/v1/requests', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ role: 'web-prod', duration: '1h', reason: 'check the policy', dry_run: true }));
      assert.equal(dry.status, 200, JSON.stringify(dry.json));
      // No body and no type: the routes that need no body answer as before.
      const approve = await call({ port }, 'POST', `/v1/requests/${requestId}/approve`, { authorization: `Bearer ${token}` });
      assert.equal(approve.status, 200, JSON.stringify(approve.json));
      // A route that needs a body says which type it wants when none came.
      const empty = await call({ port }, 'POST', '/v1/auth/login', {});
      assert.equal(empty.status, 415, JSON.stringify(empty.json));
    });

    test('ok: the jit-ssh client sends JSON: it logs in and acts through the API', async () => {
      const base = `http://127.0.0.1:${port}`;
      clock.advance(30);
      const out = await createApi(base, null).post<{ token: string }>('/v1/auth/login', { username: victim.name, password: victim.password, totp: totpAt(victim.secret, clock) });
      const api = createApi(base, out.token);
      const filed = await api.post<{ id: string }>('/v1/requests', { role: 'web-prod', duration: '1h', reason: 'the client sends json' });
      assert.match(filed.id, /^[0-9A-Z]{26}$/);
      assert.equal((await api.post<{ status: string }>(`/v1/requests/${filed.id}/cancel`)).status, 'cancelled');
      await api.post('/v1/auth/logout');
    });

    test('ok: the web pages keep their form encoding', async () => {
      const b = w.client();
      assert.equal((await b.login(victim)).status, 303, 'a urlencoded login form logs in');
    });

    test('the admin socket takes JSON only too; its client is served as before', async () => {
      const dir = tempDir('jit-ssh-admin-ct-');
      const file = `${dir}/admin.sock`;
      const admin = createAdminApp({ users: createUserAdmin({ db: t.db, box: createSecretBox(SECRET_KEY), passwordCost: 14, now: clock.now }), audit: w.audit, revocation: w.revocation, logger: silentLogger });
      const socket = await listenAdminSocket(file, admin.fetch);
      try {
        const routes = [...new Set(admin.routes.filter((r) => !['GET', 'HEAD', 'ALL'].includes(r.method)).map((r) => `${r.method} ${r.path}`))];
        assert.ok(routes.length >= 8, routes.join(', '));
        const before = await snapshot(t);
        for (const route of routes) {
          const [method, pattern] = route.split(' ') as [string, string];
          for (const r of REFUSED) {
            const headers: Record<string, string> = {};
            if (r.type !== null) headers['content-type'] = r.type;
            const res = await call({ socketPath: file }, method, pattern.replace(':name', 'victim'), headers, r.body);
            assert.equal(res.status, 415, `admin ${route} with ${r.name}: ${res.status} ${JSON.stringify(res.json)}`);
            assert.equal(res.type, 'application/problem+json');
          }
        }
        assert.equal(await snapshot(t), before, 'a refused admin body changed something');
        // As the jit-ssh-ca commands call it: JSON bodies, and bodiless posts.
        const added = await call({ socketPath: file }, 'POST', '/admin/users', { 'content-type': 'application/json' }, JSON.stringify({ name: 'newbie', groups: [], password: 'a-long-password-here' }));
        assert.equal(added.status, 201, JSON.stringify(added.json));
        const disabled = await call({ socketPath: file }, 'POST', '/admin/users/newbie/disable', {});
        assert.equal(disabled.status, 200, JSON.stringify(disabled.json));
        assert.deepEqual(disabled.json, { ended_grants: [], revoked: [] });
      } finally {
        await socket.close();
      }
    });
  });
}

describe('isJsonType', () => {
  test('application/json and application/*+json, in any case, with a UTF-8 charset or none; nothing else', () => {
    const yes = ['application/json', 'APPLICATION/JSON', 'application/json;charset=utf-8', 'application/json ; charset="UTF-8"', 'application/json; charset=utf8', 'application/problem+json', 'application/vnd.api+json; charset=utf-8', 'application/json; foo=bar'];
    const no = [undefined, '', 'text/plain', 'text/json', 'application/jsonp', 'application/json-seq', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/json, text/plain', 'application/+json', 'application/json;charset', 'xapplication/json'];
    for (const t of yes) assert.equal(isJsonType(t), true, t);
    for (const t of no) assert.equal(isJsonType(t), false, String(t));
  });
});
