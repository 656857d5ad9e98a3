// `jit-ssh-ca user ...` as operators run it: with the server stopped (the
// command opens the database) and running (it goes through the admin socket,
// since the embedded database admits one process).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { openDatabase } from '../../src/db/index.js';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, run, startServerProcess } from '../helpers/process.js';

const totp = (uri: string) => execFileSync('oathtool', ['--totp', '-b', secretOf(uri)], { encoding: 'utf8' }).trim();
const actor = `os:${os.userInfo().username}`;

async function login(url: string, username: string, password: string, code: string) {
  return fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password, totp: code }) });
}

describe('jit-ssh-ca user on the embedded database', () => {
  const dataDir = path.join(tempDir(), 'data');
  const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_PASSWORD_COST: '14' });
  let aliceUri = '';

  test('ok: with no server running, user add opens the database and prints the enrollment URI alone on stdout', async () => {
    const res = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'admins,oncall', '--password-stdin'], env, 'alice-password-long\n');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^otpauth:\/\/totp\/jit-ssh:alice\?secret=[A-Z2-7]{32}&issuer=jit-ssh\n$/);
    assert.match(res.stderr, /user alice created/);
    aliceUri = res.stdout.trim();
  });

  test('ok: with the server running, user commands go through the 0600 admin socket; the new user logs in', async () => {
    const server = await startServerProcess(env);
    try {
      const sock = path.join(dataDir, 'admin.sock');
      assert.equal(statSync(sock).mode & 0o777, 0o600);
      const bob = await run(CA_BIN, ['user', 'add', 'bob', '--password-stdin', '--json'], env, 'bob-password-long');
      assert.equal(bob.code, 0, bob.stderr);
      const enrollment = JSON.parse(bob.stdout) as { name: string; groups: string[]; otpauth_uri: string };
      assert.equal(enrollment.name, 'bob');
      assert.ok(server.logs.some((l) => l['msg'] === 'admin' && l['actor'] === actor && l['path'] === '/admin/users'));

      const ok = await login(server.url, 'alice', 'alice-password-long', totp(aliceUri));
      assert.equal(ok.status, 200);
      const bobLogin = await login(server.url, 'bob', 'bob-password-long', totp(enrollment.otpauth_uri));
      assert.equal(bobLogin.status, 200);
      const { token } = (await bobLogin.json()) as { token: string };

      const list = await run(CA_BIN, ['user', 'list', '--json'], env);
      assert.equal(list.code, 0, list.stderr);
      const users = (JSON.parse(list.stdout) as { users: Array<{ name: string; groups: string[]; last_login_at: string | null }> }).users;
      assert.deepEqual(users.map((u) => [u.name, u.groups]), [['alice', ['admins', 'oncall']], ['bob', []]]);
      assert.ok(users.every((u) => u.last_login_at !== null));

      const disable = await run(CA_BIN, ['user', 'disable', 'bob'], env);
      assert.equal(disable.code, 0, disable.stderr);
      const after = await fetch(`${server.url}/v1/auth/session`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(after.status, 401);

      const dup = await run(CA_BIN, ['user', 'add', 'bob', '--password-stdin'], env, 'bob-password-long');
      assert.equal(dup.code, 1);
      assert.equal(dup.stderr, 'jit-ssh-ca: user bob already exists\n');
      const table = await run(CA_BIN, ['user', 'list'], env);
      assert.match(table.stdout, /^NAME +GROUPS +ENABLED +LAST LOGIN\nalice +admins,oncall +yes +\S+\nbob +- +no +\S+\n$/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    // Every change was recorded as done by the OS user who ran the command.
    const db = await openDatabase({ databaseUrl: null, dataDir });
    try {
      const events = await listEvents(db.db, { actor });
      assert.deepEqual(events.map((e) => `${e.action} ${e.target}`), ['user.add alice', 'user.add bob', 'user.disable bob']);
    } finally {
      await db.close();
    }
  });

  test('fail: no name, a short password, or no password source are one-line errors', async () => {
    const noName = await run(CA_BIN, ['user', 'add', '--password-stdin'], env, 'x');
    assert.equal(noName.code, 2);
    assert.match(noName.stderr, /^jit-ssh-ca: usage: jit-ssh-ca user add NAME/);
    const short = await run(CA_BIN, ['user', 'add', 'cy', '--password-stdin'], env, 'short');
    assert.equal(short.code, 1);
    assert.equal(short.stderr, 'jit-ssh-ca: password must be at least 12 characters\n');
    const noTty = await run(CA_BIN, ['user', 'add', 'cy'], env);
    assert.equal(noTty.code, 2);
    assert.match(noTty.stderr, /not a terminal; pass the secret with --password-stdin/);
  });

  test('ok: on a terminal, user add also draws a QR code', () => {
    // script(1) gives the command a pseudo-terminal for stdout.
    const out = execFileSync('script', ['-qec', `printf 'dee-password-long\\n' | ${process.execPath} ${CA_BIN} user add dee --password-stdin`, '/dev/null'], {
      env: env as NodeJS.ProcessEnv,
      encoding: 'utf8',
    });
    assert.match(out, /[▀▄█]{10,}/, 'no QR code drawn');
    assert.match(out, /otpauth:\/\/totp\/jit-ssh:dee\?secret=/);
  });
});

/** One request over the admin socket from this process, with headers of its choosing. */
function socketRequest(socketPath: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; type: string; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath, method, path, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), json: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function eventsOf(dataDir: string, action: string) {
  const db = await openDatabase({ databaseUrl: null, dataDir });
  try {
    return (await listEvents(db.db, { action })).map((e) => ({ actor: e.actor, target: e.target, label: (e.details as Record<string, unknown>)['actor_label'] }));
  } finally {
    await db.close();
  }
}

/** A uid that names no one in the passwd file (as a container's --user 4242 would). */
function namelessUid(): number {
  const taken = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => Number(l.split(':')[2])));
  let uid = 4242;
  while (taken.has(uid)) uid++;
  return uid;
}

