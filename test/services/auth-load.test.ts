// Login under load: the password work (scrypt, two at a time per process) is
// what a flood of logins exhausts. Its queue is bounded and refuses at once
// beyond the bound (503 with Retry-After, nothing counted against the
// attempt); while it is busy, or once the deployment's failed-login budget is
// spent, a login's code is checked before its password, so attempts with a
// wrong code cost no password work and a good login does not wait behind
// them; the per-name and per-address limits come before any of it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { passwordWork } from '../../src/auth/password.js';
import { listEvents } from '../helpers/events.js';
import { getThrottle } from '../../src/db/throttle.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock, totpAt } from '../helpers/identity.js';
import { ORIGIN, webIdentity } from '../web/helpers.js';

const problemOf = async (res: Response) => {
  const body = (await res.json()) as Record<string, unknown>;
  delete body['request_id'];
  return { status: res.status, type: res.headers.get('content-type'), body };
};

/** Runs `fn` and returns how many password derivations this process began meanwhile. */
async function derivations<T>(fn: () => T | Promise<T>): Promise<{ value: T; derived: number }> {
  const before = passwordWork().derived;
  const value = await fn();
  return { value, derived: passwordWork().derived - before };
}

for (const backend of BACKENDS) {
  describe(`login under load (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    // Each test on a day of its own: the deployment-wide budget's window is shared by everything on the database.
    test('fail: a good login does not wait behind a burst of failing logins from many addresses', async () => {
      const clock = new TestClock(Date.parse('2026-12-01T12:00:15Z'));
      // The default cost: 64 MiB and a sizeable fraction of a second per check, as in production.
      const id = await identity(t.db, clock, { passwordCost: 16, lockoutThreshold: 1000, globalFailureLimit: 1_000_000 });
      const kim = await id.addUser('kim');
      // What one login takes here with nothing else going on (scrypt's speed depends on the machine and its load).
      const alone = performance.now();
      assert.equal((await id.login({ username: 'kim', password: kim.password, totp: totpAt(kim.secret, clock) }, { 'x-test-address': '192.0.2.10' })).status, 200);
      const aloneMs = performance.now() - alone;
      clock.advance(30);
      const derivedBefore = passwordWork().derived;
      // 150 guesses at once, each from its own address and for its own name: no per-name or per-address limit applies.
      const burst = Array.from({ length: 150 }, (_, i) => id.login({ username: `spray-${i}`, password: 'spring-2026-guess', totp: '000000' }, { 'x-test-address': `198.18.${i >> 8}.${i & 255}` }));
      await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      const good = await id.login({ username: 'kim', password: kim.password, totp: totpAt(kim.secret, clock) }, { 'x-test-address': '192.0.2.10' });
      const tookMs = performance.now() - started;
      const answers = await Promise.all(burst);
      assert.equal(good.status, 200, await good.text());
      // The guesses with a wrong code cost no password work once it was busy: a handful ran, not 150.
      const derived = passwordWork().derived - derivedBefore;
      assert.ok(derived <= 10, `${derived} password checks for 150 guesses and one login`);
      // So the good login waits for the checks already running when it came, never for the 150; it shares the
      // database (and, on a small machine, the CPU) with the burst, which is a few logins' time, not 75.
      assert.ok(tookMs < 6 * aloneMs + 2000, `the good login took ${Math.round(tookMs)} ms behind the burst, ${Math.round(aloneMs)} ms alone`);
      const statuses = answers.map((r) => r.status);
      assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(' '));
      // Every guess that was answered 401 is counted against its name and its address, checked first by code or not.
      const failures = await listEvents(t.db, { action: 'login.failed', limit: 10_000 });
      assert.equal(failures.filter((e) => e.target!.startsWith('spray-') && e.outcome === 'failed').length, statuses.filter((s) => s === 401).length);
      const first = answers.findIndex((r) => r.status === 401);
      assert.equal((await getThrottle(t.db, `addr:198.18.0.${first}`))?.failures, 1);
    });

    test('fail: a burst of logins with the right code beyond the password queue is refused at once with 503 and Retry-After; the refused are not counted', async () => {
      const clock = new TestClock(Date.parse('2026-12-02T12:00:15Z'));
      const id = await identity(t.db, clock, { passwordCost: 16, lockoutThreshold: 1000, addressFailureLimit: 1000, loginQueue: 4 });
      const lee = await id.addUser('lee');
      const code = totpAt(lee.secret, clock);
      // The right code and a wrong password: these pass the code check and need the password work.
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => id.login({ username: 'lee', password: `not-the-password-${i}`, totp: code }, { 'x-test-address': '203.0.113.40' })));
      const statuses = answers.map((r) => r.status);
      const refused = answers.filter((r) => r.status === 503);
      assert.ok(refused.length >= 20, `503s: ${statuses.join(' ')}`);
      assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(' '));
      for (const r of refused) {
        const p = await problemOf(r);
        assert.equal(p.type, 'application/problem+json');
        assert.equal(p.body['code'], 'unavailable');
        const retry = Number(r.headers.get('retry-after'));
        assert.ok(retry >= 1 && retry <= 10, `Retry-After ${retry}`);
      }
      assert.ok(performance.now() - started < 15_000);
      const checked = statuses.filter((s) => s === 401).length;
      assert.equal((await getThrottle(t.db, 'user:lee'))?.failures, checked, 'only the attempts checked count towards the lockout');
      assert.equal((await getThrottle(t.db, 'addr:203.0.113.40'))?.failures, checked, 'and towards the address limit');
      const events = await listEvents(t.db, { target: 'lee', action: 'login.failed' });
      assert.equal(events.filter((e) => e.details['reason'] === 'busy').length, refused.length, 'each refusal is in the audit log');
      assert.equal((await id.login({ username: 'lee', password: lee.password, totp: code })).status, 200, 'with the queue drained the right login passes');
    });

    test('ok: past the deployment-wide failure budget a wrong code costs no password work, on every instance; the answer and the counts are as before; right logins pass', async () => {
      const clock = new TestClock(Date.parse('2026-12-03T12:00:15Z'));
      const settings = { globalFailureLimit: 5, lockoutThreshold: 1000 };
      const one = await identity(t.db, clock, settings);
      const two = await identity(t.db, clock, settings); // another process on the same database
      const mo = await one.addUser('mo');
      const guess = (id: typeof one, i: number, totp = '000000') => id.login({ username: `budget-${i}`, password: 'autumn-2026-guess', totp }, { 'x-test-address': `198.51.100.${100 + i}` });
      // Within the budget every failure is checked in full: the password too.
      const within = await derivations(async () => {
        for (let i = 0; i < 5; i++) assert.equal((await guess(i % 2 ? one : two, i)).status, 401);
      });
      assert.equal(within.derived, 5);
      const answerWithin = await problemOf(await guess(one, 50));
      // Past it, a wrong code is refused without the password work, on both instances, with the same answer.
      for (const id of [one, two]) {
        const past = await derivations(() => guess(id, 6));
        assert.equal(past.derived, 0, 'the password of an attempt with a wrong code was checked');
        assert.deepEqual(await problemOf(past.value), answerWithin);
      }
      const gated = await listEvents(t.db, { target: 'budget-6', action: 'login.failed' });
      assert.deepEqual(gated.map((e) => [e.outcome, e.details['reason'], e.details['code_checked_first']]), [['failed', 'unknown_user', true], ['failed', 'unknown_user', true]]);
      assert.equal((await getThrottle(t.db, 'user:budget-6'))?.failures, 2, 'still counted towards the name');
      // The right code with a wrong password is checked in full and fails as ever; the right login passes, from anywhere.
      const wrongPassword = await derivations(() => one.login({ username: 'mo', password: 'not-mos-password', totp: totpAt(mo.secret, clock) }, { 'x-test-address': '198.51.100.200' }));
      assert.equal(wrongPassword.derived, 1);
      assert.deepEqual(await problemOf(wrongPassword.value), answerWithin);
      clock.advance(30);
      assert.equal((await two.login({ username: 'mo', password: mo.password, totp: totpAt(mo.secret, clock) }, { 'x-test-address': '198.51.100.200' })).status, 200);
      // The budget is per window: when it ends, failures are checked in full again.
      clock.advance(601);
      assert.equal((await derivations(() => guess(one, 7))).derived, 1);
    });

    test('ok: the per-name and per-address limits refuse before any password work', async () => {
      const clock = new TestClock(Date.parse('2026-12-04T12:00:15Z'));
      const id = await identity(t.db, clock, { lockoutThreshold: 2, addressFailureLimit: 3 });
      for (let i = 0; i < 2; i++) await id.login({ username: 'nat', password: 'wrong-password-x', totp: '000000' }, { 'x-test-address': `192.0.2.${60 + i}` });
      const locked = await derivations(() => id.login({ username: 'nat', password: 'wrong-password-x', totp: '000000' }, { 'x-test-address': '192.0.2.70' }));
      assert.equal(locked.value.status, 429);
      assert.equal(locked.derived, 0, 'a locked name was checked');
      for (let i = 0; i < 3; i++) await id.login({ username: `from-one-${i}`, password: 'wrong-password-x', totp: '000000' }, { 'x-test-address': '192.0.2.80' });
      const blocked = await derivations(() => id.login({ username: 'someone-else', password: 'wrong-password-x', totp: '000000' }, { 'x-test-address': '192.0.2.80' }));
      assert.equal(blocked.value.status, 429);
      assert.equal(blocked.derived, 0, 'a blocked address was checked');
      const net = await derivations(async () => {
        // One IPv6 site (a /56) over many of its /64s: refused for the site before the password work, too.
        const statuses: number[] = [];
        for (let i = 0; i < 13; i++) statuses.push((await id.login({ username: `site-${i}`, password: 'wrong-password-x', totp: '000000' }, { 'x-test-address': `2001:db8:99:${(0x100 + i).toString(16)}::1` })).status);
        return statuses;
      });
      assert.deepEqual(net.value, [...Array(12).fill(401), 429]);
      assert.equal(net.derived, 12);
    });

    test('fail: the web login form, when the password queue is full, shows itself again with 503 and Retry-After, nothing counted', async () => {
      const clock = new TestClock(Date.parse('2026-12-05T12:00:15Z'));
      const w = await webIdentity(t.db, clock, { settings: { passwordCost: 16, lockoutThreshold: 1000, addressFailureLimit: 1000, loginQueue: 2 } });
      const uma = await w.addUser('uma');
      const b = w.client();
      await b.get('/ui/login');
      const form = new URLSearchParams({ csrf: b.csrf(), username: 'uma', password: 'not-umas-password', totp: totpAt(uma.secret, clock), next: '/ui' }).toString();
      const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const answers = await Promise.all(Array.from({ length: 20 }, () => w.app.request(`${ORIGIN}/ui/login`, { method: 'POST', body: form, headers: { cookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' } })));
      const busy = answers.filter((r) => r.status === 503);
      assert.ok(busy.length >= 10, answers.map((r) => r.status).join(' '));
      const page = await busy[0]!.text();
      assert.match(page, /The server is busy checking other logins\. Try again in \d+ second\(s\)\./);
      assert.match(page, /<form method="post" action="\/ui\/login"/, 'the form is shown again');
      assert.ok(Number(busy[0]!.headers.get('retry-after')) >= 1);
      assert.equal((await getThrottle(t.db, 'user:uma'))?.failures, answers.filter((r) => r.status === 401).length);
    });
  });
}
