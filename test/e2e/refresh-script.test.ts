// The refresh script (src/server-side/jit-ssh-refresh) against the real CA,
// run in-process: it installs the KRL, keeps or replaces ca.pub only on a
// signature from a key the server already trusts, and a revocation reaches a
// real sshd through it. For the failures, a small HTTP server in front of the
// CA serves crafted answers; each failure must leave the installed files
// byte-identical, say one line on stderr, and exit non-zero.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/main.js';
import { KRL_NAMESPACE } from '../../src/services/revocation.js';
import { publicKeyLine, type Signer } from '../../src/ssh/signer.js';
import { CA_KEYS_NAMESPACE, sshsign } from '../../src/ssh/sshsig.js';
import { caSigner, tempDir, userKey, type UserKeyFile } from '../helpers/keys.js';
import { ROOT, cleanEnv } from '../helpers/process.js';
import { startSshd, trySsh } from '../helpers/sshd.js';

const USER = os.userInfo().username;
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const REFRESH = path.join(ROOT, 'src', 'server-side', 'jit-ssh-refresh');

let server: RunningServer | undefined;
// Registered before tempDir's after(), so the CA closes its database before the directory goes.
after(() => server?.close());
const dir = tempDir('jit-ssh-refresh-');
before(async () => {
  server = await startServer(loadServerConfig(cleanEnv(), { 'data-dir': path.join(dir, 'data'), port: '0' }), silentLogger);
});
const ca = (): RunningServer => {
  if (!server) throw new Error('the CA did not start');
  return server;
};

/** What `jit-ssh-ca ca pubkey` prints for this CA (no older trusted keys), and what /v1/ca.pub serves. */
const caPubText = (): string => publicKeyLine(ca().signer, 'jit-ssh-ca') + '\n';

