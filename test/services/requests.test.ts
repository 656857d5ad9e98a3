// The access workflow through the HTTP API, on each database: filing,
// decisions, approvals (and their races), expiry, extension, relinquishment,
// break-glass, and certificates bound to the grant.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { findCertificateBySerial } from '../helpers/certificate-rows.js';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';


const keyDir = tempDir();
const laptop = userKey(keyDir, 'ed25519', undefined, 'laptop');

for (const backend of BACKENDS) {
  describe(`access workflow (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let as: Record<string, Awaited<ReturnType<typeof id.as>>>;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      const people: Record<string, string[]> = {
        eng: ['engineering'],
        oncall: ['engineering', 'oncall'],
        lead1: ['engineering', 'sre-leads'],
        lead2: ['sre-leads'],
        carol: [],
        sre: ['sre'],
        outsider: ['marketing'],
      };
      as = {};
      for (const [name, groups] of Object.entries(people)) as[name] = await id.as(await id.addUser(name, groups));
    });
    after(() => t.cleanup());

    const request = (who: string, body: Record<string, unknown>) => as[who]!('POST', '/v1/requests', body);

    test('ok-auto-approve: an on-call engineer gets web-prod at once; the decision and rule are stored', async () => {
      const res = await request('oncall', { role: 'web-prod', duration: '1h', reason: 'deploy hotfix for checkout' });
      assert.equal(res.status, 201);
      const r = res.body;
      assert.equal(r.status, 'approved');
      assert.equal(r.decision.rule, 'auto_approve[0]');
      assert.match(r.decision.reason, /oncall/);
      assert.equal(r.grant.starts_at, clock.now().toISOString());
      assert.equal(r.grant.ends_at, new Date(clock.ms + 3600_000).toISOString());
      assert.equal(r.grant.live, true);
      const ev = (await listEvents(t.db, { action: 'request.create', target: r.id }))[0]!;
      assert.equal(ev.actor, 'oncall');
      assert.equal(ev.details['rule'], 'auto_approve[0]');
      assert.equal(ev.details['outcome'], 'approved');
    });

    test('ok-certificate: bound to the grant — principals, options and window from the role and grant; logged', async () => {
      const r = (await request('oncall', { role: 'web-prod', duration: '30m', reason: 'restart stuck workers' })).body;
      clock.advance(600);
      const res = await as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: r.id });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const c = res.body;
      assert.deepEqual(c.principals, ['deploy']);
      assert.equal(c.valid_before, r.grant.ends_at.replace('.000Z', 'Z'));
      assert.equal(c.valid_after, new Date(clock.ms - 60_000).toISOString().replace('.000Z', 'Z'));
      assert.equal(c.key_id, `oncall@jit-ssh req=${r.id} serial=${c.serial}`);
      const parsed = parseCertificate(Buffer.from(c.certificate.split(' ')[1], 'base64'));
      assert.equal(parsed.criticalOptions.get('source-address'), '10.0.0.0/8,127.0.0.1/32');
      assert.deepEqual([...parsed.extensions.keys()], ['permit-port-forwarding', 'permit-pty']);
      const row = await findCertificateBySerial(t.db, BigInt(c.serial));
      assert.equal(row?.certificate, c.certificate);
      assert.equal(row?.requestId, r.id);
      assert.equal(row?.role, 'web-prod');
      // A second key for the same grant (a new laptop) is fine, and logged too.
      const again = await as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: r.id });
      assert.equal(again.status, 201);
      assert.notEqual(again.body.serial, c.serial);
    });

    test('ok-valid-after: never earlier than the grant start minus the skew', async () => {
      const r = (await request('oncall', { role: 'web-prod', duration: '30m', reason: 'restart stuck workers' })).body;
      const c = (await as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: r.id })).body;
      assert.equal(c.valid_after, new Date(Date.parse(r.grant.starts_at) - 60_000).toISOString().replace('.000Z', 'Z'));
    });

    test('ok-approval: a pending request is approved by an approver; the grant starts at approval', async () => {
      const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'migrate the session store' })).body;
      assert.equal(r.status, 'pending');
      assert.equal(r.decision.rule, 'approval');
      assert.equal(r.grant, null);
      const mine = (await as['carol']!('GET', '/v1/requests?status=pending')).body.requests.map((x: { id: string }) => x.id);
      assert.ok(mine.includes(r.id), 'the approver sees the request in the queue');
      assert.equal((await as['eng']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: r.id })).status, 404);
      clock.advance(300);
      const approved = await as['carol']!('POST', `/v1/requests/${r.id}/approve`, { comment: 'ok, go ahead' });
      assert.equal(approved.status, 200);
      assert.equal(approved.body.status, 'approved');
      assert.equal(approved.body.grant.starts_at, clock.now().toISOString());
      assert.deepEqual(approved.body.approvals.map((a: { approver: string; comment: string }) => [a.approver, a.comment]), [['carol', 'ok, go ahead']]);
      assert.equal((await as['eng']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: r.id })).status, 201);
    });

    test('fail-self-approval: an approver cannot approve their own request', async () => {
      const r = (await request('lead1', { role: 'web-prod', duration: '3h', reason: 'rotate the TLS certificates' })).body;
      const self = await as['lead1']!('POST', `/v1/requests/${r.id}/approve`, {});
      assert.equal(self.status, 403);
      assert.match(self.body.detail, /your own request/);
      assert.equal((await as['lead2']!('POST', `/v1/requests/${r.id}/approve`, {})).body.status, 'approved');
    });

    test('fail-not-an-approver: others cannot decide, and outsiders cannot even see the request', async () => {
      const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'investigate the memory leak' })).body;
      assert.equal((await as['oncall']!('POST', `/v1/requests/${r.id}/approve`, {})).status, 404);
      assert.equal((await as['outsider']!('GET', `/v1/requests/${r.id}`)).status, 404);
      assert.equal((await as['sre']!('POST', `/v1/requests/${r.id}/deny`, {})).status, 404);
    });

    test('ok-two-approvers: db-prod needs two distinct approvers; an approver counts once', async () => {
      const noTicket = await request('eng', { role: 'db-prod', duration: '1h', reason: 'fix a broken migration' });
      assert.equal(noTicket.body.status, 'denied');
      assert.equal(noTicket.body.decision.rule, 'ticket-required');
      const r = (await request('eng', { role: 'db-prod', duration: '1h', reason: 'fix a broken migration', ticket: 'OPS-42' })).body;
      assert.equal(r.required_approvals, 2);
      assert.equal((await as['lead1']!('POST', `/v1/requests/${r.id}/approve`, {})).body.status, 'pending');
      const twice = await as['lead1']!('POST', `/v1/requests/${r.id}/approve`, {});
      assert.equal(twice.status, 409);
      assert.match(twice.body.detail, /already decided/);
      assert.equal((await as['lead2']!('POST', `/v1/requests/${r.id}/approve`, {})).body.status, 'approved');
    });

    test('ok-race: two approvers at once each give one approval', async () => {
      const r = (await request('eng', { role: 'db-prod', duration: '1h', reason: 'vacuum the orders table', ticket: 'OPS-43' })).body;
      const [a, b] = await Promise.all([as['lead1']!('POST', `/v1/requests/${r.id}/approve`, {}), as['lead2']!('POST', `/v1/requests/${r.id}/approve`, {})]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      const final = (await as['eng']!('GET', `/v1/requests/${r.id}`)).body;
      assert.equal(final.status, 'approved');
      assert.equal(final.approvals.length, 2);
    });

    test('ok-race: approval and cancellation at once end in one consistent state', async () => {
      for (let i = 0; i < 5; i++) {
        const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'look at the slow queries' })).body;
        const [approve, cancel] = await Promise.all([as['carol']!('POST', `/v1/requests/${r.id}/approve`, {}), as['eng']!('POST', `/v1/requests/${r.id}/cancel`)]);
        const final = (await as['eng']!('GET', `/v1/requests/${r.id}`)).body;
        assert.deepEqual([approve.status, cancel.status].sort(), [200, 409]);
        if (approve.status === 200) {
          assert.equal(final.status, 'approved');
          assert.ok(final.grant);
        } else {
          assert.equal(final.status, 'cancelled');
          assert.equal(final.grant, null);
        }
      }
    });

    test('ok-deny-and-cancel: denial with a comment; only the requester cancels; decided requests stay decided', async () => {
      const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'clean up old releases' })).body;
      const denied = await as['lead2']!('POST', `/v1/requests/${r.id}/deny`, { comment: 'use the pipeline' });
      assert.equal(denied.body.status, 'denied');
      assert.equal(denied.body.close_reason, 'use the pipeline');
      assert.equal((await as['carol']!('POST', `/v1/requests/${r.id}/approve`, {})).status, 409);
      const r2 = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'clean up old releases' })).body;
      assert.equal((await as['carol']!('POST', `/v1/requests/${r2.id}/cancel`)).status, 403);
      assert.equal((await as['eng']!('POST', `/v1/requests/${r2.id}/cancel`)).body.status, 'cancelled');
    });

    test('fail-expiry: an unanswered request expires after the request TTL', async () => {
      const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'check the queue consumers' })).body;
      const lazy = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'check the queue consumers' })).body;
      clock.advance(3601);
      assert.ok((await id.requests.expireDue()) >= 1);
      assert.equal((await as['eng']!('GET', `/v1/requests/${r.id}`)).body.status, 'expired');
      // One the sweeper has not reached yet expires when someone tries to decide it.
      await t.db.updateTable('requests').set({ expires_at: clock.now() }).where('id', '=', lazy.id).execute().catch(() => {});
      const late = await as['carol']!('POST', `/v1/requests/${lazy.id}/approve`, {});
      assert.equal(late.status, 409);
      assert.match(late.body.detail, /expired/);
      assert.equal((await as['eng']!('GET', `/v1/requests/${lazy.id}`)).body.status, 'expired');
    });

    test('ok-extension: moves the grant end, never shortens it; beyond the auto-approve cap it needs approval', async () => {
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'long-running data fix' })).body;
      const end = Date.parse(g.grant.ends_at);
      const ext = await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '30m', reason: 'data fix needs more time' });
      assert.equal(ext.status, 201);
      assert.equal(ext.body.status, 'approved');
      assert.equal(ext.body.extends_grant, g.id);
      assert.equal(Date.parse(ext.body.grant.ends_at), end + 1800_000);
      const big = await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '1h', reason: 'data fix needs more time' });
      assert.equal(big.body.status, 'pending');
      assert.equal((await as['carol']!('POST', `/v1/requests/${big.body.id}/approve`, {})).body.status, 'approved');
      assert.equal(Date.parse((await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.grant.ends_at), end + 5400_000);
      const tooMuch = await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '4h', reason: 'data fix needs more time' });
      assert.equal(tooMuch.body.status, 'denied');
      assert.equal(tooMuch.body.decision.rule, 'duration-exceeds-max');
      assert.equal((await as['eng']!('POST', `/v1/requests/${g.id}/extend`, { duration: '30m', reason: 'data fix needs more time' })).status, 404);
    });

    test('ok-relinquish: the requester ends a grant early; no certificate comes from it afterwards', async () => {
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'quick log inspection' })).body;
      const done = await as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`);
      assert.equal(done.status, 200);
      assert.equal(done.body.grant.live, false);
      const cert = await as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id });
      assert.equal(cert.status, 409);
      assert.match(cert.body.detail, /relinquished/);
      assert.equal((await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '30m', reason: 'changed my mind again' })).status, 409);
    });

    test('fail-recheck: removed from the group after approval — no certificate; before approval — denied at approval', async () => {
      const drift = await id.addUser('drift', ['engineering', 'oncall']);
      const asDrift = await id.as(drift);
      const g = (await asDrift('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'routine maintenance' })).body;
      const pending = (await asDrift('POST', '/v1/requests', { role: 'web-prod', duration: '3h', reason: 'routine maintenance' })).body;
      await id.users.setGroups('drift', ['marketing'], 'os:test');
      const cert = await asDrift('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id });
      assert.equal(cert.status, 403);
      const approve = await as['carol']!('POST', `/v1/requests/${pending.id}/approve`, {});
      assert.equal(approve.status, 409);
      assert.match(approve.body.detail, /no longer may request/);
      assert.equal((await as['carol']!('GET', `/v1/requests/${pending.id}`)).body.status, 'denied');
    });

    test('ok-break-glass: granted at once with the shorter cap, flagged, approvers notified, reviewed by someone else', async () => {
      const over = await request('sre', { role: 'web-prod', duration: '2h', reason: 'site down, pager fired', break_glass: true });
      assert.equal(over.body.status, 'denied');
      const r = (await request('sre', { role: 'web-prod', duration: '45m', reason: 'site down, pager fired', break_glass: true })).body;
      assert.equal(r.status, 'approved');
      assert.equal(r.decision.rule, 'break-glass');
      assert.equal(r.grant.break_glass, true);
      assert.deepEqual(r.grant.review, { status: 'open', by: null, at: null, comment: null });
      const note = await t.db.selectFrom('notifications').select(['event', 'body']).where('event', '=', 'request.break_glass').execute();
      const body = JSON.parse(note.at(-1)!.body);
      assert.deepEqual(body.notify.sort(), ['group:sre', 'group:sre-leads', 'user:carol']);
      assert.match(body.text, /BREAK-GLASS/);
      assert.ok((await as['lead1']!('GET', '/v1/requests?review=open')).body.requests.some((x: { id: string }) => x.id === r.id));
      assert.equal((await as['sre']!('POST', `/v1/requests/${r.id}/acknowledge`, {})).status, 403);
      const ack = await as['lead1']!('POST', `/v1/requests/${r.id}/acknowledge`, { comment: 'checked the incident ticket' });
      assert.equal(ack.body.grant.review.status, 'acknowledged');
      assert.equal(ack.body.grant.review.by, 'lead1');
      assert.equal((await as['lead2']!('POST', `/v1/requests/${r.id}/acknowledge`, {})).status, 409);
      assert.equal((await as['outsider']!('POST', '/v1/requests', { role: 'web-prod', duration: '10m', reason: 'I want in right now', break_glass: true })).body.decision.rule, 'not-break-glass');
    });

    test('ok-notifications: queued in the same transaction; the requester hears the outcome, never the actor', async () => {
      const r = (await request('eng', { role: 'web-prod', duration: '3h', reason: 'tune nginx workers' })).body;
      await as['carol']!('POST', `/v1/requests/${r.id}/approve`, {});
      const rows = await t.db.selectFrom('notifications').selectAll().orderBy('id').execute();
      const mine = rows.map((n) => JSON.parse(n.body)).filter((b) => b.request.id === r.id);
      assert.deepEqual(mine.map((b) => b.event), ['request.created', 'request.approved']);
      assert.deepEqual(mine[0].notify.sort(), ['group:sre-leads', 'user:carol']);
      assert.deepEqual(mine[1].notify, ['user:eng']);
      assert.equal(mine[1].actor, 'carol');
      assert.ok(rows.every((n) => n.url === 'http://127.0.0.1:9/hook' && n.status === 'pending'));
    });

    test('ok-dry-run and roles: what policy would decide, filing nothing; each person sees their roles', async () => {
      const before = (await as['eng']!('GET', '/v1/requests')).body.requests.length;
      const dry = await request('oncall', { role: 'web-prod', duration: '3h', reason: 'just asking policy', dry_run: true });
      assert.equal(dry.status, 200);
      assert.equal(dry.body.dry_run, true);
      assert.equal(dry.body.status, 'pending');
      assert.equal((await as['eng']!('GET', '/v1/requests')).body.requests.length, before);
      const roles = (await as['eng']!('GET', '/v1/roles')).body.roles;
      assert.deepEqual(roles.map((x: { name: string }) => x.name).sort(), ['db-prod', 'web-prod']);
      assert.deepEqual((await as['outsider']!('GET', '/v1/roles')).body.roles, []);
      assert.deepEqual((await as['sre']!('GET', '/v1/roles')).body.roles.map((x: { name: string; break_glass: boolean }) => [x.name, x.break_glass]), [['web-prod', true]]);
    });

    test('fail-input: bad requests are 400 problems, never 5xx', async () => {
      for (const body of [{}, { role: 'web-prod' }, { role: 'web-prod', reason: 'x'.repeat(2000) }, { role: 'web-prod', reason: 'valid reason here', duration: 'forever' }, { role: 'web-prod', reason: 'valid reason here', ticket: 'bad ticket id' }, { role: 7, reason: 'a' }]) {
        const res = await request('eng', body);
        assert.equal(res.status, 400, JSON.stringify(body));
      }
      assert.equal((await as['eng']!('POST', '/v1/certificates', { request_id: 'x' })).status, 400);
      // The body is vetted whole, the key first: a garbage key is named even when the request id is malformed.
      assert.equal((await as['eng']!('POST', '/v1/certificates', { public_key: 'ssh-dss AAAA', request_id: 'nope' })).status, 400);
      assert.equal((await as['eng']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: 'nope' })).status, 404);
      assert.equal((await as['eng']!('GET', '/v1/requests?status=weird')).status, 400);
      assert.equal((await id.app.request('/v1/requests')).status, 401);
    });
  });
}
