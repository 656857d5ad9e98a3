// Auditors' queries through the API, on a history made by the real workflow.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sealStream } from '../../src/audit/chain.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');

for (const backend of BACKENDS) {
  describe(`audit queries (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    const as: Record<string, Awaited<ReturnType<typeof id.as>>> = {};
    const issued: Record<string, string[]> = { oncall: [], eng: [], sre: [] };
    let start: Date;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      for (const [name, groups] of Object.entries({ oncall: ['engineering', 'oncall'], eng: ['engineering'], carol: [], sre: ['sre'], aud: ['auditors'] })) as[name] = await id.as(await id.addUser(name, groups));
      start = clock.now();
      const cert = async (who: string, rid: string) => issued[who]!.push((await as[who]!('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: rid })).body.serial);
      for (let i = 0; i < 3; i++) {
        const r = (await as['oncall']!('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: `routine deploy number ${i}` })).body;
        await cert('oncall', r.id);
        clock.advance(3600);
      }
      const pending = (await as['eng']!('POST', '/v1/requests', { role: 'web-prod', duration: '3h', reason: 'migrate the session store' })).body;
      await as['carol']!('POST', `/v1/requests/${pending.id}/approve`, {});
      await cert('eng', pending.id);
      const glass = (await as['sre']!('POST', '/v1/requests', { role: 'web-prod', duration: '30m', reason: 'site down, pager fired', break_glass: true })).body;
      await cert('sre', glass.id);
      clock.advance(60);
    });
    after(() => t.cleanup());

    const serials = (body: { certificates: Array<{ serial: string }> }) => body.certificates.map((c) => c.serial).sort();

    test('ok: certificates by user, principal, role, serial, approver, break-glass and time range', async () => {
      const get = async (q: string) => {
        const r = await as['aud']!('GET', `/v1/certificates?${q}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body;
      };
      assert.deepEqual(serials(await get('user=oncall')), [...issued['oncall']!].sort());
      assert.equal((await get('principal=deploy')).certificates.length, 5);
      assert.equal((await get('principal=root')).certificates.length, 0);
      assert.equal((await get('role=web-prod')).certificates.length, 5);
      const one = await get(`serial=${issued['eng']![0]}`);
      assert.equal(one.certificates.length, 1);
      assert.equal(one.certificates[0].username, 'eng');
      assert.match(one.certificates[0].key_id, /^eng@jit-ssh req=\w+ serial=\d+$/);
      assert.deepEqual(serials(await get('approver=carol')), issued['eng']);
      assert.deepEqual(serials(await get('break_glass=true')), issued['sre']);
      assert.equal((await get('break_glass=false')).certificates.length, 4);
      const since = new Date(start.getTime() + 3600_000).toISOString();
      const until = new Date(start.getTime() + 2 * 3600_000).toISOString();
      assert.deepEqual(serials(await get(`since=${since}&until=${until}`)), [issued['oncall']![1]]);
    });

    test('ok: cursor pagination covers every certificate once, newest first', async () => {
      const seen: string[] = [];
      let cursor = '';
      for (let pages = 0; pages < 10; pages++) {
        const page = (await as['aud']!('GET', `/v1/certificates?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).body;
        seen.push(...page.certificates.map((c: { serial: string }) => c.serial));
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      assert.equal(seen.length, 5);
      assert.equal(new Set(seen).size, 5);
      assert.deepEqual(seen.slice(0, 1), issued['sre'], 'newest first');
    });

    test('ok: audit events by actor and action; every workflow step is there with its rule', async () => {
      const created = (await as['aud']!('GET', '/v1/audit/events?action=request.create&actor=oncall')).body.events;
      assert.equal(created.length, 3);
      assert.equal(created[0].details.rule, 'auto_approve[0]');
      const approvals = (await as['aud']!('GET', '/v1/audit/events?actor=carol&action=request.approve')).body.events;
      assert.equal(approvals.length, 1);
      const logins = (await as['aud']!('GET', '/v1/audit/events?action=login.ok')).body.events;
      assert.ok(logins.length >= 5);
    });

    test('ok: verify after sealing; export streams JSON lines', async () => {
      await sealStream(t.db, 'certificates', clock.now());
      await sealStream(t.db, 'audit_events', clock.now());
      const v = await as['aud']!('GET', '/v1/audit/verify');
      assert.equal(v.status, 200);
      assert.equal(v.body.ok, true);
      assert.equal(v.body.streams[0].sealed, 5);
      const res = await id.app.request('/v1/audit/export?stream=certificates', { headers: { Authorization: `Bearer ${await id.tokenFor(await id.addUser('aud2', ['auditors']))}` } });
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines.length, 5);
      assert.ok(lines.every((l) => l.stream === 'certificates' && l.certificate.startsWith('ssh-ed25519-cert-v01@openssh.com ')));
    });

    test('fail: only auditors read the logs; bad filters are 400', async () => {
      assert.equal((await as['eng']!('GET', '/v1/certificates')).status, 403);
      assert.equal((await as['eng']!('GET', '/v1/audit/events')).status, 403);
      assert.equal((await as['eng']!('GET', '/v1/audit/verify')).status, 403);
      for (const q of ['since=yesterday', 'serial=abc', 'limit=0', 'limit=5000', 'cursor=zzz', 'break_glass=maybe']) {
        assert.equal((await as['aud']!('GET', `/v1/certificates?${q}`)).status, 400, q);
      }
      assert.equal((await as['aud']!('GET', '/v1/audit/export?stream=nope')).status, 400);
      assert.equal((await as['eng']!('GET', '/v1/audit/report')).status, 403);
      assert.equal((await as['aud']!('GET', '/v1/audit/report?format=pdf')).status, 400);
      assert.equal((await as['aud']!('GET', '/v1/audit/report?since=tomorrow')).status, 400);
    });

    test('ok: the access review over the API, as JSON, Markdown and CSV', async () => {
      const since = start.toISOString();
      const json = await as['aud']!('GET', `/v1/audit/report?since=${since}`);
      assert.equal(json.status, 200, JSON.stringify(json.body));
      assert.equal(json.body.period.since, since);
      assert.equal(json.body.totals.certificates, 5);
      assert.equal(json.body.break_glass.uses.rows.length, 1);
      const token = await id.tokenFor(await id.addUser('aud3', ['auditors']));
      const md = await id.app.request(`/v1/audit/report?since=${since}&format=md`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(md.headers.get('content-type'), 'text/markdown; charset=utf-8');
      assert.match(await md.text(), /^# /);
      const csv = await id.app.request(`/v1/audit/report?since=${since}&format=csv`, { headers: { Authorization: `Bearer ${token}` } });
      assert.match(csv.headers.get('content-disposition')!, /^attachment; filename="access-review-\d{4}-\d{2}-\d{2}\.csv"$/);
      assert.equal((await csv.text()).trimEnd().split('\r\n').length, 1 + 5, 'a header and one row per grant');
    });

  });
}