/** A server's directory with the operator's one-time install of ca.pub. */
function serverDir(caPub: string | null = caPubText()): string {
  const target = mkdtempSync(path.join(dir, 'server-'));
  if (caPub !== null) writeFileSync(path.join(target, 'ca.pub'), caPub, { mode: 0o644 });
  return target;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function refresh(url: string, target: string, env: NodeJS.ProcessEnv = cleanEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(REFRESH, [url, target], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A server directory after a successful first run: ca.pub and revoked.krl installed. */
async function installedDir(): Promise<string> {
  const target = serverDir();
  const res = await refresh(ca().url, target);
  assert.equal(res.code, 0, res.stderr);
  return target;
}

/** Every entry of the directory and its bytes (temporary files left behind would show here too). */
function snapshot(target: string): Record<string, string> {
  return Object.fromEntries(readdirSync(target).sort().map((name) => {
    const file = path.join(target, name);
    return [name, statSync(file).isDirectory() ? '(directory)' : readFileSync(file).toString('base64')];
  }));
}

const upstream = async (p: string): Promise<Buffer> => Buffer.from(await (await fetch(ca().url + p)).arrayBuffer());

/** An answer of the crafted CA: an HTTP status, a body, or a body computed per request. */
type Reply = { status: number } | string | Buffer | (() => Promise<string | Buffer>);

/** An HTTP server that answers `replies` for their paths and passes every other request to the real CA. Closed when the test ends. */
async function craftedCa(replies: Record<string, Reply>): Promise<string> {
  const proxy = http.createServer((req, res) => {
    (async () => {
      const reply = replies[req.url ?? ''];
      if (reply && typeof reply === 'object' && 'status' in reply) {
        res.writeHead(reply.status, { 'content-type': 'text/plain' });
        res.end('crafted error\n');
        return;
      }
      const body = reply === undefined ? await upstream(req.url ?? '/') : typeof reply === 'function' ? await reply() : reply;
      res.writeHead(200);
      res.end(body);
    })().catch((e: Error) => {
      res.writeHead(502);
      res.end(e.message);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

/** A KRL made by ssh-keygen itself, revoking nothing, with the given version. */
function sshKeygenKrl(version: number): Buffer {
  const file = path.join(mkdtempSync(path.join(dir, 'krl-')), 'krl');
  execFileSync('ssh-keygen', ['-k', '-f', file, '-z', String(version)], { stdio: 'ignore' });
  return readFileSync(file);
}

const krlVersion = (file: string): number => Number(/^# KRL version (\d+)$/m.exec(execFileSync('ssh-keygen', ['-Q', '-l', '-f', file], { encoding: 'utf8' }))![1]);

/** Runs the script against a crafted CA and asserts the failure: one stderr line matching `pattern`, nothing installed or left behind. */
async function assertRefused(target: string, url: string, pattern: RegExp): Promise<void> {
  const before = snapshot(target);
  const res = await refresh(url, target);
  assert.notEqual(res.code, 0, `the refresh succeeded: ${res.stdout}`);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, /^jit-ssh-refresh: [^\n]+\n$/, 'exactly one line on stderr');
  assert.match(res.stderr, pattern);
  assert.deepEqual(snapshot(target), before, 'the installed files changed');
}

test('ok: the first run installs the KRL and keeps ca.pub; the next run is quiet', async () => {
  const target = serverDir();
  const caPub = path.join(target, 'ca.pub');
  const { ino, mtimeMs } = statSync(caPub);

  const first = await refresh(ca().url, target);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, '');
  const version = krlVersion(path.join(target, 'revoked.krl'));
  // Only the KRL changed: ca.pub was identical and is the very same file, not rewritten.
  assert.equal(first.stdout, `jit-ssh-refresh: ${target}/revoked.krl updated: KRL version ${version} (was none)\n`);
  assert.deepEqual(readFileSync(path.join(target, 'revoked.krl')), await upstream('/v1/krl'));
  assert.equal(statSync(path.join(target, 'revoked.krl')).mode & 0o777, 0o644);
  assert.equal(readFileSync(caPub, 'utf8'), caPubText());
  assert.equal(statSync(caPub).ino, ino);
  assert.equal(statSync(caPub).mtimeMs, mtimeMs);
  assert.deepEqual(readdirSync(target).sort(), ['ca.pub', 'revoked.krl']);

  const installed = snapshot(target);
  const second = await refresh(ca().url, target);
  assert.deepEqual(second, { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(snapshot(target), installed);
});

interface Issued {
  key: UserKeyFile;
  /** The certificate file, beside the key where ssh looks for it. */
  path: string;
  serial: string;
}

/** A certificate from the CA's own issuer for USER, valid for ten minutes. */
async function issueCertificate(keyDir: string, name: string): Promise<Issued> {
  const key = userKey(keyDir, 'ed25519', undefined, name);
  const now = Date.now();
  const cert = await ca().issuer.issue({
    username: name,
    requestId: null,
    role: null,
    publicKey: key.publicLine,
    principals: [USER],
    validAfter: new Date(now - 60_000),
    validBefore: new Date(now + 600_000),
    extensions: ['permit-pty'],
    criticalOptions: {},
    clientAddress: null,
  });
  writeFileSync(`${key.path}-cert.pub`, cert.certificate + '\n');
  return { key, path: `${key.path}-cert.pub`, serial: cert.serial };
}

test('ok: a revoked certificate reaches the KRL; sshd with it refuses that certificate and still admits another', async () => {
  const target = await installedDir();
  const keyDir = mkdtempSync(path.join(dir, 'keys-'));
  const stolen = await issueCertificate(keyDir, 'stolen');
  const kept = await issueCertificate(keyDir, 'kept');
  const sshd = await startSshd({ caKeys: readFileSync(path.join(target, 'ca.pub'), 'utf8').trim().split('\n'), revokedKeys: path.join(target, 'revoked.krl') });
  const login = (c: Issued) => trySsh({ port: sshd.port, keyPath: c.key.path, certPath: c.path, user: USER, command: 'echo inside' });

  // Before the revocation the certificate works: the refusal below is the KRL's doing.
  const okBefore = await login(stolen);
  assert.equal(okBefore.code, 0, okBefore.stderr);
  assert.equal(okBefore.stdout, 'inside\n');

  const oldVersion = krlVersion(path.join(target, 'revoked.krl'));
  assert.deepEqual(await ca().revocation.revoke({ serial: stolen.serial }, 'stolen laptop', 'test'), { revoked: [stolen.serial] });
  const res = await refresh(ca().url, target);
  assert.equal(res.code, 0, res.stderr);
  const m = new RegExp(`^jit-ssh-refresh: ${escapeRe(target)}/revoked\\.krl updated: KRL version (\\d+) \\(was ${oldVersion}\\)\\n$`).exec(res.stdout);
  assert.ok(m, res.stdout);
  assert.ok(Number(m[1]) > oldVersion);

  // ssh-keygen -Q exits 1 and says REVOKED for a revoked key, 0 otherwise.
  const query = (c: string) => runCommand('ssh-keygen', ['-Q', '-f', path.join(target, 'revoked.krl'), c]);
  const q1 = await query(stolen.path);
  assert.equal(q1.code, 1);
  assert.match(q1.stdout, /REVOKED/);
  const q2 = await query(kept.path);
  assert.equal(q2.code, 0, q2.stdout);

  const from = sshd.log().length;
  const refused = await login(stolen);
  assert.equal(refused.code, 255);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  await sshd.waitForLog(new RegExp(`revoked by file ${escapeRe(target)}/revoked\\.krl`), from);
  const admitted = await login(kept);
  assert.equal(admitted.code, 0, admitted.stderr);
  assert.equal(admitted.stdout, 'inside\n');
});

function runCommand(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('ok: a CA key rotation: a new key is trusted only once a trusted key has signed a list holding it', async () => {
  const target = await installedDir();
  const next: Signer = caSigner('ed25519');
  const bothByOld = publicKeyLine(ca().signer, 'jit-ssh-ca') + '\n' + publicKeyLine(next, 'jit-ssh-ca-next') + '\n';
  const bothByNew = publicKeyLine(next, 'jit-ssh-ca-next') + '\n' + publicKeyLine(ca().signer, 'jit-ssh-ca') + '\n';
  // Step 2 of a rotation: the new key signs the list and the KRL.
  const signedByNew = await craftedCa({
    '/v1/ca.pub': bothByNew,
    '/v1/ca.pub.sig': () => sshsign(next, CA_KEYS_NAMESPACE, Buffer.from(bothByNew)),
    '/v1/krl.sig': async () => sshsign(next, KRL_NAMESPACE, await upstream('/v1/krl')),
  });
  // Too early: this server does not trust the new key yet.
  await assertRefused(target, signedByNew, /ca\.pub: its signature does not verify with a key of .*\/ca\.pub; nothing changed/);

  // Step 1: the old key announces the new one.
  const announced = await craftedCa({ '/v1/ca.pub': bothByOld, '/v1/ca.pub.sig': () => sshsign(ca().signer, CA_KEYS_NAMESPACE, Buffer.from(bothByOld)) });
  const res = await refresh(announced, target);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `jit-ssh-refresh: ${target}/ca.pub updated: 2 CA keys\n`);
  assert.equal(readFileSync(path.join(target, 'ca.pub'), 'utf8'), bothByOld);
  assert.equal(statSync(path.join(target, 'ca.pub')).mode & 0o777, 0o644);

  // Now step 2 is accepted.
  const res2 = await refresh(signedByNew, target);
  assert.equal(res2.code, 0, res2.stderr);
  assert.equal(res2.stdout, `jit-ssh-refresh: ${target}/ca.pub updated: 2 CA keys\n`);
  assert.equal(readFileSync(path.join(target, 'ca.pub'), 'utf8'), bothByNew);
});

test('fail: a KRL altered after it was signed', async () => {
  const target = await installedDir();
  const altered = async () => {
    const krl = Buffer.from(await upstream('/v1/krl'));
    krl[27]! ^= 0x01; // the low byte of generated_date: still a KRL ssh-keygen reads, only the signature can tell
    return krl;
  };
  const probe = path.join(target, '..', `probe-${path.basename(target)}.krl`);
  writeFileSync(probe, await altered());
  assert.equal(krlVersion(probe), krlVersion(path.join(target, 'revoked.krl')));
  await assertRefused(target, await craftedCa({ '/v1/krl': altered }), /\/v1\/krl: its signature does not verify with a key of the CA key list; nothing changed/);
});

test('fail: a KRL signed by a key that is not a CA key', async () => {
  const target = await installedDir();
  const intruder = caSigner('ed25519');
  const url = await craftedCa({ '/v1/krl.sig': async () => sshsign(intruder, KRL_NAMESPACE, await upstream('/v1/krl')) });
  await assertRefused(target, url, /\/v1\/krl: its signature does not verify/);
});

test('fail: a KRL signed by the CA key for another namespace', async () => {
  const target = await installedDir();
  const url = await craftedCa({ '/v1/krl.sig': async () => sshsign(ca().signer, CA_KEYS_NAMESPACE, await upstream('/v1/krl')) });
  await assertRefused(target, url, /\/v1\/krl: its signature does not verify/);
});

test('fail: a garbled KRL signature', async () => {
  const target = await installedDir();
  const url = await craftedCa({ '/v1/krl.sig': async () => (await upstream('/v1/krl.sig')).toString().replace(/[A-Za-z](?=[A-Za-z0-9+/]{20}\n)/, (c) => (c === 'A' ? 'B' : 'A')) });
  await assertRefused(target, url, /\/v1\/krl: its signature does not verify/);
});

test('fail: a KRL that verifies but ssh-keygen cannot read', async () => {
  const target = await installedDir();
  const garbage = Buffer.from('SSHKRL\n\0 not really a KRL');
  const url = await craftedCa({ '/v1/krl': garbage, '/v1/krl.sig': () => sshsign(ca().signer, KRL_NAMESPACE, garbage) });
  await assertRefused(target, url, /\/v1\/krl is not a KRL ssh-keygen can read; nothing changed/);
});

test('fail: a KRL with a lower version than the installed one (rollback)', async () => {
  const target = await installedDir();
  // A correctly signed KRL of version 1000 first (accepted), then the CA's own, far lower.
  const high = sshKeygenKrl(1000);
  const ahead = await craftedCa({ '/v1/krl': high, '/v1/krl.sig': () => sshsign(ca().signer, KRL_NAMESPACE, high) });
  const res = await refresh(ahead, target);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /revoked\.krl updated: KRL version 1000 \(was \d+\)\n$/);
  const current = krlVersion(path.join(target, 'revoked.krl'));
  assert.equal(current, 1000);
  const real = await craftedCa({});
  await assertRefused(target, real, /\/v1\/krl has KRL version \d+, lower than the installed 1000 \(a rollback\?\); nothing changed/);
  // The same KRL again, same version: accepted, and quiet since nothing changed.
  assert.deepEqual(await refresh(ahead, target), { code: 0, stdout: '', stderr: '' });
});

test('fail: a ca.pub signed by a key the installed ca.pub does not hold', async () => {
  const target = await installedDir();
  const intruder = caSigner('ed25519');
  // A consistent forgery: the intruder's key list and a KRL, all signed by the intruder.
  const list = publicKeyLine(ca().signer, 'jit-ssh-ca') + '\n' + publicKeyLine(intruder, 'intruder') + '\n';
  const url = await craftedCa({
    '/v1/ca.pub': list,
    '/v1/ca.pub.sig': () => sshsign(intruder, CA_KEYS_NAMESPACE, Buffer.from(list)),
    '/v1/krl.sig': async () => sshsign(intruder, KRL_NAMESPACE, await upstream('/v1/krl')),
  });
  await assertRefused(target, url, /\/v1\/ca\.pub: its signature does not verify with a key of .*\/ca\.pub; nothing changed/);
});

test('fail: a KRL signed by a key that the new ca.pub no longer lists', async () => {
  const target = await installedDir();
  // The list (properly signed by the trusted key) hands over to another key; the KRL is still signed by the old one.
  const nextOnly = publicKeyLine(caSigner('ed25519'), 'jit-ssh-ca-next') + '\n';
  const url = await craftedCa({ '/v1/ca.pub': nextOnly, '/v1/ca.pub.sig': () => sshsign(ca().signer, CA_KEYS_NAMESPACE, Buffer.from(nextOnly)) });
  await assertRefused(target, url, /\/v1\/krl: its signature does not verify with a key of the CA key list; nothing changed/);
});

test('fail: a ca.pub signed by the CA that is not a list of public keys', async () => {
  // A certificate, by ssh-keygen: a key line, but not one sshd may trust as a CA.
  const keyDir = mkdtempSync(path.join(dir, 'cert-'));
  const user = userKey(keyDir, 'ed25519', undefined, 'user');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'ca')]);
  execFileSync('ssh-keygen', ['-q', '-s', path.join(keyDir, 'ca'), '-I', 'x', '-n', USER, `${user.path}.pub`]);
  const certLine = readFileSync(`${user.path}-cert.pub`, 'utf8').trim();
  for (const extra of ['not a key', certLine, `cert-authority ${user.publicLine}`, `ssh-ed25519 ${Buffer.from('not a key blob').toString('base64')}`]) {
    const target = await installedDir();
    const list = caPubText() + extra + '\n';
    const url = await craftedCa({ '/v1/ca.pub': list, '/v1/ca.pub.sig': () => sshsign(ca().signer, CA_KEYS_NAMESPACE, Buffer.from(list)) });
    await assertRefused(target, url, /\/v1\/ca\.pub is not a list of public keys; nothing changed/);
  }
});

test('fail: an HTTP error from the CA', async () => {
  for (const p of ['/v1/ca.pub', '/v1/ca.pub.sig', '/v1/krl', '/v1/krl.sig']) {
    const target = await installedDir();
    const url = await craftedCa({ [p]: { status: p.endsWith('.sig') ? 404 : 500 } });
    await assertRefused(target, url, new RegExp(`cannot download ${escapeRe(url + p)}: curl: \\(22\\) .*${p.endsWith('.sig') ? 404 : 500}`));
  }
});

test('fail: the CA cannot be reached', async () => {
  const target = await installedDir();
  const url = await craftedCa({});
  const closed = await new Promise<string>((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
  assert.notEqual(closed, url);
  await assertRefused(target, closed, /cannot download http:\/\/127\.0\.0\.1:\d+\/v1\/ca\.pub: curl: \(7\)/);
});

test('fail: no ca.pub installed: trust is never taken from the network', async () => {
  const target = serverDir(null);
  await assertRefused(target, ca().url, /^jit-ssh-refresh: .*\/ca\.pub is missing: install it once from 'jit-ssh-ca ca pubkey'/);
  assert.deepEqual(readdirSync(target), []);
});

test('fail: another run holds the lock on DIR', async () => {
  const target = await installedDir();
  // A lock on the directory, as a second jit-ssh-refresh holds it; one process, so killing it frees the lock.
  const holder = spawn('sh', ['-c', 'exec 9<"$1" && flock 9 && echo locked && exec sleep 30', 'sh', target], { stdio: ['ignore', 'pipe', 'ignore'] });
  after(() => holder.kill());
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  await assertRefused(target, ca().url, /^jit-ssh-refresh: another jit-ssh-refresh is running on .*\n$/);
  holder.kill();
  await new Promise((resolve) => holder.once('close', resolve));
  assert.deepEqual(await refresh(ca().url, target), { code: 0, stdout: '', stderr: '' });
});

test('ok: without curl, wget does the downloads', async () => {
  // A PATH holding every command of /usr/bin but curl.
  const bin = path.join(dir, 'bin-without-curl');
  mkdirSync(bin);
  for (const name of readdirSync('/usr/bin')) if (name !== 'curl') symlinkSync(path.join('/usr/bin', name), path.join(bin, name));
  const env = cleanEnv({ PATH: bin });
  const target = serverDir();
  const res = await refresh(ca().url, target, env);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^jit-ssh-refresh: .*\/revoked\.krl updated: KRL version \d+ \(was none\)\n$/);
  assert.deepEqual(readFileSync(path.join(target, 'revoked.krl')), await upstream('/v1/krl'));

  const before = snapshot(target);
  const failing = await refresh(await craftedCa({ '/v1/krl': { status: 500 } }), target, env);
  assert.equal(failing.code, 1);
  assert.match(failing.stderr, /^jit-ssh-refresh: cannot download http:\/\/127\.0\.0\.1:\d+\/v1\/krl: wget failed\n$/);
  assert.deepEqual(snapshot(target), before);
});
