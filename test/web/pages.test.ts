// The web pages' workflow over each database, at the HTTP level: the dry run
// before filing, approval with a step-up code bound to the request (and the
// replay rules it shares with login), the queue's contents, break-glass
// review, the auditor's searches, downloads, timeline, integrity and report,
// and what bad input and errors look like.

import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { STEP_UP_FAILED, type Principal } from '../../src/services/auth.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock, totpAt } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { webIdentity, type TestUser } from './helpers.js';

const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');
const principal = (username: string, groups: string[] = []): Principal => ({ username, groups, isAdmin: false, isAuditor: groups.includes('auditors'), expiresAt: new Date(8e15), auth: PASSWORD_TOTP });
const decode = (html: string) => html.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

for (const backend of BACKENDS) {
  describe(`web pages (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let w: Awaited<ReturnType<typeof webIdentity>>;
    const u: Record<string, TestUser> = {};
    let approved = '';

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      w = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY });
      const people: Record<string, string[]> = { eng: ['engineering'], lead: ['sre-leads'], carol: [], sre: ['sre'], aud: ['auditors'] };
      for (const [name, groups] of Object.entries(people)) u[name] = await w.addUser(name, groups);
    });
    after(() => t.cleanup());

    const session = async (name: string) => {
      const b = w.client();
      assert.equal((await b.login(u[name]!)).status, 303);
      await b.get('/ui');
      return b;
    };
    const file = async (b: Awaited<ReturnType<typeof session>>, fields: Record<string, string>) => {
      await b.get('/ui/requests/new');
      const res = await b.post('/ui/requests/new', { csrf: b.csrf(), action: 'submit', ...fields });
      assert.equal(res.status, 303, b.html);
      return res.headers.get('location')!.split('/').pop()!;
    };

    test('ok: the new-request form shows the dry-run decision and files nothing until submitted', async () => {
      const b = await session('eng');
      await b.get('/ui/requests/new');
      assert.doesNotMatch(b.html, /Submit request/, 'submit offered before the dry run');
      const res = await b.post('/ui/requests/new', { csrf: b.csrf(), role: 'web-prod', duration: '2h', reason: 'deploy the checkout fix', ticket: 'OPS-7', action: 'preview' });
      assert.equal(res.status, 200);
      assert.match(b.html, /If you submit now \(web-prod for 2h\)/);
      assert.match(b.html, /badge s-pending">pending<\/span> by rule <code>approval<\/code>/);
      assert.match(b.html, /needs 1 approval from group:sre-leads, user:carol/);
      assert.match(b.html, /<button type="submit" name="action" value="submit" class="primary">Submit request<\/button>/);
      assert.match(b.html, /value="OPS-7"/);
      assert.equal((await w.requests.history(principal('eng'), 'eng')).length, 0, 'the dry run filed a request');
      // A request policy would deny offers no submit button.
      await b.post('/ui/requests/new', { csrf: b.csrf(), role: 'web-prod', duration: '6h', reason: 'deploy the checkout fix', action: 'preview' });
      assert.match(b.html, /denied<\/span> by rule <code>duration-exceeds-max<\/code>/);
      assert.doesNotMatch(b.html, /Submit request/);
    });

    test('ok-step-up: approval needs a fresh code: the login code is refused, the next one approves, and then logs nobody in', async () => {
      const eng = await session('eng');
      const id = await file(eng, { role: 'web-prod', duration: '2h', reason: 'deploy the checkout fix', ticket: 'OPS-7' });
      const lead = w.client();
      assert.equal((await lead.login(u['lead']!)).status, 303);
      const loginCode = lead.lastCode;
      await lead.get(`/ui/requests/${id}`);
      assert.match(lead.html, /Authenticator code, to confirm/);

      const replay = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', comment: 'looks right', totp: loginCode });
      assert.equal(replay.status, 401);
      assert.ok(decode(lead.html).includes(STEP_UP_FAILED));
      assert.match(lead.html, />looks right<\/textarea>/, 'the comment was lost');
      assert.equal((await w.requests.get(principal('lead', ['sre-leads']), id)).status, 'pending');
      const wrong = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', totp: '12345a' });
      assert.equal(wrong.status, 401);
      assert.deepEqual((await listEvents(t.db, { action: 'step_up.failed', target: id })).map((e) => e.details['reason']), ['totp_replay', 'bad_totp']);

      const fresh = totpAt(u['lead']!.secret, clock, 30); // the next time-step: accepted now, never used before
      const ok = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', comment: 'looks right', totp: fresh });
      assert.equal(ok.status, 303, lead.html);
      assert.equal(ok.headers.get('location'), `/ui/requests/${id}`);
      const r = await w.requests.get(principal('lead', ['sre-leads']), id);
      assert.equal(r.status, 'approved');
      assert.deepEqual(r.approvals.map((a) => [a.approver, a.decision, a.comment]), [['lead', 'approve', 'looks right']]);
      const [approve] = await listEvents(t.db, { action: 'request.approve', target: id });
      assert.deepEqual(approve!.details['step_up'], { method: 'totp', at: clock.now().toISOString() });
      const [stepped] = await listEvents(t.db, { action: 'step_up.ok', target: id });
      assert.equal(stepped!.details['purpose'], 'request.approve');
      // The approval's code cannot log anyone in.
      const again = w.client();
      await again.get('/ui/login');
      const refused = await again.post('/ui/login', { csrf: again.csrf(), username: 'lead', password: u['lead']!.password, totp: fresh });
      assert.equal(refused.status, 401);
      assert.match(again.html, /Invalid user name, password or code/);
      assert.match(again.html, /value="lead"/, 'the user name was not kept');
      assert.ok(!again.html.includes(u['lead']!.password), 'the password came back in the page');
      // Once decided, the form is gone and a late decision is refused on the page.
      const late = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'deny', totp: totpAt(u['lead']!.secret, clock, 30) });
      assert.equal(late.status, 409);
      assert.match(lead.html, /<div class="alert" role="alert">This request is already approved.<\/div>/);
      assert.doesNotMatch(lead.html, /Confirm decision/);
      approved = id;
    });

    test('fail: a step-up proof counts only for the request and verdict it was given for', async () => {
      const eng = await session('eng');
      const a = await file(eng, { role: 'web-prod', duration: '3h', reason: 'migrate the session store' });
      const b = await file(eng, { role: 'web-prod', duration: '3h', reason: 'migrate the cache cluster' });
      clock.advance(30);
      const proof = await w.stepUp.verify({ username: 'lead', totp: totpAt(u['lead']!.secret, clock), purpose: 'request.approve', target: a, clientAddress: null });
      const caller = { principal: principal('lead', ['sre-leads']), clientAddress: null, stepUp: proof };
      await assert.rejects(w.requests.approve(caller, b, null), /confirmed for another action/);
      await assert.rejects(w.requests.deny(caller, a, null), /confirmed for another action/);
      assert.equal((await w.requests.get(caller.principal, b)).status, 'pending');
      assert.equal((await w.requests.approve(caller, a, null)).status, 'approved');
    });

    test('ok: deny with a step-up; the queue shows what a decision needs, including the requester\'s history', async () => {
      const eng = await session('eng');
      const id = await file(eng, { role: 'db-prod', duration: '1h', reason: 'vacuum the <orders> table & "fix" bloat', ticket: 'DBA-42' });
      const carol = await session('carol');
      await carol.get('/ui/queue');
      assert.ok(!carol.html.includes(`id="q-${id}"`), 'carol approves web-prod only, yet sees a db-prod request to decide');
      const lead = await session('lead');
      await lead.get('/ui/queue');
      const card = decode(lead.html.slice(lead.html.indexOf(`id="q-${id}"`)));
      for (const fact of ['eng asks for db-prod for 1h', 'dba, postgres', 'vacuum the <orders> table & "fix" bloat', 'DBA-42', 'needs 2 approvals from group:sre-leads', 'approval', "eng's recent requests", 'deploy the checkout fix']) {
        assert.ok(card.includes(fact), `the queue card lacks ${fact}`);
      }
      assert.ok(!lead.html.includes('<orders>'), 'user text was not escaped');
      clock.advance(30);
      const res = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'deny', comment: 'use the maintenance window', totp: totpAt(u['lead']!.secret, clock) });
      assert.equal(res.status, 303, lead.html);
      assert.equal((await w.requests.get(principal('eng'), id)).status, 'denied');
      const [deny] = await listEvents(t.db, { action: 'request.deny', target: id });
      assert.equal((deny!.details['step_up'] as { method: string }).method, 'totp');
      await lead.get('/ui/queue');
      assert.ok(!lead.html.includes(`id="q-${id}"`), 'a decided request is still in the queue');
    });

    test('ok: break-glass uses wait in the queue until an approver acknowledges them', async () => {
      const sre = await session('sre');
      const id = await file(sre, { role: 'web-prod', duration: '30m', reason: 'the site is down, need a shell', break_glass: 'on' });
      const lead = await session('lead');
      await lead.get('/ui/queue');
      assert.match(lead.html, new RegExp(`id="bg-${id}"`));
      const res = await lead.post(`/ui/grants/${id}/acknowledge`, { csrf: lead.csrf(), comment: 'incident INC-9, restart only' });
      assert.equal(res.status, 303);
      const r = await w.requests.get(principal('lead', ['sre-leads']), id);
      assert.deepEqual([r.grant!.review!.status, r.grant!.review!.by, r.grant!.review!.comment], ['acknowledged', 'lead', 'incident INC-9, restart only']);
      await lead.get('/ui/queue');
      assert.doesNotMatch(lead.html, new RegExp(`id="bg-${id}"`));
    });

    test('fail: bad input is explained on the page, next to fields that keep their values', async () => {
      const b = await session('eng');
      const res = await b.post('/ui/requests/new', { csrf: b.csrf(), role: 'web-prod', duration: 'forever', reason: 'rebuild <the> index', ticket: 'OPS-1', action: 'preview' });
      assert.equal(res.status, 400);
      assert.match(b.html, /<div class="alert" role="alert" id="request-error">duration must be like 90s, 15m, 2h or 1h30m<\/div>/);
      assert.match(b.html, /id="duration" name="duration" value="forever" [^>]*aria-invalid="true" aria-describedby="duration-hint request-error"/);
      assert.match(b.html, />rebuild &lt;the&gt; index<\/textarea>/);
      assert.match(b.html, /value="OPS-1"/);
      const ticket = await b.post('/ui/requests/new', { csrf: b.csrf(), role: 'web-prod', duration: '1h', reason: 'rebuild the index', ticket: 'no spaces allowed', action: 'preview' });
      assert.equal(ticket.status, 400);
      assert.match(b.html, /ticket must be an identifier such as OPS-123/);
      // Unknown pages are pages; the API keeps problem+json.
      const missing = await b.get('/ui/requests/NOT-AN-ID');
      assert.equal(missing.status, 404);
      assert.match(b.html, /<h1>Not found<\/h1>/);
      const gone = await b.get('/ui/requests/01ARZ3NDEKTSV4RRFFQ69G5FAV');
      assert.equal(gone.status, 404);
      assert.match(b.html, /no request 01ARZ3NDEKTSV4RRFFQ69G5FAV/);
      const api = await w.app.request('/v1/nothing');
      assert.equal(api.headers.get('content-type'), 'application/problem+json');
    });

    test('fail: an unexpected error shows a plain page and leaks nothing', async () => {
      const b = await session('eng');
      const history = w.requests.history;
      w.requests.history = async () => {
        throw new Error('connect ECONNREFUSED 10.9.8.7 password=hunter2');
      };
      try {
        const res = await b.get('/ui');
        assert.equal(res.status, 500);
        assert.match(b.html, /Something went wrong on the server/);
        assert.ok(!/hunter2|10\.9\.8\.7|ECONNREFUSED|at .*\.ts/.test(b.html), b.html);
      } finally {
        w.requests.history = history;
      }
    });

    test('ok: a visitor without a session is sent to log in, then back to the page asked for (never elsewhere)', async () => {
      const b = w.client();
      const res = await b.get('/ui/audit/events');
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/ui/login?next=%2Fui%2Faudit%2Fevents');
      assert.equal((await b.login(u['aud']!, undefined, '/ui/audit/events')).headers.get('location'), '/ui/audit/events');
      for (const next of ['//evil.example/ui', 'https://evil.example/', '/ui/../v1/audit/events', '/uix']) {
        const c = w.client();
        assert.equal((await c.login(u['aud']!, undefined, next)).headers.get('location'), '/ui', next);
      }
    });

    test('ok: the auditor finds the certificate, downloads the search, and reads the timeline, integrity and report', async () => {
      assert.ok(approved, 'needs the approval test');
      const api = await w.as(u['eng']!);
      const cert = await api('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: approved });
      assert.equal(cert.status, 201, JSON.stringify(cert.body));
      const serial = cert.body.serial as string;
      const aud = await session('aud');

      await aud.get('/ui/audit/certificates?user=eng&role=web-prod');
      assert.match(aud.html, new RegExp(`<td class="mono">${serial}</td>`));
      assert.match(aud.html, /id="f-user" name="user" value="eng"/);
      const csv = await aud.get('/ui/audit/certificates.csv?user=eng&role=web-prod&cursor=ignored');
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-disposition')!, /^attachment; filename="jit-ssh-certificates-\d{8}T\d{6}Z\.csv"$/);
      const lines = (await csv.text()).trimEnd().split('\r\n');
      assert.equal(lines[0], 'serial,issued_at,user,role,principals,valid_after,valid_before,request_id,break_glass,revoked_at,first_used,last_used,client_address,public_key_fingerprint,ca_key_fingerprint,key_id,kind,refusals,last_refusal');
      assert.equal(lines.length, 2, lines.join('\n'));
      assert.ok(lines[1]!.startsWith(`${serial},`) && lines[1]!.includes(`,eng,web-prod,deploy,`) && lines[1]!.includes(approved));
      const none = await aud.get('/ui/audit/certificates.csv?user=nobody');
      assert.equal((await none.text()).trimEnd().split('\r\n').length, 1);
      const json = (await (await aud.get('/ui/audit/certificates.json?serial=' + serial)).json()) as { certificates: Array<{ serial: string; certificate: string }> };
      assert.deepEqual(json.certificates.map((c) => c.serial), [serial]);
      assert.equal(json.certificates[0]!.certificate, cert.body.certificate);

      await aud.get('/ui/audit/events?actor=lead&action=request.approve');
      assert.match(aud.html, new RegExp(`href="/ui/audit/requests/${approved}"`));
      const events = (await (await aud.get('/ui/audit/events.json?actor=lead&action=request.approve')).json()) as { events: Array<{ target: string }> };
      assert.ok(events.events.some((e) => e.target === approved));
      const bad = await aud.get('/ui/audit/events?actor=lead&since=yesterday');
      assert.equal(bad.status, 400);
      assert.match(aud.html, /since must be an RFC 3339 time or a duration such as 30d/);
      assert.match(aud.html, /id="f-since" name="since" value="yesterday"/);

      await aud.get(`/ui/audit/requests/${approved}`);
      const timeline = decode(aud.html);
      for (const step of ['filed: web-prod for 2h', 'request.create', 'step_up.failed', 'step_up.ok', 'request.approve', `certificate <span class="mono">${serial}</span> issued`, 'grant starts']) {
        assert.ok(timeline.includes(step), `the timeline lacks ${step}`);
      }
      assert.match(timeline, /"step_up":\{[^}]*"method":"totp"/);
      // Oldest first, also among records of the same instant (a decision and its outcome share one).
      const order = ['filed: web-prod', '<code>request.create</code>', '<code>step_up.failed</code>', '<code>step_up.ok</code>', '<code>request.approve</code>', '<code>request.approved</code>', 'grant starts'].map((x) => timeline.indexOf(x));
      assert.deepEqual(order, [...order].sort((a, b) => a - b), `timeline out of order: ${order}`);

      await aud.get('/ui/audit/integrity');
      assert.match(aud.html, /Intact: every sealed record/);
      assert.match(aud.html, /<td>certificates<\/td><td><span class="badge s-ok">intact<\/span>/);
      assert.match(aud.html, /Requests \(\d+\), approvals \(\d+\), grants \(\d+\) and revocations \(\d+\) agree with their chained history/);

      await aud.get('/ui/audit/report?since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z');
      assert.match(aud.html, /<caption>Totals<\/caption>/);
      assert.match(aud.html, /<caption>Grants by role<\/caption>[\s\S]*<td>web-prod<\/td>/);
      assert.match(aud.html, /approved:lead/);
      const reportCsv = await aud.get('/ui/audit/report.csv?since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z');
      assert.match(reportCsv.headers.get('content-disposition')!, /access-review-2026-11-01\.csv/);
      assert.match(await reportCsv.text(), new RegExp(`^grant_id,user,role,[\\s\\S]*${approved},eng,web-prod,`));
      const badPeriod = await aud.get('/ui/audit/report?since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z');
      assert.equal(badPeriod.status, 400);
      assert.match(aud.html, /the period must start before it ends/);
    });

    test('ok: a multi-line reason or comment, sent with CRLF line breaks as browsers send textareas, is accepted as typed', async () => {
      const eng = await session('eng');
      const id = await file(eng, { role: 'web-prod', duration: '3h', reason: 'rotate the keys\r\nthen restart the workers' });
      assert.equal((await w.requests.get(principal('eng'), id)).reason, 'rotate the keys\nthen restart the workers');
      const lead = await session('lead');
      clock.advance(30);
      const res = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', comment: 'checked\r\nok', totp: totpAt(u['lead']!.secret, clock) });
      assert.equal(res.status, 303, lead.html);
      assert.deepEqual((await w.requests.get(principal('eng'), id)).approvals.map((a) => a.comment), ['checked\nok']);
    });

    test('fail: a decision whose comment is refused does not use up the step-up code', async () => {
      const eng = await session('eng');
      const id = await file(eng, { role: 'web-prod', duration: '3h', reason: 'resize the worker pool' });
      const lead = await session('lead');
      clock.advance(30);
      const code = totpAt(u['lead']!.secret, clock);
      const res = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', comment: 'x'.repeat(1001), totp: code });
      assert.equal(res.status, 400);
      assert.match(lead.html, /comment must be text of at most 1000 characters/);
      assert.deepEqual(await listEvents(t.db, { action: 'step_up.ok', target: id }), [], 'the code was spent on a decision that was not made');
      // The same code still confirms the corrected decision.
      const ok = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', comment: 'fine', totp: code });
      assert.equal(ok.status, 303, lead.html);
      assert.equal((await w.requests.get(principal('eng'), id)).status, 'approved');
    });

    test('fail: NUL bytes, far-off periods and repeated parameters get a 400 page or are read once, never a 500', async () => {
      const anon = w.client();
      await anon.get('/ui/login');
      const login = await anon.post('/ui/login', { csrf: anon.csrf(), username: 'e\0ng', password: 'x', totp: '123456' });
      assert.equal(login.status, 400, anon.html);
      assert.match(anon.html, /Enter your user name, password and code/);
      const eng = await session('eng');
      await eng.get('/ui/requests/new');
      for (const role of ['web\0prod', 'web\nprod']) {
        const res = await eng.post('/ui/requests/new', { csrf: eng.csrf(), role, duration: '1h', reason: 'restart the workers', action: 'submit' });
        assert.equal(res.status, 400, JSON.stringify(role));
        assert.match(eng.html, /role must be the name of a role/);
      }
      const aud = await session('aud');
      const bad = [
        'certificates?user=%00', 'certificates?principal=a%00b', 'certificates?role=%00', 'certificates?request=%00', 'certificates?approver=%1b',
        'events?actor=%00', 'events?action=%00', 'events?target=%00', 'events?since=99999999d', 'certificates?until=3000000d', 'report?since=99999999d', 'report?since=3000000d',
      ];
      for (const q of bad) {
        const res = await aud.get(`/ui/audit/${q}`);
        assert.equal(res.status, 400, `${q}: ${res.status}`);
        assert.match(aud.html, / must (be|not)/, q);
        const [path, query] = q.split('?');
        const download = await aud.get(`/ui/audit/${path}.${path === 'report' ? 'md' : 'csv'}?${query}`);
        assert.equal(download.status, 400, `${q} download: ${download.status}`);
      }
      // A parameter given twice is read once; the page and its download links agree.
      const twice = await aud.get('/ui/audit/certificates?user=eng&user=nobody');
      assert.equal(twice.status, 200);
      const shown = /id="f-user" name="user" value="([^"]*)"/.exec(aud.html)![1];
      assert.ok(aud.html.includes(`certificates.csv?user=${shown}`), 'the download link searches something else than the page');
    });

    test('fail: a request past its time to live is not offered for a decision, and a late one spends no code', async () => {
      const eng = await session('eng');
      const id = await file(eng, { role: 'web-prod', duration: '3h', reason: 'reindex the search cluster' });
      clock.advance(3601); // the policy's request_ttl is 1h; the expiry job has not run yet
      const lead = await session('lead');
      await lead.get('/ui/queue');
      assert.ok(!lead.html.includes(`id="q-${id}"`), 'the queue offers an expired request');
      await lead.get(`/ui/requests/${id}`);
      assert.doesNotMatch(lead.html, /Confirm decision/);
      const res = await lead.post(`/ui/requests/${id}/decide`, { csrf: lead.csrf(), decision: 'approve', totp: totpAt(u['lead']!.secret, clock, 30) });
      assert.equal(res.status, 409);
      assert.match(lead.html, /This request has expired/);
      assert.deepEqual(await listEvents(t.db, { action: 'step_up.ok', target: id }), [], 'a code was spent on a request nobody may decide any more');
    });

    test('fail: an export that fails part way is cut off as an error, never ended as if complete', async () => {
      const aud = await session('aud');
      const certificates = w.audit.certificates;
      let calls = 0;
      w.audit.certificates = async (q) => {
        if (++calls > 1) throw new Error('connection to the database was lost');
        const page = await certificates(q);
        return { ...page, next_cursor: 'more' };
      };
      try {
        for (const format of ['csv', 'json']) {
          calls = 0;
          const res = await aud.get(`/ui/audit/certificates.${format}`);
          assert.equal(res.status, 200);
          await assert.rejects(res.text(), `the ${format} download ended normally after an error`);
        }
      } finally {
        w.audit.certificates = certificates;
      }
    });
  });
}
