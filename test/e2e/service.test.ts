// The service as operators run it: the real executable, a fresh data
// directory, the embedded database, a generated CA key; signals; bad settings.

import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, run, startServerProcess } from '../helpers/process.js';

describe('jit-ssh-ca serve on the embedded database', () => {
  const dataDir = path.join(tempDir(), 'data');
  const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir });

  test('ok: first start makes a 0600 ed25519 CA key, serves it, and stops cleanly on SIGTERM', async () => {
    const server = await startServerProcess(env);
    const keyFile = path.join(dataDir, 'ca_key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(server.logs.some((l) => l['msg'] === 'generated a new ed25519 CA key'));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    // Below its signed header (a comment to sshd), the key line of ca_key.pub.
    assert.match(caPub, /^# jit-ssh CA key list, version \d+, signed at \d+ /);
    assert.equal(caPub.replace(/^#.*\n/gm, ''), readFileSync(`${keyFile}.pub`, 'utf8'));
    assert.equal(await server.stop(), 0);
    assert.equal(server.logs.at(-1)?.['msg'], 'stopped');
    const logText = JSON.stringify(server.logs);
    assert.ok(!logText.includes(readFileSync(keyFile, 'utf8').split('\n')[1]!), 'key material in the logs');
  });

  test('ok: a restart keeps the key and the database; `ca pubkey` prints the same lines', async () => {
    const server = await startServerProcess(env);
    assert.ok(!server.logs.some((l) => l['msg'] === 'generated a new ed25519 CA key'));
    assert.ok(!server.logs.some((l) => l['msg'] === 'database migrated'), 'migrations ran again on a migrated database');
    const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    const printed = await run(CA_BIN, ['ca', 'pubkey'], env);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, caPub.replace(/^#.*\n/gm, ''));

    const second = await run(CA_BIN, ['serve', '--port', '0'], env);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^jit-ssh-ca: the embedded database in .* is in use by process \d+ \(is jit-ssh-ca serve running\?\)\n$/);
    assert.equal(await server.stop('SIGINT'), 0);
  });

  test('fail: bodies over the limit are refused with 413 whether they declare their length or stream in chunks', async () => {
    const server = await startServerProcess(cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_BODY_LIMIT: '2048' }));
    const post = (body: string, chunked: boolean) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${server.url}/v1/auth/login`);
        const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': Buffer.byteLength(body) }) } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        if (chunked) for (let i = 0; i < body.length; i += 500) req.write(body.slice(i, i + 500));
        req.end(chunked ? undefined : body);
      });
    const big = JSON.stringify({ username: 'x'.repeat(3000), password: 'p', totp: '1' });
    const small = JSON.stringify({ username: 'nobody', password: 'p', totp: '123456' });
    try {
      assert.equal(await post(big, false), 413);
      assert.equal(await post(big, true), 413);
      assert.equal(await post(small, false), 401);
      assert.equal(await post(small, true), 401);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  test('fail: a CA key readable by others stops start-up with one line', async () => {
    chmodSync(path.join(dataDir, 'ca_key'), 0o644);
    try {
      const res = await run(CA_BIN, ['serve', '--port', '0'], env);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /^jit-ssh-ca: CA key .*ca_key is accessible by group or others \(mode 0644\); run: chmod 600 .*\n$/);
    } finally {
      chmodSync(path.join(dataDir, 'ca_key'), 0o600);
    }
  });
});

test('fail: wrong settings stop start-up with one line per problem and exit 2', async () => {
  const res = await run(CA_BIN, ['serve', '--port', 'eighty'], cleanEnv({ JIT_SSH_LOG_LEVEL: 'chatty', DATABASE_URL: 'mysql://db', JIT_SSH_DATA_DIR: tempDir() }));
  assert.equal(res.code, 2);
  const lines = res.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 3, res.stderr);
  assert.ok(lines.every((l) => l.startsWith('jit-ssh-ca: ')));
  assert.ok(lines.some((l) => l.startsWith('jit-ssh-ca: PORT (--port): ')));
  assert.equal(res.stdout, '');
});

test('fail: unknown commands and flags are usage errors; --help exits 0', async () => {
  const env = cleanEnv();
  const unknown = await run(CA_BIN, ['launch'], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^jit-ssh-ca: unknown command "launch" \(see jit-ssh-ca --help\)\n$/);
  const flag = await run(CA_BIN, ['serve', '--colour'], env);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--colour/);
  const help = await run(CA_BIN, ['--help'], env);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /jit-ssh-ca serve/);
  assert.match(help.stdout, /JIT_SSH_DATA_DIR/);
});

test('ok: `ca pubkey` never creates a CA key as a side effect', async () => {
  const dataDir = path.join(tempDir(), 'empty');
  const res = await run(CA_BIN, ['ca', 'pubkey'], cleanEnv({ JIT_SSH_DATA_DIR: dataDir }));
  assert.equal(res.code, 1);
  assert.match(res.stderr, /CA key .*ca_key does not exist/);
});

describe('jit-ssh-ca serve on PostgreSQL', { skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run against PostgreSQL' }, () => {
  test('ok: starts, migrates, reports ready, and stops', async () => {
    const { url, drop } = await createPostgresDatabase();
    try {
      const server = await startServerProcess(cleanEnv({ DATABASE_URL: url, JIT_SSH_DATA_DIR: tempDir(), JIT_SSH_SECRET_KEY: Buffer.alloc(32, 5).toString('base64') }));
      assert.equal(server.logs.find((l) => l['msg'] === 'listening')?.['database'], 'postgres');
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      assert.ok(!JSON.stringify(server.logs).includes(url), 'the database URL was logged');
      assert.equal(await server.stop(), 0);
    } finally {
      await drop();
    }
  });
});
