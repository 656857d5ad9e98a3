import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { listEvents } from '../helpers/events.js';
import { pruneSessions } from '../../src/db/sessions.js';
import { pruneThrottle } from '../../src/db/throttle.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, secretOf, TestClock, totpAt } from '../helpers/identity.js';

for (const backend of BACKENDS) {
  describe(`user administration (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: add, list, change groups — each change audited under the acting OS user', async () => {
      const id = await identity(t.db, new TestClock());
      const e = await id.users.add({ name: 'kim', groups: ['oncall', 'engineering', 'oncall'], password: 'kim-password-long' }, 'os:ops');
      assert.deepEqual(e.groups, ['engineering', 'oncall']);
      assert.match(e.otpauth_uri, /^otpauth:\/\/totp\/jit-ssh:kim\?secret=[A-Z2-7]{32}&issuer=jit-ssh$/);
      await id.users.setGroups('kim', ['sre'], 'os:ops');
      const kim = (await id.users.list()).find((u) => u.name === 'kim')!;
      assert.deepEqual(kim.groups, ['sre']);
      assert.equal(kim.enabled, true);
      assert.equal(kim.last_login_at, null);
      const events = await listEvents(t.db, { target: 'kim' });
      assert.deepEqual(events.map((ev) => [ev.actor, ev.action]), [['os:ops', 'user.add'], ['os:ops', 'user.set_groups']]);
    });

    test('fail: bad names, groups, short passwords, duplicates and unknown users are refused with a reason', async () => {
      const id = await identity(t.db, new TestClock());
      await assert.rejects(id.users.add({ name: 'Bad Name', groups: [], password: 'long-enough-pass' }, 'os:t'), /invalid user name/);
      await assert.rejects(id.users.add({ name: '-x', groups: [], password: 'long-enough-pass' }, 'os:t'), /invalid user name/);
      await assert.rejects(id.users.add({ name: 'lee', groups: ['ok', 'not ok'], password: 'long-enough-pass' }, 'os:t'), /invalid group name/);
      await assert.rejects(id.users.add({ name: 'lee', groups: [], password: 'short' }, 'os:t'), /at least 12/);
      await id.users.add({ name: 'lee', groups: [], password: 'long-enough-pass' }, 'os:t');
      await assert.rejects(id.users.add({ name: 'lee', groups: [], password: 'long-enough-pass' }, 'os:t'), { code: 'conflict', message: 'user lee already exists' });
      await assert.rejects(id.users.disable('nobody', 'os:t'), { code: 'not_found' });
    });

    // A user name goes into every certificate's key ID (`NAME@jit-ssh req=ID serial=N`), sshd's log
    // lines and webhook texts: nothing that could split a field, a line or a list gets in.
    for (const [name, bad] of [
      ['fail-user-name-space', 'alice bob'],
      ['fail-user-name-newline', 'alice\nserial=1'],
      ['fail-user-name-carriage-return', 'alice\r'],
      ['fail-user-name-tab', 'alice\tx'],
      ['fail-user-name-nul', 'alice\0'],
      ['fail-user-name-comma', 'alice,root'],
      ['fail-user-name-wildcard', '*'],
      ['fail-user-name-question-mark', 'alic?'],
      ['fail-user-name-negation', '!alice'],
      ['fail-user-name-at', 'alice@jit-ssh'],
      ['fail-user-name-equals', 'req=01J'],
      ['fail-user-name-colon', 'user:alice'],
      ['fail-user-name-quote', 'alice"'],
      ['fail-user-name-angle-brackets', '<!channel>'],
      ['fail-user-name-empty', ''],
      ['fail-user-name-too-long', 'a'.repeat(65)],
      ['fail-user-name-unicode-lookalike', 'аlice'], // a Cyrillic а
    ] as const) {
      test(`${name}: ${JSON.stringify(bad)} is refused as a user name`, async () => {
        const id = await identity(t.db, new TestClock());
        await assert.rejects(id.users.add({ name: bad, groups: [], password: 'long-enough-pass' }, 'os:t'), /invalid user name/);
      });
    }

    test('ok: reset-mfa makes the old secret useless and ends sessions; the new one works', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const max = await id.addUser('max');
      const res = await id.login({ username: 'max', password: max.password, totp: totpAt(max.secret, clock) });
      const { token } = (await res.json()) as { token: string };
      const fresh = await id.users.resetMfa('max', 'os:ops');
      assert.equal((await id.app.request('/v1/auth/session', { headers: { Authorization: `Bearer ${token}` } })).status, 401);
      clock.advance(30);
      assert.equal((await id.login({ username: 'max', password: max.password, totp: totpAt(max.secret, clock) })).status, 401);
      assert.equal((await id.login({ username: 'max', password: max.password, totp: totpAt(secretOf(fresh.otpauth_uri), clock) })).status, 200);
      const reset = (await listEvents(t.db, { target: 'max', action: 'user.reset_mfa' }))[0]!;
      assert.equal(reset.details['sessions_revoked'], 1);
    });

    test('ok: set-password replaces the password and ends sessions', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const ned = await id.addUser('ned');
      await id.users.setPassword('ned', 'a-brand-new-password', 'os:ops');
      assert.equal((await id.login({ username: 'ned', password: ned.password, totp: totpAt(ned.secret, clock) })).status, 401);
      clock.advance(30);
      assert.equal((await id.login({ username: 'ned', password: 'a-brand-new-password', totp: totpAt(ned.secret, clock) })).status, 200);
    });

    test('fail: the audit event log refuses UPDATE, DELETE and TRUNCATE', async () => {
      const id = await identity(t.db, new TestClock());
      await id.addUser('oz');
      await assert.rejects(sql`update audit_events set actor = 'someone-else'`.execute(t.db), /append-only/);
      await assert.rejects(sql`delete from audit_events`.execute(t.db), /append-only/);
      await assert.rejects(sql`truncate audit_events`.execute(t.db), /append-only/);
      assert.ok((await listEvents(t.db)).length > 0);
    });
  });
}

describe('housekeeping (embedded)', () => {
  test('ok: ended sessions and idle login counters are pruned; live ones stay', async () => {
    const t = await BACKENDS[0]!.open();
    try {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const pia = await id.addUser('pia');
      await id.login({ username: 'pia', password: pia.password, totp: totpAt(pia.secret, clock) });
      await id.login({ username: 'ghost', password: 'wrong-password-x', totp: '000000' });
      assert.equal(await pruneSessions(t.db, clock.now(), 86_400), 0, 'a live session was pruned');
      assert.equal(await pruneThrottle(t.db, clock.now(), 86_400), 0, 'a fresh counter was pruned');
      clock.advance(3600 + 86_400 + 1);
      assert.equal(await pruneSessions(t.db, clock.now(), 86_400), 1);
      // The name's, the address's and the deployment-wide failure counters.
      assert.equal(await pruneThrottle(t.db, clock.now(), 86_400), 3);
    } finally {
      await t.cleanup();
    }
  });
});
