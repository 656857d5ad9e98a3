// Who may reach every /ui route, checked on the server: each route of the
// app is listed here with the answer each kind of user must get (a route
// missing from the table fails the test), then the database is checked for
// what the refused posts must not have changed.

import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock } from '../helpers/identity.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { webIdentity } from './helpers.js';

type Role = 'anon' | 'outsider' | 'eng' | 'lead' | 'aud';
const ROLES: Role[] = ['anon', 'outsider', 'aud', 'lead', 'eng'];

interface Case {
  /** The route as the app registers it. */
  route: string;
  method: 'GET' | 'POST';
  url: string;
  form?: Record<string, string>;
  /** Post without the session's CSRF token (logout: with it, the sessions would end here). */
  noCsrf?: boolean;
  expect: Record<Role, number>;
}

const login = 303; // anonymous page views go to the login form
const same = (n: number, anon = login): Record<Role, number> => ({ anon, outsider: n, eng: n, lead: n, aud: n });
const auditorOnly = { anon: login, outsider: 403, eng: 403, lead: 403, aud: 200 };

describe('web pages: authorization of every route', () => {
  let t: TestDb;
  let w: Awaited<ReturnType<typeof webIdentity>>;
  const clients = {} as Record<Role, ReturnType<typeof w.client>>;
  const csrf = {} as Record<Role, string>;
  let pendingA = '';
  let pendingB = '';
  let liveGrant = '';
  let breakGlass = '';

  before(async () => {
    t = await BACKENDS[0]!.open();
    const clock = new TestClock();
    w = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY });
    const people: Record<Exclude<Role, 'anon'>, string[]> = { outsider: ['marketing'], eng: ['engineering', 'oncall'], lead: ['sre-leads'], aud: ['auditors'] };
    for (const role of ROLES) {
      const b = w.client();
      if (role !== 'anon') {
        const u = await w.addUser(role, people[role]);
        assert.equal((await b.login(u)).status, 303);
        await b.get('/ui');
      }
      clients[role] = b;
      csrf[role] = b.csrf();
    }
    const file = async (who: Awaited<ReturnType<typeof w.as>>, body: Record<string, unknown>) => (await who('POST', '/v1/requests', body)).body.id as string;
    const engApi = async (body: Record<string, unknown>) => {
      // eng's own requests, through the pages (as eng would file them).
      const res = await clients.eng.post('/ui/requests/new', { csrf: csrf.eng, action: 'submit', ...(body as Record<string, string>) });
      assert.equal(res.status, 303, clients.eng.html);
      return res.headers.get('location')!.split('/').pop()!;
    };
    pendingA = await engApi({ role: 'web-prod', duration: '3h', reason: 'migrate the session store' });
    pendingB = await engApi({ role: 'web-prod', duration: '3h', reason: 'migrate the cache cluster' });
    liveGrant = await engApi({ role: 'web-prod', duration: '1h', reason: 'restart stuck workers' });
    const sre = await w.as(await w.addUser('sre', ['sre']));
    breakGlass = await file(sre, { role: 'web-prod', duration: '30m', reason: 'the site is down, need a shell', break_glass: true });
  });
  after(() => t.cleanup());

  const cases = (): Case[] => [
    { route: '/', method: 'GET', url: '/', expect: same(200, 200) },
    { route: '/ui/login', method: 'GET', url: '/ui/login', expect: same(303, 200) },
    { route: '/ui/login', method: 'POST', url: '/ui/login', form: { username: 'eng', password: 'x', totp: '000000' }, expect: same(403, 403) },
    // No sign-in waits for a passkey in these browsers: nothing to show or finish, for anyone.
    { route: '/ui/login/passkey', method: 'GET', url: '/ui/login/passkey', expect: same(401, 401) },
    { route: '/ui/login/passkey', method: 'POST', url: '/ui/login/passkey', form: { webauthn: '{}' }, expect: same(401, 401) },
    { route: '/ui/account', method: 'GET', url: '/ui/account', expect: same(200) },
    // An answer that is no passkey's: refused, nothing registered (the page just shown made the challenge).
    { route: '/ui/account/passkeys', method: 'POST', url: '/ui/account/passkeys', form: { name: 'laptop', webauthn: '{}' }, expect: same(400, 401) },
    { route: '/ui/account/passkeys/:id/remove', method: 'POST', url: '/ui/account/passkeys/AAAA/remove', expect: same(404, 401) },
    { route: '/ui/logout', method: 'POST', url: '/ui/logout', noCsrf: true, expect: same(403, 303) },
    { route: '/ui/', method: 'GET', url: '/ui/', expect: same(301, 301) },
    { route: '/ui', method: 'GET', url: '/ui', expect: same(200) },
    { route: '/ui/requests/new', method: 'GET', url: '/ui/requests/new', expect: same(200) },
    { route: '/ui/requests/new', method: 'POST', url: '/ui/requests/new', form: { role: 'web-prod', duration: '3h', reason: 'check what policy says', action: 'preview' }, expect: same(200, 401) },
    { route: '/ui/requests/:id', method: 'GET', url: `/ui/requests/${pendingA}`, expect: { anon: login, outsider: 404, eng: 200, lead: 200, aud: 200 } },
    // A wrong code from the approver: the route is open to them, and nothing is decided.
    { route: '/ui/requests/:id/decide', method: 'POST', url: `/ui/requests/${pendingA}/decide`, form: { decision: 'approve', totp: '000000' }, expect: { anon: 401, outsider: 404, eng: 403, lead: 401, aud: 403 } },
    { route: '/ui/queue', method: 'GET', url: '/ui/queue', expect: { anon: login, outsider: 403, eng: 403, lead: 200, aud: 403 } },
    { route: '/ui/audit', method: 'GET', url: '/ui/audit', expect: auditorOnly },
    { route: '/ui/audit/certificates', method: 'GET', url: '/ui/audit/certificates?user=eng', expect: auditorOnly },
    { route: '/ui/audit/events', method: 'GET', url: '/ui/audit/events?actor=eng', expect: auditorOnly },
    { route: '/ui/audit/certificates.csv', method: 'GET', url: '/ui/audit/certificates.csv', expect: auditorOnly },
    { route: '/ui/audit/certificates.json', method: 'GET', url: '/ui/audit/certificates.json', expect: auditorOnly },
    { route: '/ui/audit/events.csv', method: 'GET', url: '/ui/audit/events.csv', expect: auditorOnly },
    { route: '/ui/audit/events.json', method: 'GET', url: '/ui/audit/events.json', expect: auditorOnly },
    { route: '/ui/audit/integrity', method: 'GET', url: '/ui/audit/integrity', expect: auditorOnly },
    { route: '/ui/audit/requests/:id', method: 'GET', url: `/ui/audit/requests/${pendingA}`, expect: auditorOnly },
    { route: '/ui/audit/report', method: 'GET', url: '/ui/audit/report', expect: auditorOnly },
    ...(['csv', 'json', 'md'] as const).map((f) => ({ route: `/ui/audit/report.${f}`, method: 'GET' as const, url: `/ui/audit/report.${f}`, expect: auditorOnly })),
    // The posts that succeed for their one rightful user come last, that user last.
    { route: '/ui/requests/:id/cancel', method: 'POST', url: `/ui/requests/${pendingB}/cancel`, expect: { anon: 401, outsider: 404, aud: 403, lead: 403, eng: 303 } },
    { route: '/ui/grants/:id/relinquish', method: 'POST', url: `/ui/grants/${liveGrant}/relinquish`, expect: { anon: 401, outsider: 404, aud: 404, lead: 404, eng: 303 } },
    { route: '/ui/grants/:id/acknowledge', method: 'POST', url: `/ui/grants/${breakGlass}/acknowledge`, form: { comment: 'checked the incident ticket' }, expect: { anon: 401, outsider: 404, aud: 403, eng: 404, lead: 303 } },
  ];

  test('every /ui route answers each kind of user as the table says', async () => {
    const table = cases();
    // Every GET/POST route the app serves under / and /ui is in the table (static files aside).
    const served = new Set(w.app.routes.filter((r) => (r.path === '/' || r.path.startsWith('/ui')) && r.method !== 'ALL' && !r.path.startsWith('/ui/static/')).map((r) => `${r.method} ${r.path}`));
    const listed = new Set(table.map((c) => `${c.method} ${c.route}`));
    assert.deepEqual([...served].filter((r) => !listed.has(r)), [], 'routes without an authorization case');
    const wrong: string[] = [];
    for (const c of table) {
      for (const role of ROLES) {
        const b = clients[role];
        // CSRF tokens are valid (but for logout, and the login form has its own): only authorization is under test.
        const res = c.method === 'GET' ? await b.get(c.url) : await b.post(c.url, { ...(c.noCsrf ? {} : { csrf: csrf[role] }), ...c.form });
        if (res.status !== c.expect[role]) wrong.push(`${role} ${c.method} ${c.url}: ${res.status}, expected ${c.expect[role]}`);
        if (res.status === 303 && c.method === 'GET' && role === 'anon') assert.match(res.headers.get('location')!, /^\/ui\/login\?next=%2Fui/);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('the refused posts changed nothing; the allowed ones did exactly their one thing', async () => {
    const a = await w.requests.get({ username: 'lead', groups: ['sre-leads'], isAdmin: false, isAuditor: false, expiresAt: new Date(8e15), auth: PASSWORD_TOTP }, pendingA);
    assert.equal(a.status, 'pending');
    assert.deepEqual(a.approvals, []);
    const failed = await listEvents(t.db, { action: 'step_up.failed', target: pendingA });
    assert.deepEqual(failed.map((e) => [e.actor, e.details['reason']]), [['lead', 'bad_totp']], 'only the approver reached the step-up');
    const cancels = await listEvents(t.db, { action: 'request.cancel' });
    assert.deepEqual(cancels.map((e) => [e.actor, e.target]), [['eng', pendingB]]);
    const reviews = await listEvents(t.db, { action: 'grant.review' });
    assert.deepEqual(reviews.map((e) => [e.actor, e.target]), [['lead', breakGlass]]);
    const relinquished = await listEvents(t.db, { action: 'grant.relinquish' });
    assert.deepEqual(relinquished.map((e) => [e.actor, e.target]), [['eng', liveGrant]]);
  });
});
