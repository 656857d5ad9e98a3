// A grant's window is what policy allows, and ending it early ends its
// certificates: extensions judged under the grant's lock against the grant as
// it is then; relinquishment, revocation by request or user, a disabled user,
// a user who left the role's groups and a policy that no longer lets them ask
// each end the grant and put its live certificates on the KRL, which the real
// ssh-keygen reads; a final state stays final.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const dir = tempDir();
const laptop = userKey(dir, 'ed25519', undefined, 'laptop');

/** Does the KRL revoke the certificate? Asked of ssh-keygen, not of the code that wrote the KRL. */
function krlRevokes(krl: Buffer, certificate: string): boolean {
  const krlFile = path.join(dir, `krl-${Math.random().toString(36).slice(2)}`);
  const certFile = `${krlFile}-cert.pub`;
  writeFileSync(krlFile, krl);
  writeFileSync(certFile, certificate + '\n');
  const q = spawnSync('ssh-keygen', ['-Q', '-f', krlFile, certFile], { encoding: 'utf8' });
  assert.ok(q.status === 0 || /REVOKED/.test(q.stdout), `ssh-keygen -Q failed: ${q.stderr}`);
  return q.status !== 0;
}

const hours = (iso: string, from: string) => (Date.parse(iso) - Date.parse(from)) / 3600_000;

