import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { listEvents } from '../helpers/events.js';
import { admins, auditors, requireRole, requireUser } from '../../src/http/middleware/auth.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock, totpAt } from '../helpers/identity.js';

const problemOf = async (res: Response) => {
  const body = (await res.json()) as Record<string, unknown>;
  delete body['request_id'];
  return { status: res.status, type: res.headers.get('content-type'), body };
};

for (const backend of BACKENDS) {
  describe(`login (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: password + fresh TOTP code gives a token that authenticates; the login is audited', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const alice = await id.addUser('alice', ['admins', 'oncall']);
      const res = await id.login({ username: 'alice', password: alice.password, totp: totpAt(alice.secret, clock) });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { token: string; expires_at: string };
      assert.match(body.token, /^jit_/);
      assert.equal(body.expires_at, new Date(clock.ms + 3600_000).toISOString());
      const session = await id.app.request('/v1/auth/session', { headers: { Authorization: `Bearer ${body.token}` } });
      assert.deepEqual(await session.json(), { username: 'alice', groups: ['admins', 'oncall'], is_admin: true, is_auditor: false, expires_at: body.expires_at, auth: { method: 'password+totp' } });
      const events = await listEvents(t.db, { target: 'alice', action: 'login.ok' });
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]!.details['auth'], { method: 'password+totp' });
      assert.equal(events[0]!.client_address, '198.51.100.1');
    });

    test('fail: a TOTP code is accepted once — a replay is refused, also on a second instance', async () => {
      const clock = new TestClock();
      const one = await identity(t.db, clock, { lockoutThreshold: 10 });
      const two = await identity(t.db, clock, { lockoutThreshold: 10 }); // another server process on the same database
      const bob = await one.addUser('bob');
      const code = totpAt(bob.secret, clock);
      assert.equal((await one.login({ username: 'bob', password: bob.password, totp: code })).status, 200);
      assert.equal((await one.login({ username: 'bob', password: bob.password, totp: code })).status, 401);
      assert.equal((await two.login({ username: 'bob', password: bob.password, totp: code })).status, 401);
      // An older step within the drift window is also refused once a newer one was used.
      clock.advance(30);
      assert.equal((await two.login({ username: 'bob', password: bob.password, totp: totpAt(bob.secret, clock, -30) })).status, 401);
      assert.equal((await two.login({ username: 'bob', password: bob.password, totp: totpAt(bob.secret, clock) })).status, 200);
      const reasons = (await listEvents(t.db, { target: 'bob', action: 'login.failed' })).map((e) => e.details['reason']);
      assert.deepEqual(reasons, ['totp_replay', 'totp_replay', 'totp_replay']);
    });

    test('fail: two instances racing with the same code: exactly one wins', async () => {
      const clock = new TestClock();
      // A threshold above the race: every loser is checked and refused as a replay.
      const a = await identity(t.db, clock, { lockoutThreshold: 10 });
      const b = await identity(t.db, clock, { lockoutThreshold: 10 });
      const cid = await a.addUser('cid');
      const code = totpAt(cid.secret, clock);
      const results = await Promise.all([a, b, a, b].map((x) => x.login({ username: 'cid', password: cid.password, totp: code })));
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 401, 401, 401]);
    });

    test('fail: wrong password, wrong code, unknown user and disabled user answer identically', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock, { lockoutThreshold: 100 });
      const dan = await id.addUser('dan');
      const eve = await id.addUser('eve');
      await id.users.disable('eve', 'os:test');
      const answers = await Promise.all([
        id.login({ username: 'dan', password: 'wrong-password-here', totp: totpAt(dan.secret, clock) }),
        id.login({ username: 'dan', password: dan.password, totp: totpAt(dan.secret, clock, 120) }),
        id.login({ username: 'nobody', password: 'whatever-password', totp: '123456' }),
        id.login({ username: 'eve', password: eve.password, totp: totpAt(eve.secret, clock) }),
      ]).then((rs) => Promise.all(rs.map(problemOf)));
      for (const a of answers) assert.deepEqual(a, answers[0]);
      assert.equal(answers[0]!.status, 401);
      assert.equal(answers[0]!.type, 'application/problem+json');
      const reasons = (await listEvents(t.db, { action: 'login.failed' })).map((e) => `${e.target}:${e.details['reason']}`);
      for (const r of ['dan:bad_password', 'dan:bad_totp', 'nobody:unknown_user', 'eve:disabled']) assert.ok(reasons.includes(r), r);
    });

    test('fail: malformed login bodies are 400, never 5xx', async () => {
      const id = await identity(t.db, new TestClock());
      for (const body of [{}, { username: 1, password: 'x', totp: '1' }, { username: 'a'.repeat(200), password: 'x', totp: '1' }]) {
        assert.equal((await id.login(body)).status, 400);
      }
      const res = await id.app.request('/v1/auth/login', { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
    });

    test('fail: after N failures a name is locked (known or not, even with the right code); the lock grows and expires', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock, { lockoutThreshold: 3, lockoutSeconds: 60 });
      const fay = await id.addUser('fay');
      for (const name of ['fay', 'ghost']) {
        for (let i = 0; i < 3; i++) assert.equal((await id.login({ username: name, password: 'wrong-password-x', totp: '000000' })).status, 401);
        const locked = await id.login({ username: name, password: name === 'fay' ? fay.password : 'x', totp: name === 'fay' ? totpAt(fay.secret, clock) : '1' });
        assert.equal(locked.status, 429, name);
        assert.equal(locked.headers.get('retry-after'), '60');
      }
      clock.advance(61);
      // Three more failures: the second lock lasts twice as long.
      for (let i = 0; i < 3; i++) await id.login({ username: 'fay', password: 'wrong-password-x', totp: '000000' });
      assert.equal((await id.login({ username: 'fay', password: fay.password, totp: totpAt(fay.secret, clock) })).headers.get('retry-after'), '120');
      clock.advance(121);
      assert.equal((await id.login({ username: 'fay', password: fay.password, totp: totpAt(fay.secret, clock) })).status, 200);
      assert.ok((await listEvents(t.db, { action: 'login.lockout', target: 'fay' })).length === 2);
    });

    test('fail: a burst of parallel guesses over two instances gets exactly the threshold checked, for a name and for an address', async () => {
      const clock = new TestClock();
      const one = await identity(t.db, clock, { lockoutThreshold: 5, addressFailureLimit: 1000 });
      const two = await identity(t.db, clock, { lockoutThreshold: 5, addressFailureLimit: 1000 }); // another server process on the same database
      const ivy = await one.addUser('burst');
      // All sent before any is answered: each one checked would be a guess the lockout did not stop.
      const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).login({ username: 'burst', password: `guess-number-${i}`, totp: '000000' })));
      const statuses = burst.map((r) => r.status).sort();
      assert.equal(statuses.filter((s) => s === 401).length, 5, `checked: ${statuses.join(' ')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 35);
      const locked = await one.login({ username: 'burst', password: ivy.password, totp: totpAt(ivy.secret, clock) });
      assert.equal(locked.status, 429, 'the name is locked even for the right password and code');
      assert.equal(locked.headers.get('retry-after'), '60');
      clock.advance(61);
      assert.equal((await two.login({ username: 'burst', password: ivy.password, totp: totpAt(ivy.secret, clock) })).status, 200);

      const a = await identity(t.db, clock, { lockoutThreshold: 1000, addressFailureLimit: 6 }, '203.0.113.77');
      const b = await identity(t.db, clock, { lockoutThreshold: 1000, addressFailureLimit: 6 }, '203.0.113.77');
      const spray = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).login({ username: `spray-burst-${i}`, password: 'password-guess-1', totp: '000000' })));
      assert.equal(spray.filter((r) => r.status === 401).length, 6, spray.map((r) => r.status).join(' '));
      assert.equal(spray.filter((r) => r.status === 429).length, 24);
    });

    test('ok: successful logins give their count back: an address with many good logins is never limited', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock, { addressFailureLimit: 3 }, '203.0.113.78');
      const jo = await id.addUser('regular');
      for (let i = 0; i < 6; i++) {
        clock.advance(30);
        assert.equal((await id.login({ username: 'regular', password: jo.password, totp: totpAt(jo.secret, clock) })).status, 200);
      }
      for (let i = 0; i < 2; i++) assert.equal((await id.login({ username: 'regular', password: 'wrong-password-x', totp: '000000' })).status, 401);
      clock.advance(30);
      assert.equal((await id.login({ username: 'regular', password: jo.password, totp: totpAt(jo.secret, clock) })).status, 200, 'two failures of three: still let in');
    });

    test('fail: one client address failing too often is refused for every name', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock, { addressFailureLimit: 5 }, '203.0.113.9');
      const gus = await id.addUser('gus');
      for (let i = 0; i < 5; i++) await id.login({ username: `spray${i}`, password: 'password-guess-1', totp: '000000' });
      assert.equal((await id.login({ username: 'gus', password: gus.password, totp: totpAt(gus.secret, clock) })).status, 429);
      const other = await id.login({ username: 'gus', password: gus.password, totp: totpAt(gus.secret, clock) }, { 'x-test-address': '203.0.113.10' });
      assert.equal(other.status, 200);
      clock.advance(601);
      assert.equal((await id.login({ username: 'gus', password: gus.password, totp: totpAt(gus.secret, clock) })).status, 200);
    });

    test('fail: disabling a user ends their tokens at once; logout revokes a token; expired tokens stop', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const hal = await id.addUser('hal');
      const token = async () => ((await (await id.login({ username: 'hal', password: hal.password, totp: totpAt(hal.secret, clock) })).json()) as { token: string }).token;
      const session = (tok: string) => id.app.request('/v1/auth/session', { headers: { Authorization: `Bearer ${tok}` } });
      const t1 = await token();
      assert.equal((await session(t1)).status, 200);
      assert.equal((await id.app.request('/v1/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${t1}` } })).status, 204);
      assert.equal((await session(t1)).status, 401);
      clock.advance(30);
      const t2 = await token();
      await id.users.disable('hal', 'os:test');
      const refused = await session(t2);
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get('www-authenticate')!, /^Bearer/);
      await id.users.enable('hal', 'os:test');
      clock.advance(30);
      const t3 = await token();
      clock.advance(3601);
      assert.equal((await session(t3)).status, 401);
      assert.equal((await session('not-a-token')).status, 401);
      assert.equal((await id.app.request('/v1/auth/session')).status, 401);
    });

    test('ok: nothing secret is readable in the database — no TOTP secret, password or token in plaintext', async () => {
      const clock = new TestClock();
      const id = await identity(t.db, clock);
      const ivy = await id.addUser('ivy');
      const { token } = (await (await id.login({ username: 'ivy', password: ivy.password, totp: totpAt(ivy.secret, clock) })).json()) as { token: string };
      // Every row of every table of ours, as text: what a dump would show.
      const tables = ['users', 'sessions', 'login_throttle', 'audit_events', 'certificates'];
      let dump = '';
      for (const table of tables) {
        const { rows } = await sql<{ r: string }>`select t::text as r from ${sql.table(table)} t`.execute(t.db);
        dump += rows.map((r) => r.r).join('\n');
      }
      assert.ok(dump.includes('ivy'), 'the dump should contain the user');
      for (const secret of [ivy.secret, ivy.password, token, token.slice(4)]) assert.ok(!dump.includes(secret), `found a secret in the dump`);
    });

    test('ok: a weaker stored hash is upgraded at the next login', async () => {
      const clock = new TestClock();
      const weak = await identity(t.db, clock, { passwordCost: 14 });
      const jo = await weak.addUser('jo');
      const strong = await identity(t.db, clock, { passwordCost: 15 });
      assert.equal((await strong.login({ username: 'jo', password: jo.password, totp: totpAt(jo.secret, clock) })).status, 200);
      const { rows } = await sql<{ h: string }>`select password_hash as h from users where name = 'jo'`.execute(t.db);
      assert.match(rows[0]!.h, /^\$scrypt\$ln=15,/);
    });
  });
}

