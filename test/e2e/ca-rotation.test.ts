// Rotating the CA key the documented way, against a server that keeps its
// trust current with jit-ssh-refresh and a real sshd: no certificate stops
// working before it should, the old key is retired only when nothing live
// needs it, and the audit log it signed still verifies afterwards.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, ROOT, run } from '../helpers/process.js';
import { startSshd, trySsh } from '../helpers/sshd.js';

const USER = os.userInfo().username;
const REFRESH = path.join(ROOT, 'src/server-side/jit-ssh-refresh');

function refresh(url: string, dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(REFRESH, [url, dir], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) || 1 : 0, stdout, stderr })));
}

const get = async (base: string, p: string): Promise<Buffer> => Buffer.from(await (await fetch(base + p)).arrayBuffer());

/** An HTTP server answering the recorded `bodies` for their paths and passing every other request to the CA. Closed when the test ends. */
async function replayingCa(ca: string, bodies: Record<string, Buffer>): Promise<string> {
  const proxy = http.createServer((req, res) => {
    const body = bodies[req.url ?? ''];
    (body ? Promise.resolve(body) : get(ca, req.url ?? '/')).then(
      (b) => res.writeHead(200).end(b),
      (e: Error) => res.writeHead(502).end(e.message),
    );
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

test('ok: a CA key rotation: announce, switch, retire; logins keep working and the log still verifies', async () => {
  const dir = tempDir();
  const dataDir = path.join(dir, 'data');
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, `roles:\n  shell:\n    principals: [${USER}]\n    requesters: [group:engineering]\n    auto_approve:\n      - groups: [engineering]\n`);
  const trustedFile = path.join(dir, 'trusted-ca-keys');
  const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_POLICY: policy });
  const host = path.join(dir, 'host');
  mkdirSync(host);
  let server: RunningServer | undefined;
  after(() => server?.close());
  const start = async (flags: Record<string, string>) => {
    await server?.close();
    server = await startServer(loadServerConfig(env, { port: '0', ...flags }), silentLogger);
    return server;
  };
  const issue = async (s: RunningServer, name: string) => {
    const key = userKey(dir, 'ed25519', undefined, name);
    const now = Date.now();
    const c = await s.issuer.issue({ username: 'alice', requestId: null, role: 'shell', publicKey: key.publicLine, principals: [USER], validAfter: new Date(now - 60_000), validBefore: new Date(now + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
    writeFileSync(`${key.path}-cert.pub`, c.certificate + '\n');
    return { serial: c.serial, keyPath: key.path, certPath: `${key.path}-cert.pub` };
  };
  /** Logs in with each certificate through an sshd that trusts what the host has installed now. */
  const logins = async (...certs: Array<{ keyPath: string; certPath: string }>) => {
    const sshd = await startSshd({ caKeys: readFileSync(path.join(host, 'ca.pub'), 'utf8').trim().split('\n'), revokedKeys: path.join(host, 'revoked.krl') }, { stopAfter: false });
    try {
      return await Promise.all(certs.map(async (c) => (await trySsh({ port: sshd.port, ...c, user: USER, command: 'true' })).code === 0));
    } finally {
      await sshd.stop();
    }
  };

  // Before: one key. The host installs it from `ca pubkey`, then refreshes.
  let s = await start({});
  const old = await issue(s, 'old');
  await sleep(1500); // the sealer signs its first checkpoint with the old key
  const pub1 = await run(CA_BIN, ['ca', 'pubkey'], env);
  writeFileSync(path.join(host, 'ca.pub'), pub1.stdout);
  assert.equal((await refresh(s.url, host)).code, 0);
  assert.deepEqual(await logins(old), [true]);

  // 1. Announce: the new key is trusted beside the old one, which still signs the list.
  const gen = await run(CA_BIN, ['ca', 'generate', '--out', path.join(dataDir, 'ca_key.next')], env);
  assert.equal(gen.code, 0, gen.stderr);
  writeFileSync(trustedFile, gen.stdout);
  s = await start({ 'trusted-ca-keys': trustedFile });
  let r = await refresh(s.url, host);
  assert.match(r.stdout.split('\n')[0]!, new RegExp(`^jit-ssh-refresh: ${host}/ca\\.pub updated: 2 CA keys, version \\d+ \\(was \\d+\\)$`), r.stderr);

  // 2. Switch: the new key signs; the old one stays trusted for what it signed.
  writeFileSync(trustedFile, pub1.stdout);
  s = await start({ 'ca-key': path.join(dataDir, 'ca_key.next'), 'trusted-ca-keys': trustedFile });
  assert.equal((await refresh(s.url, host)).code, 0, 'a list signed by the new key is accepted: the host trusts it since step 1');
  // What an attacker records at step 2: the list (still holding the old key) and its valid signature by the new key.
  const step2 = { '/v1/ca.pub': await get(s.url, '/v1/ca.pub'), '/v1/ca.pub.sig': await get(s.url, '/v1/ca.pub.sig') };
  const fresh = await issue(s, 'fresh');
  assert.deepEqual(await logins(old, fresh), [true, true]);
  let keys = JSON.parse((await run(CA_BIN, ['ca', 'keys', '--json', '--trusted-ca-keys', trustedFile, '--ca-key', path.join(dataDir, 'ca_key.next')], env)).stdout).keys;
  assert.deepEqual(keys.map((k: Record<string, unknown>) => [k['status'], k['certificates'], k['live'], k['retirable']]), [['signing', 1, 1, false], ['trusted', 1, 1, false]]);
  // A revocation of an old-key certificate reaches the host through the KRL's old-key section.
  await s.revocation.revoke({ serial: old.serial }, 'laptop stolen', 'test');
  assert.equal((await refresh(s.url, host)).code, 0);
  assert.deepEqual(await logins(old, fresh), [false, true]);

  // 3. Retire: marked @retired, the old key leaves /v1/ca.pub and the host's trust.
  writeFileSync(trustedFile, `@retired ${pub1.stdout}`);
  s = await start({ 'ca-key': path.join(dataDir, 'ca_key.next'), 'trusted-ca-keys': trustedFile });
  r = await refresh(s.url, host);
  assert.match(r.stdout, /ca\.pub updated: 1 CA keys/);
  // Below the signed header: the new key, and the old one named as retired (never to be trusted again).
  const retiredLine = `# retired ${pub1.stdout.split(' ').slice(0, 2).join(' ')}\n`;
  assert.equal(readFileSync(path.join(host, 'ca.pub'), 'utf8').replace(/^# jit-ssh CA key list, [^\n]*\n/, ''), gen.stdout + retiredLine);
  assert.deepEqual(await logins(old, fresh), [false, true]);
  keys = JSON.parse((await run(CA_BIN, ['ca', 'keys', '--json', '--trusted-ca-keys', trustedFile, '--ca-key', path.join(dataDir, 'ca_key.next')], env)).stdout).keys;
  assert.deepEqual(keys.map((k: Record<string, unknown>) => k['status']), ['signing', 'retired']);

  // The step-2 list replayed after the rotation finished (the KRL still comes from the CA): refused,
  // nothing changes, and the retired key stays untrusted.
  const installed = readFileSync(path.join(host, 'ca.pub'));
  const replay = await replayingCa(s.url, step2);
  r = await refresh(replay, host);
  assert.equal(r.code, 1, `the replayed step-2 list was accepted: ${r.stdout}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^jit-ssh-refresh: [^\n]*\/v1\/ca\.pub lists the CA key SHA256:\S+, which was retired: a retired key is never trusted again; nothing changed\n$/);
  assert.deepEqual(readFileSync(path.join(host, 'ca.pub')), installed);
  assert.deepEqual(await logins(old, fresh), [false, true]);

  // The checkpoints the old key signed still verify; forgetting the old key entirely would not.
  await s.database.db.selectFrom('chain_checkpoints').select('ca_fingerprint').execute().then((cps) => assert.ok(cps.length >= 1));
  const verified = await s.audit.verify();
  assert.equal(verified.ok, true, JSON.stringify(verified));
  writeFileSync(trustedFile, '');
  s = await start({ 'ca-key': path.join(dataDir, 'ca_key.next'), 'trusted-ca-keys': trustedFile });
  const unverified = await s.audit.verify();
  assert.equal(unverified.ok, false);
  assert.match(unverified.streams[0]!.problem!.detail, /bad signature: signed by SHA256:\S+, which is not a trusted CA key/);
});
