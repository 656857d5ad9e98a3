// An approval grants access, so a stolen approver session must not be enough:
// by default (approval.step_up: required) POST /v1/requests/:id/approve counts
// only with a fresh TOTP code, checked and used up for that very request. The
// codes come from oathtool, not from the code under test.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { parsePolicy, PolicyError } from '../../src/core/policy.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock, totpAt } from '../helpers/identity.js';

const POLICY = `
roles:
  web-prod:
    principals: [deploy]
    requesters: [group:engineering]
    max_duration: 4h
    approval:
      approvers: [group:sre-leads]
      required: 1
  sandbox:
    principals: [play]
    requesters: [group:engineering]
    max_duration: 4h
    approval:
      approvers: [group:sre-leads]
      required: 1
      step_up: optional
`;

test('ok/fail: approval.step_up is required unless the policy says optional; anything else is refused with its path', () => {
  const p = parsePolicy(POLICY);
  assert.equal(p.roles.get('web-prod')!.approval!.stepUp, 'required');
  assert.equal(p.roles.get('sandbox')!.approval!.stepUp, 'optional');
  assert.throws(() => parsePolicy(POLICY.replace('step_up: optional', 'step_up: sometimes')), (e: unknown) => e instanceof PolicyError && e.problems.some((x) => x.startsWith('roles.sandbox.approval.step_up')));
});

for (const backend of BACKENDS) {
  describe(`approval step-up over the API (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let eng: Awaited<ReturnType<typeof id.as>>;
    let lead: Awaited<ReturnType<typeof id.as>>;
    let lead2: Awaited<ReturnType<typeof id.as>>;
    let leadSecret: string;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 5 }, { policy: POLICY });
      eng = await id.as(await id.addUser('eng', ['engineering']));
      const l = await id.addUser('lead', ['sre-leads', 'engineering']);
      leadSecret = l.secret;
      lead = await id.as(l);
      lead2 = await id.as(await id.addUser('lead2', ['sre-leads']));
    });
    after(() => t.cleanup());

    const file = async (role = 'web-prod') => (await eng('POST', '/v1/requests', { role, duration: '1h', reason: 'migrate the session store' })).body;
    /** The lead's code for a TOTP step no login has used yet. */
    const freshCode = () => {
      clock.advance(30);
      return totpAt(leadSecret, clock);
    };
    const status = async (rid: string) => (await eng('GET', `/v1/requests/${rid}`)).body.status;

    test('fail-step-up: an approval without a code is refused, names what is missing, and changes nothing', async () => {
      const r = await file();
      const res = await lead('POST', `/v1/requests/${r.id}/approve`, { comment: 'looks fine' });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'step_up_required');
      assert.match(res.body.detail, /fresh code/);
      assert.equal(await status(r.id), 'pending');
      assert.deepEqual(await t.db.selectFrom('approvals').selectAll().where('request_id', '=', r.id).execute(), []);
    });

    test('fail-step-up: a wrong code is refused without ending the session; the right one approves and is recorded', async () => {
      const r = await file();
      const code = freshCode();
      const wrong = await lead('POST', `/v1/requests/${r.id}/approve`, { totp: code === '000000' ? '111111' : '000000' });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.code, 'step_up_failed');
      assert.equal(await status(r.id), 'pending');
      const ok = await lead('POST', `/v1/requests/${r.id}/approve`, { totp: code, comment: 'go ahead' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.status, 'approved');
      const ev = (await listEvents(t.db, { action: 'request.approve', target: r.id }))[0]!;
      assert.equal((ev.details['step_up'] as { method: string }).method, 'totp');
      assert.deepEqual(ev.details['auth'], { method: 'password+totp' }, 'the decision records how its maker signed in');
      const used = (await listEvents(t.db, { action: 'step_up.ok', target: r.id }))[0]!;
      assert.equal(used.details['purpose'], 'request.approve');
    });

    test('fail-step-up: a code approves once: the same code on a second request is a replay and refused', async () => {
      const a = await file();
      const b = await file();
      const code = freshCode();
      assert.equal((await lead('POST', `/v1/requests/${a.id}/approve`, { totp: code })).body.status, 'approved');
      const replay = await lead('POST', `/v1/requests/${b.id}/approve`, { totp: code });
      assert.equal(replay.status, 403);
      assert.equal(replay.body.code, 'step_up_failed');
      assert.equal(await status(b.id), 'pending');
    });

    test('fail-step-up: a code does not get past the other checks — the requester still cannot approve their own request', async () => {
      const own = (await lead('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'rotate the TLS certificates' })).body;
      const self = await lead('POST', `/v1/requests/${own.id}/approve`, { totp: freshCode() });
      assert.equal(self.status, 403);
      assert.match(self.body.detail, /your own request/);
      assert.equal((await lead2('POST', `/v1/requests/${own.id}/approve`, {})).body.code, 'step_up_required');
    });

    test('ok-step-up: anyone can lock a name out of logging in, but not its live session out of approving', async () => {
      for (let i = 0; i < 6; i++) await id.login({ username: 'lead', password: 'not-the-password-at-all', totp: '000000' }, { 'x-test-address': `203.0.113.${i + 1}` });
      const locked = await id.login({ username: 'lead', password: 'not-the-password-at-all', totp: '000000' }, { 'x-test-address': '203.0.113.99' });
      assert.equal(locked.status, 429, 'the name is locked for logins');
      const r = await file();
      const ok = await lead('POST', `/v1/requests/${r.id}/approve`, { totp: Number(freshCode()) });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.status, 'approved');
    });

    test('ok-step-up: a role with step_up optional approves without a code; denials never need one', async () => {
      const r = await file('sandbox');
      assert.equal((await lead('POST', `/v1/requests/${r.id}/approve`, {})).body.status, 'approved');
      const d = await file();
      const denied = await lead('POST', `/v1/requests/${d.id}/deny`, { comment: 'use the pipeline' });
      assert.equal(denied.status, 200);
      assert.equal(denied.body.status, 'denied');
    });
  });
}
