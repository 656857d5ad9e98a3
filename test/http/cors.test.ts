// No CORS: no answer of any route carries an Access-Control-* header, and a
// preflight from another origin is refused. The route table is read from the
// app (API and web pages), so a new route is covered without an entry here.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock } from '../helpers/identity.js';
import { webIdentity } from '../web/helpers.js';

const EVIL = 'https://evil.example';

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.toLowerCase().startsWith('access-control-'));

describe('no cross-origin access', () => {
  let t: TestDb;
  let w: Awaited<ReturnType<typeof webIdentity>>;
  let token: string;
  before(async () => {
    t = await BACKENDS[0]!.open();
    const clock = new TestClock();
    w = await webIdentity(t.db, clock);
    token = await w.tokenFor(await w.addUser('root', ['admins', 'auditors', 'engineering']));
  });
  after(() => t.cleanup());

  /** Every route the app has, with sample values for its parameters. */
  const routes = () => {
    const seen = new Set<string>();
    const out: Array<{ method: string; path: string }> = [];
    for (const r of w.app.routes) {
      if (r.method === 'ALL' && r.path.endsWith('*')) continue; // middleware
      const path = r.path.replace(/:[A-Za-z_]+(\{[^}]*\})?/g, '01J0000000000000000000000Z').replace(/\*$/, 'x');
      const method = r.method === 'ALL' ? 'GET' : r.method;
      const key = `${method} ${path}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push({ method, path });
      }
    }
    return out;
  };

  test('ok: the route table is read (API, admin, audit and web routes are all there)', () => {
    const paths = routes().map((r) => `${r.method} ${r.path}`);
    for (const p of ['POST /v1/auth/login', 'POST /v1/certificates', 'GET /v1/audit/events', 'GET /v1/ca.pub', 'POST /ui/login', 'GET /ui/queue']) assert.ok(paths.includes(p), `${p} not in ${paths.join(', ')}`);
    assert.ok(paths.length > 30, String(paths.length));
  });

  test('fail: a CORS preflight to any route is refused, with no Access-Control-* header', async () => {
    for (const { method, path } of routes()) {
      const res = await w.app.request(`http://localhost${path}`, {
        method: 'OPTIONS',
        headers: { Origin: EVIL, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization, content-type' },
      });
      assert.equal(res.status, 403, `OPTIONS ${path}: ${res.status}`);
      assert.deepEqual(corsHeaders(res), [], `OPTIONS ${path}`);
    }
  });

  test('ok: answers to another origin, logged in or not, carry no Access-Control-* header', async () => {
    for (const { method, path } of routes()) {
      const auths: Array<Record<string, string>> = [{}, { Authorization: `Bearer ${token}` }];
      for (const auth of auths) {
        const res = await w.app.request(`http://localhost${path}`, {
          method,
          headers: { Origin: EVIL, ...auth, ...(method === 'GET' || method === 'HEAD' ? {} : { 'content-type': 'application/json' }) },
          ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }),
        });
        assert.deepEqual(corsHeaders(res), [], `${method} ${path}`);
      }
    }
  });

  test('ok: an Access-Control-* header a route sets by mistake never leaves the server', async () => {
    const app = createApp({
      logger: silentLogger,
      bodyLimit: 1024,
      caKeys: () => Promise.reject(new Error('not in this test')),
      ready: async () => {},
      auth: w.auth,
      clientAddress: () => null,
      requests: w.requests,
      certificates: w.certificates,
      reloadPolicy: async () => ({ ok: false, problems: [] }),
      audit: w.audit,
      krl: () => Promise.reject(new Error('not in this test')),
    });
    app.get('/v1/leaky', (c) => c.text('x', 200, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Credentials': 'true' }));
    const res = await app.request('http://localhost/v1/leaky', { headers: { Origin: EVIL } });
    assert.equal(res.status, 200);
    assert.deepEqual(corsHeaders(res), []);
  });
});