for (const backend of BACKENDS) {
  describe(`grant windows and early ends (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let as: Record<string, Awaited<ReturnType<typeof id.as>>>;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      const people: Record<string, string[]> = { eng: ['engineering'], oncall: ['engineering', 'oncall'], carol: [], lead1: ['sre-leads'], sre: ['sre'] };
      as = {};
      for (const [name, groups] of Object.entries(people)) as[name] = await id.as(await id.addUser(name, groups));
    });
    after(() => t.cleanup());

    const request = (who: string, body: Record<string, unknown>) => as[who]!('POST', '/v1/requests', body);
    const cert = async (who: string, grantId: string) => {
      const res = await as[who]!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: grantId });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { serial: string; certificate: string };
    };
    const krl = async () => (await id.revocation.krl()).krl;

    test('fail-extension-stacking: two pending extensions approved one after the other never pass the role maximum', async () => {
      // web-prod: at most 4h; 1h granted, then two extensions of 2h30m each, both pending at once.
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'long data migration' })).body;
      const a = (await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '2h30m', reason: 'migration is slow' })).body;
      const b = (await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '2h30m', reason: 'migration is slow' })).body;
      assert.deepEqual([a.status, b.status], ['pending', 'pending']);
      assert.equal((await as['carol']!('POST', `/v1/requests/${a.id}/approve`, {})).body.status, 'approved');
      const second = await as['carol']!('POST', `/v1/requests/${b.id}/approve`, {});
      assert.equal(second.status, 409, JSON.stringify(second.body));
      assert.match(second.body.detail, /4h/);
      const now = (await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.grant;
      assert.equal(hours(now.ends_at, now.starts_at), 3.5);
      assert.equal((await as['oncall']!('GET', `/v1/requests/${b.id}`)).body.status, 'denied');
    });

    test('fail-extension-stacking: auto-approved extensions sent at once add up to no more than the auto-approve cap', async () => {
      // The on-call rule approves at once up to 2h in all; beyond that a person must approve.
      const g = (await request('oncall', { role: 'web-prod', duration: '30m', reason: 'long data migration' })).body;
      const answers = await Promise.all(Array.from({ length: 6 }, () => as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '30m', reason: 'migration is slow' })));
      const statuses = answers.map((x) => x.body.status).sort();
      assert.deepEqual(statuses, ['approved', 'approved', 'approved', 'pending', 'pending', 'pending']);
      const now = (await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.grant;
      assert.equal(hours(now.ends_at, now.starts_at), 2);
      // Approving the pending ones stops at the role's 4h.
      const pending = answers.filter((x) => x.body.status === 'pending').map((x) => x.body.id);
      const decided = [];
      for (const p of pending) decided.push((await as['carol']!('POST', `/v1/requests/${p}/approve`, {})).status);
      assert.deepEqual(decided, [200, 200, 200]);
      const end = (await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.grant;
      assert.equal(hours(end.ends_at, end.starts_at), 3.5);
      const more = await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '1h', reason: 'migration is slow' });
      assert.equal(more.body.status, 'denied');
      assert.equal(more.body.decision.rule, 'duration-exceeds-max');
    });

    test('fail-extension-stacking: a break-glass grant is extended within the break-glass cap only', async () => {
      const g = (await request('sre', { role: 'web-prod', duration: '45m', reason: 'site down, pager fired', break_glass: true })).body;
      assert.equal(g.status, 'approved');
      const ok = await as['sre']!('POST', `/v1/requests/${g.id}/extend`, { duration: '15m', reason: 'still fixing the outage' });
      assert.equal(ok.body.status, 'approved', JSON.stringify(ok.body));
      assert.equal(ok.body.decision.rule, 'break-glass');
      const over = await as['sre']!('POST', `/v1/requests/${g.id}/extend`, { duration: '1m', reason: 'still fixing the outage' });
      assert.equal(over.body.status, 'denied');
      assert.equal(over.body.decision.rule, 'duration-exceeds-break-glass-max');
      const now = (await as['sre']!('GET', `/v1/requests/${g.id}`)).body.grant;
      assert.equal(hours(now.ends_at, now.starts_at), 1);
    });

    test('fail-early-end: relinquishing a grant revokes its live certificates; the KRL lists them', async () => {
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'inspect the cache nodes' })).body;
      const c1 = await cert('oncall', g.id);
      const c2 = await cert('oncall', g.id);
      assert.equal(krlRevokes(await krl(), c1.certificate), false);
      const done = await as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`);
      assert.equal(done.status, 200);
      assert.deepEqual([...done.body.revoked].sort(), [c1.serial, c2.serial].sort());
      assert.equal(done.body.grant.live, false);
      assert.equal(done.body.grant.end_reason, 'relinquished by oncall');
      const list = await krl();
      assert.equal(krlRevokes(list, c1.certificate), true);
      assert.equal(krlRevokes(list, c2.certificate), true);
      const ev = (await listEvents(t.db, { action: 'grant.relinquish', target: g.id }))[0]!;
      assert.deepEqual([...(ev.details['revoked'] as string[])].sort(), [c1.serial, c2.serial].sort());
    });

    test('fail-early-end: revoking a request ends its grant — no new certificate, and a pending extension is closed', async () => {
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'inspect the cache nodes' })).body;
      const c = await cert('oncall', g.id);
      const ext = (await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '3h', reason: 'cache work runs long' })).body;
      assert.equal(ext.status, 'pending');
      const r = await id.revocation.revoke({ request: g.id }, 'approver withdrew the access', 'os:admin');
      assert.deepEqual(r.revoked, [c.serial]);
      assert.deepEqual(r.ended_grants, [g.id]);
      assert.equal(krlRevokes(await krl(), c.certificate), true);
      const again = await as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id });
      assert.equal(again.status, 409);
      assert.match(again.body.detail, /ended/);
      assert.equal((await as['oncall']!('GET', `/v1/requests/${ext.id}`)).body.status, 'cancelled');
      assert.equal((await as['carol']!('POST', `/v1/requests/${ext.id}/approve`, {})).status, 409);
    });

    test('fail-early-end: disabling a user ends their grants and revokes their certificates', async () => {
      const u = await id.addUser('leaver', ['engineering', 'oncall']);
      const asLeaver = await id.as(u);
      const g = (await asLeaver('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'last day handover' })).body;
      const c = (await asLeaver('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id })).body;
      const out = await id.users.disable('leaver', 'os:admin');
      assert.deepEqual(out, { ended_grants: [g.id], revoked: [c.serial] });
      assert.equal(krlRevokes(await krl(), c.certificate), true);
      await id.users.enable('leaver', 'os:admin');
      // Enabling the user again does not bring the grant back.
      const row = await t.db.selectFrom('grants').selectAll().where('id', '=', g.id).executeTakeFirstOrThrow();
      assert.ok(row.ended_at);
      assert.equal(row.ended_by, 'os:admin');
    });

    test("fail-early-end: leaving the role's groups, or a policy that no longer lets the user ask, ends the grant", async () => {
      const u = await id.addUser('mover', ['engineering', 'oncall']);
      const asMover = await id.as(u);
      const g1 = (await asMover('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'move the queue workers' })).body;
      const c1 = (await asMover('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g1.id })).body;
      const out = await id.users.setGroups('mover', ['marketing'], 'os:admin');
      assert.deepEqual(out, { ended_grants: [g1.id], revoked: [c1.serial] });
      assert.equal(krlRevokes(await krl(), c1.certificate), true);

      const g2 = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'move the queue workers' })).body;
      const c2 = await cert('oncall', g2.id);
      const g3 = (await request('sre', { role: 'web-prod', duration: '30m', reason: 'site down, pager fired', break_glass: true })).body;
      const c3 = await cert('sre', g3.id);
      // The new policy lets only `platform` ask for web-prod; break-glass stays for sre.
      id.setPolicy(WORKFLOW_POLICY.replace('requesters: [group:engineering]\n    max_duration: 4h', 'requesters: [group:platform]\n    max_duration: 4h'));
      try {
        const swept = await id.requests.endIneligible();
        assert.ok(swept.ended_grants.includes(g2.id));
        assert.ok(!swept.ended_grants.includes(g3.id));
        assert.equal(krlRevokes(await krl(), c2.certificate), true);
        assert.equal(krlRevokes(await krl(), c3.certificate), false);
        const row = await t.db.selectFrom('grants').selectAll().where('id', '=', g2.id).executeTakeFirstOrThrow();
        assert.match(row.end_reason ?? '', /no longer may request web-prod/);
        // Nothing more to do the second time.
        assert.deepEqual((await id.requests.endIneligible()).ended_grants, []);
      } finally {
        id.setPolicy(WORKFLOW_POLICY);
      }
    });

    test('fail-early-end-race: certificates asked for while the grant is relinquished are refused or revoked, never left live', async () => {
      for (let round = 0; round < 3; round++) {
        const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'inspect the cache nodes' })).body;
        const asks = Array.from({ length: 24 }, () => as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id }));
        const end = as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`);
        const more = Array.from({ length: 24 }, () => as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id }));
        const answers = await Promise.all([...asks, ...more]);
        assert.equal((await end).status, 200);
        assert.ok(answers.every((x) => x.status === 201 || x.status === 409), JSON.stringify(answers.map((x) => x.status)));
        const issued = answers.filter((x) => x.status === 201).map((x) => x.body.serial as string);
        const logged = await t.db.selectFrom('certificates').select('serial').where('request_id', '=', g.id).execute();
        const revoked = new Set((await t.db.selectFrom('revocations').select('serial').execute()).map((r) => r.serial));
        assert.deepEqual(logged.map((r) => r.serial).sort(), [...issued].sort(), 'every certificate handed out is logged, and only those');
        assert.deepEqual(issued.filter((x) => !revoked.has(x)), [], 'no certificate of the ended grant is left unrevoked');
      }
    });

    test('ok-race: approving an extension while its grant ends is decided one way, never a deadlock or a 500', async () => {
      for (let round = 0; round < 8; round++) {
        const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'long data migration' })).body;
        const ext = (await as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '2h', reason: 'migration is slow' })).body;
        assert.equal(ext.status, 'pending');
        const [approve, end] = await Promise.all([as['carol']!('POST', `/v1/requests/${ext.id}/approve`, {}), as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`)]);
        assert.equal(end.status, 200, JSON.stringify(end.body));
        assert.ok(approve.status === 200 || approve.status === 409, JSON.stringify(approve.body));
        const final = (await as['oncall']!('GET', `/v1/requests/${ext.id}`)).body;
        assert.ok(['approved', 'cancelled', 'denied'].includes(final.status), final.status);
        assert.equal((await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.grant.live, false);
      }
    });

    test('fail-final-state: an ended grant and a decided request never change again', async () => {
      const g = (await request('oncall', { role: 'web-prod', duration: '1h', reason: 'rotate the log files' })).body;
      await as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`);
      const before = await t.db.selectFrom('grants').selectAll().where('id', '=', g.id).executeTakeFirstOrThrow();
      const tries = await Promise.all([
        as['oncall']!('POST', `/v1/requests/${g.id}/relinquish`),
        as['oncall']!('POST', `/v1/requests/${g.id}/extend`, { duration: '10m', reason: 'one more thing' }),
        as['oncall']!('POST', `/v1/requests/${g.id}/cancel`),
        as['carol']!('POST', `/v1/requests/${g.id}/approve`, {}),
        as['carol']!('POST', `/v1/requests/${g.id}/deny`, {}),
        as['oncall']!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: g.id }),
      ]);
      assert.deepEqual(tries.map((x) => x.status), [409, 409, 409, 409, 409, 409]);
      const afterwards = await t.db.selectFrom('grants').selectAll().where('id', '=', g.id).executeTakeFirstOrThrow();
      assert.deepEqual(afterwards, before);
      assert.equal((await as['oncall']!('GET', `/v1/requests/${g.id}`)).body.status, 'approved');
    });
  });
}