const ROOT_ONLY = process.getuid?.() === 0 ? false : 'needs root, to run the server and its clients as other OS users';

describe('the admin socket takes its caller from the kernel', () => {
  const me = `os:${os.userInfo().username}`;

  test('regression: the actor is the OS user the kernel names for the socket peer, never the X-Jit-Ssh-Actor header (os:carol-the-auditor was recorded as given); a claimed name is kept beside it as actor_label', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_PASSWORD_COST: '14' });
    const server = await startServerProcess(env);
    const sock = path.join(dataDir, 'admin.sock');
    try {
      const res = await socketRequest(sock, 'POST', '/admin/users', { 'X-Jit-Ssh-Actor': 'os:carol-the-auditor', 'X-Jit-Ssh-Label': 'carol' }, { name: 'mallory', groups: [], password: 'mallory-password-long' });
      assert.equal(res.status, 201, JSON.stringify(res.json));
      // The real CLI run through sudo: SUDO_USER is its label, the OS user stays the actor.
      const viaSudo = await run(CA_BIN, ['user', 'disable', 'mallory'], { ...env, SUDO_USER: 'carol' });
      assert.equal(viaSudo.code, 0, viaSudo.stderr);
      const plain = await run(CA_BIN, ['user', 'enable', 'mallory'], env);
      assert.equal(plain.code, 0, plain.stderr);
      const logged = server.logs.filter((l) => l['msg'] === 'admin' && l['method'] === 'POST');
      assert.deepEqual(logged.map((l) => [l['actor'], l['label'], l['uid']]), [[me, 'carol', process.getuid!()], [me, 'carol', process.getuid!()], [me, undefined, process.getuid!()]]);
      // Queries by actor find them under the real name (newest first), and nothing under the claimed one.
      const mine = await run(CA_BIN, ['audit', 'events', '--actor', me, '--json'], env);
      assert.equal(mine.code, 0, mine.stderr);
      const found = JSON.parse(mine.stdout).events as Array<{ action: string; details: Record<string, unknown> }>;
      assert.deepEqual(found.map((e) => [e.action, e.details['actor_label']]), [['user.enable', undefined], ['user.disable', 'carol'], ['user.add', 'carol']]);
      const claimed = await run(CA_BIN, ['audit', 'events', '--actor', 'os:carol-the-auditor', '--json'], env);
      assert.deepEqual(JSON.parse(claimed.stdout).events, []);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.deepEqual(
      [...(await eventsOf(dataDir, 'user.add')), ...(await eventsOf(dataDir, 'user.disable')), ...(await eventsOf(dataDir, 'user.enable'))],
      [
        { actor: me, target: 'mallory', label: 'carol' },
        { actor: me, target: 'mallory', label: 'carol' },
        { actor: me, target: 'mallory', label: undefined },
      ],
    );
  });

  test("fail: a peer whose uid is neither the server's nor root is refused with 403, even with the socket opened to everyone; a uid without a name is recorded as uid:N, root as os:root", { skip: ROOT_ONLY }, async () => {
    const uid = namelessUid();
    const nobody = 65534;
    const top = tempDir();
    chmodSync(top, 0o755);
    const dataDir = path.join(top, 'data');
    const runDir = path.join(top, 'run');
    for (const d of [dataDir, runDir]) {
      mkdirSync(d, { mode: 0o700 });
      chownSync(d, uid, uid);
    }
    chmodSync(runDir, 0o755);
    const sock = path.join(runDir, 'admin.sock');
    const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_ADMIN_SOCKET: sock, JIT_SSH_PASSWORD_COST: '14' });
    const server = await startServerProcess(env, 60_000, { uid });
    try {
      const st = statSync(sock);
      assert.deepEqual([st.mode & 0o777, st.uid], [0o600, uid]);
      const own = await run(CA_BIN, ['user', 'add', 'own', '--password-stdin'], env, 'own-password-long', { uid, gid: uid });
      assert.equal(own.code, 0, own.stderr);
      const root = await run(CA_BIN, ['user', 'add', 'rooted', '--password-stdin'], env, 'rooted-password-long');
      assert.equal(root.code, 0, root.stderr);

      // Opened to everyone by mistake (or an ACL): another user connects, and is still refused.
      chmodSync(sock, 0o666);
      const other = await run(CA_BIN, ['user', 'add', 'intruder', '--password-stdin'], env, 'intruder-password-long', { uid: nobody, gid: nobody });
      assert.equal(other.code, 1, other.stdout);
      assert.equal(other.stderr, `jit-ssh-ca: the admin socket serves only its own OS user (uid ${uid}) and root; uid ${nobody} (nobody) is refused\n`);
      const script = `require('http').get({ socketPath: ${JSON.stringify(sock)}, path: '/admin/users', headers: { 'X-Jit-Ssh-Actor': 'os:root' } }, (r) => { let t = r.statusCode + ' ' + r.headers['content-type'] + ' '; r.on('data', (d) => (t += d)); r.on('end', () => console.log(t)); })`;
      const raw = execFileSync(process.execPath, ['-e', script], { uid: nobody, gid: nobody, encoding: 'utf8' });
      assert.match(raw, /^403 application\/problem\+json \{.*"status":403.*"detail":"the admin socket serves only its own OS user/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.deepEqual(await eventsOf(dataDir, 'user.add'), [
      { actor: `uid:${uid}`, target: 'own', label: undefined },
      { actor: 'os:root', target: 'rooted', label: undefined },
    ]);
  });

  test('fail-closed: a server that cannot identify its callers refuses every admin request with 403 and changes nothing, and warns at start', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_PASSWORD_COST: '14' });
    // No helper to ask the kernel with: the server's PATH leads nowhere.
    const server = await startServerProcess({ ...env, PATH: path.join(dataDir, 'no-such-dir') });
    try {
      assert.ok(server.logs.some((l) => l['level'] === 'warn' && String(l['msg']).startsWith('the admin socket cannot identify its callers')), JSON.stringify(server.logs));
      const add = await run(CA_BIN, ['user', 'add', 'eve', '--password-stdin'], env, 'eve-password-long');
      assert.equal(add.code, 1, add.stdout);
      assert.match(add.stderr, /^jit-ssh-ca: the admin socket cannot identify its caller \(.+\); refused\n$/);
      const res = await socketRequest(path.join(dataDir, 'admin.sock'), 'GET', '/admin/users', { 'X-Jit-Ssh-Actor': me });
      assert.equal(res.status, 403);
      assert.equal(res.type, 'application/problem+json');
      assert.match(String(res.json['detail']), /cannot identify its caller/);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.deepEqual(await eventsOf(dataDir, 'user.add'), []);
  });
});

describe('jit-ssh-ca user on PostgreSQL', { skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run against PostgreSQL' }, () => {
  test('ok: user add works against PostgreSQL with no server running, and a server then logs the user in', async () => {
    const { url, drop } = await createPostgresDatabase();
    try {
      const env = cleanEnv({ DATABASE_URL: url, JIT_SSH_DATA_DIR: tempDir(), JIT_SSH_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'), JIT_SSH_PASSWORD_COST: '14' });
      const add = await run(CA_BIN, ['user', 'add', 'pat', '--password-stdin'], env, 'pat-password-long');
      assert.equal(add.code, 0, add.stderr);
      const server = await startServerProcess(env);
      try {
        assert.equal((await login(server.url, 'pat', 'pat-password-long', totp(add.stdout.trim()))).status, 200);
      } finally {
        await server.stop();
      }
      const noKey = await run(CA_BIN, ['user', 'list'], { ...env, JIT_SSH_SECRET_KEY: '' });
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, /JIT_SSH_SECRET_KEY: required with DATABASE_URL/);
    } finally {
      await drop();
    }
  });
});