describe('authorization middleware (embedded)', () => {
  test('ok/fail: admin-only and auditor-only routes follow the configured groups', async () => {
    const t = await BACKENDS[0]!.open();
    try {
      const clock = new TestClock();
      const id = await identity(t.db, clock, { adminGroup: 'ca-admins', auditorGroup: 'compliance' });
      id.app.get('/v1/only-admins', requireUser(id.auth), requireRole(admins, 'administrators'), (c) => c.text('ok'));
      id.app.get('/v1/only-auditors', requireUser(id.auth), requireRole(auditors, 'auditors'), (c) => c.text('ok'));
      const tokenOf = async (name: string, groups: string[]) => {
        const u = await id.addUser(name, groups);
        return ((await (await id.login({ username: name, password: u.password, totp: totpAt(u.secret, clock) })).json()) as { token: string }).token;
      };
      const admin = await tokenOf('ada', ['ca-admins']);
      const auditor = await tokenOf('aud', ['compliance']);
      const plain = await tokenOf('pla', ['admins', 'auditors']); // the default names mean nothing here
      const get = async (path: string, tok: string) => (await id.app.request(path, { headers: { Authorization: `Bearer ${tok}` } })).status;
      assert.deepEqual(
        [await get('/v1/only-admins', admin), await get('/v1/only-admins', auditor), await get('/v1/only-admins', plain)],
        [200, 403, 403],
      );
      assert.deepEqual(
        [await get('/v1/only-auditors', admin), await get('/v1/only-auditors', auditor), await get('/v1/only-auditors', plain)],
        [200, 200, 403],
      );
      assert.equal((await id.app.request('/v1/only-admins')).status, 401);
    } finally {
      await t.cleanup();
    }
  });
});
