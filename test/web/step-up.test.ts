// The step-up verifier behind approvals: login's TOTP secret and replay
// counter, so one code serves one purpose once, and a lockout of its own, so a
// stolen session cannot guess codes and guessed logins cannot stop approvals.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RateLimitedError } from '../../src/core/errors.js';
import { listEvents } from '../helpers/events.js';
import { STEP_UP_FAILED } from '../../src/services/auth.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock, totpAt } from '../helpers/identity.js';
import { webIdentity, type TestUser } from './helpers.js';

for (const backend of BACKENDS) {
  describe(`step-up codes (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let w: Awaited<ReturnType<typeof webIdentity>>;
    let lead: TestUser;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      w = await webIdentity(t.db, clock, { settings: { lockoutThreshold: 3, lockoutSeconds: 60 } });
      lead = await w.addUser('lead', ['sre-leads']);
    });
    after(() => t.cleanup());

    const verify = (totp: unknown, target = 'R1') => w.stepUp.verify({ username: 'lead', totp, purpose: 'request.approve', target, clientAddress: '203.0.113.5' });

    test('ok: a fresh code is accepted once and consumed; the same code then fails for login and for another step-up', async () => {
      clock.advance(30);
      const code = totpAt(lead.secret, clock);
      const proof = await verify(` ${code} `);
      assert.deepEqual({ ...proof, at: undefined }, { method: 'totp', step: Math.floor(clock.ms / 30_000), purpose: 'request.approve', target: 'R1', at: undefined });
      await assert.rejects(verify(code, 'R2'), (e: Error) => e.message === STEP_UP_FAILED);
      const login = await w.login({ username: 'lead', password: lead.password, totp: code });
      assert.equal(login.status, 401);
      // A login code is likewise no step-up code.
      clock.advance(30);
      const next = totpAt(lead.secret, clock);
      assert.equal((await w.login({ username: 'lead', password: lead.password, totp: next })).status, 200);
      await assert.rejects(verify(next), (e: Error) => e.message === STEP_UP_FAILED);
      const events = await listEvents(t.db, { actor: 'lead' });
      assert.deepEqual(
        events.filter((e) => e.action.startsWith('step_up')).map((e) => [e.action, e.target, e.details['reason'] ?? null, e.client_address]),
        [['step_up.ok', 'R1', null, '203.0.113.5'], ['step_up.failed', 'R2', 'totp_replay', '203.0.113.5'], ['step_up.failed', 'R1', 'totp_replay', '203.0.113.5']],
      );
    });

    test('fail: wrong codes lock step-ups on a counter of their own: locked, a user cannot step up but still logs in', async () => {
      clock.advance(120); // past any earlier lock
      await verify(totpAt(lead.secret, clock)); // a right code clears the wrong ones the test above left
      for (const bad of ['000000', 'abcdef', 123456]) await assert.rejects(verify(bad), (e: Error) => !(e instanceof RateLimitedError));
      clock.advance(30);
      await assert.rejects(verify(totpAt(lead.secret, clock)), RateLimitedError);
      // Apart from the name's login counter: failed logins (anyone's to send) do not stop step-ups, nor the reverse.
      assert.equal((await w.login({ username: 'lead', password: lead.password, totp: totpAt(lead.secret, clock) })).status, 200);
      assert.equal((await listEvents(t.db, { action: 'step_up.lockout', target: 'lead' })).length, 1);
      assert.equal((await listEvents(t.db, { action: 'login.lockout', target: 'lead' })).length, 0);
      clock.advance(61);
      assert.ok(await verify(totpAt(lead.secret, clock)), 'the lock did not end');
    });
  });
}
