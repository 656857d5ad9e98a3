// `jit-ssh-ca user ...` as operators run it: with the server stopped (the
// command opens the database) and running (it goes through the admin socket,
// since the embedded database admits one process).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { listEvents } from '../../src/db/audit-events.js';
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
