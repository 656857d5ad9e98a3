// The refresh script (src/server-side/jit-ssh-refresh) against the real CA,
// run in-process: it installs the KRL, keeps or replaces ca.pub only on a
// signature from a key the server already trusts, and a revocation reaches a
// real sshd through it. For the failures, a small HTTP server in front of the
// CA serves crafted answers; each failure must leave the installed files
// byte-identical, say one line on stderr, and exit non-zero. The rollback
// tests replay documents the CA really signed: an older CA key list (one that
// still holds a retired key), an older KRL, an older signing of the same one;
// the freshness tests serve documents signed long ago.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { caKeysBody, caKeysHeader } from '../../src/services/ca-keys.js';
import { createIssuer } from '../../src/services/issuance.js';
import { KRL_NAMESPACE } from '../../src/services/revocation.js';
import { encodeKrl } from '../../src/ssh/krl.js';
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

/** What `jit-ssh-ca ca pubkey` prints for this CA (no older trusted keys): the key lines /v1/ca.pub serves below its header. */
const caPubText = (): string => publicKeyLine(ca().signer, 'jit-ssh-ca') + '\n';
const STATE = 'jit-ssh-refresh.state';

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

/** A CA key list as the CA serves it: the signed header of `version`, signed `ageSeconds` ago, then the keys. */
function listDoc(keys: string[], version: number, opts: { ageSeconds?: number; retired?: string[] } = {}): string {
  return caKeysHeader(String(version), new Date(Date.now() - (opts.ageSeconds ?? 0) * 1000)) + caKeysBody(keys, opts.retired ?? []);
}

/** Replies serving `text` as /v1/ca.pub with its signature by `signer`. */
function servedList(text: string, signer: Signer = ca().signer): Record<string, Reply> {
  return { '/v1/ca.pub': text, '/v1/ca.pub.sig': () => sshsign(signer, CA_KEYS_NAMESPACE, Buffer.from(text)) };
}

/** A KRL revoking nothing, of `version`, generated (signed) `ageSeconds` ago, with its signature by `signer`. */
function agedKrl(version: bigint, ageSeconds: number, signer: Signer = ca().signer): Record<string, Reply> {
  const krl = encodeKrl({ version, generatedAt: new Date(Date.now() - ageSeconds * 1000), comment: 'jit-ssh', revoked: [] });
  return { '/v1/krl': krl, '/v1/krl.sig': () => sshsign(signer, KRL_NAMESPACE, krl) };
}

/** The CA's own KRL, signed by `signer` instead. */
const krlSignedBy = (signer: Signer): Record<string, Reply> => ({ '/v1/krl.sig': async () => sshsign(signer, KRL_NAMESPACE, await upstream('/v1/krl')) });

/** The state file's entries, without its comment lines. */
const stateOf = (target: string): string[] => readFileSync(path.join(target, STATE), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));

/** The version and signing time in a CA key list's header. */
function headerOf(text: string): { version: number; signedAt: number } {
  const m = /^# jit-ssh CA key list, version (\d+), signed at (\d+) \(/.exec(text);
  assert.ok(m, text.slice(0, 200));
  return { version: Number(m[1]), signedAt: Number(m[2]) };
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

test('ok: the first run, with no state, installs the signed CA key list and the KRL and writes the state; the next run is quiet', async () => {
  const target = serverDir();
  const first = await refresh(ca().url, target);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, '');
  const version = krlVersion(path.join(target, 'revoked.krl'));
  const list = readFileSync(path.join(target, 'ca.pub'), 'utf8');
  const { version: listVersion, signedAt } = headerOf(list);
  assert.equal(
    first.stdout,
    `jit-ssh-refresh: ${target}/ca.pub updated: 1 CA keys, version ${listVersion} (was none)\n` + `jit-ssh-refresh: ${target}/revoked.krl updated: KRL version ${version} (was none)\n`,
  );
  // The signed document itself, as sshd reads it: its header is a comment, the keys those of `ca pubkey`.
  assert.equal(list.slice(list.indexOf('\n') + 1), caPubText());
  assert.ok(Math.abs(signedAt - Date.now() / 1000) < 120, `signed at ${signedAt}`);
  const krl = readFileSync(path.join(target, 'revoked.krl'));
  assert.deepEqual(krl.subarray(28), (await upstream('/v1/krl')).subarray(28), 'the CA\'s KRL (its signing time aside)');
  for (const f of ['ca.pub', 'revoked.krl', STATE]) assert.equal(statSync(path.join(target, f)).mode & 0o777, 0o644, f);
  assert.deepEqual(readdirSync(target).sort(), ['ca.pub', STATE, 'revoked.krl']);
  assert.deepEqual(stateOf(target), [`ca_version ${listVersion}`, `ca_signed ${signedAt}`, `krl_version ${version}`, `krl_signed ${Number(krl.readBigUInt64BE(20))}`]);

  // Nothing new: quiet (a new signing period may have begun: that is installed, quietly).
  const second = await refresh(ca().url, target);
  assert.deepEqual(second, { code: 0, stdout: '', stderr: '' });
  assert.equal(headerOf(readFileSync(path.join(target, 'ca.pub'), 'utf8')).version, listVersion);
  assert.equal(krlVersion(path.join(target, 'revoked.krl')), version);
  assert.deepEqual(readdirSync(target).sort(), ['ca.pub', STATE, 'revoked.krl']);
});

interface Issued {
  key: UserKeyFile;
  /** The certificate file, beside the key where ssh looks for it. */
  path: string;
  serial: string;
}

/** A certificate for USER, valid for ten minutes, from the CA's own issuer (or one signing with `signer`). */
async function issueCertificate(keyDir: string, name: string, signer?: Signer): Promise<Issued> {
  const key = userKey(keyDir, 'ed25519', undefined, name);
  const now = Date.now();
  const issuer = signer ? createIssuer({ db: ca().database.db, signer }) : ca().issuer;
  const cert = await issuer.issue({
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
  assert.deepEqual(await ca().revocation.revoke({ serial: stolen.serial }, 'stolen laptop', 'test'), { revoked: [stolen.serial], ended_grants: [] });
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
  const was = headerOf(readFileSync(path.join(target, 'ca.pub'), 'utf8')).version;
  const next: Signer = caSigner('ed25519');
  const bothByOld = listDoc([publicKeyLine(ca().signer, 'jit-ssh-ca'), publicKeyLine(next, 'jit-ssh-ca-next')], 101);
  const bothByNew = listDoc([publicKeyLine(next, 'jit-ssh-ca-next'), publicKeyLine(ca().signer, 'jit-ssh-ca')], 102);
  // Step 2 of a rotation: the new key signs the list and the KRL.
  const signedByNew = await craftedCa({ ...servedList(bothByNew, next), ...krlSignedBy(next) });
  // Too early: this server does not trust the new key yet.
  await assertRefused(target, signedByNew, /ca\.pub: its signature does not verify with a key of .*\/ca\.pub; nothing changed/);

  // Step 1: the old key announces the new one.
  const res = await refresh(await craftedCa(servedList(bothByOld)), target);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `jit-ssh-refresh: ${target}/ca.pub updated: 2 CA keys, version 101 (was ${was})\n`);
  assert.equal(readFileSync(path.join(target, 'ca.pub'), 'utf8'), bothByOld);
  assert.equal(statSync(path.join(target, 'ca.pub')).mode & 0o777, 0o644);

  // Now step 2 is accepted.
  const res2 = await refresh(signedByNew, target);
  assert.equal(res2.code, 0, res2.stderr);
  assert.equal(res2.stdout, `jit-ssh-refresh: ${target}/ca.pub updated: 2 CA keys, version 102 (was 101)\n`);
  assert.equal(readFileSync(path.join(target, 'ca.pub'), 'utf8'), bothByNew);
});

test('fail: the step-2 list of a rotation replayed after the rotation finished: refused, the retired key stays untrusted', async () => {
  const target = await installedDir();
  const old = ca().signer;
  const next: Signer = caSigner('ed25519');
  const [oldLine, nextLine] = [publicKeyLine(old, 'jit-ssh-ca'), publicKeyLine(next, 'jit-ssh-ca-next')];
  const step2 = listDoc([nextLine, oldLine], 202);
  const step2Sig = await sshsign(next, CA_KEYS_NAMESPACE, Buffer.from(step2));
  // The three steps, as the CA publishes them; the server follows.
  for (const [list, signer] of [[listDoc([oldLine, nextLine], 201), old], [step2, next], [listDoc([nextLine], 203, { retired: [oldLine] }), next]] as const) {
    const res = await refresh(await craftedCa({ ...servedList(list, signer), ...krlSignedBy(next) }), target);
    assert.equal(res.code, 0, res.stderr);
  }
  assert.deepEqual(readFileSync(path.join(target, 'ca.pub'), 'utf8').split('\n').slice(1), [nextLine, `# retired ${oldLine.split(' ').slice(0, 2).join(' ')}`, '']);
  assert.ok(stateOf(target).includes(`retired ${oldLine.split(' ').slice(0, 2).join(' ')}`), 'the state remembers the retired key');

  // The step-2 list with the signature the new key really made: refused, by what it holds.
  const retiredRefusal = new RegExp(`/v1/ca\\.pub lists the CA key ${escapeRe(old.fingerprint)}, which was retired: a retired key is never trusted again; nothing changed`);
  await assertRefused(target, await craftedCa({ '/v1/ca.pub': step2, '/v1/ca.pub.sig': step2Sig, ...krlSignedBy(next) }), retiredRefusal);
  // Signed again with a higher version (an instance still configured for step 2): refused all the same.
  await assertRefused(target, await craftedCa({ ...servedList(listDoc([nextLine, oldLine], 204), next), ...krlSignedBy(next) }), retiredRefusal);

  // sshd with the installed files refuses a certificate of the retired key and admits one of the new key.
  const keyDir = mkdtempSync(path.join(dir, 'keys-'));
  const byOld = await issueCertificate(keyDir, 'by-old');
  const byNext = await issueCertificate(keyDir, 'by-next', next);
  const sshd = await startSshd({ caKeys: readFileSync(path.join(target, 'ca.pub'), 'utf8').trim().split('\n'), revokedKeys: path.join(target, 'revoked.krl') });
  const login = (c: Issued) => trySsh({ port: sshd.port, keyPath: c.key.path, certPath: c.path, user: USER, command: 'echo inside' });
  const refused = await login(byOld);
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  const admitted = await login(byNext);
  assert.equal(admitted.code, 0, admitted.stderr);
  assert.equal(admitted.stdout, 'inside\n');
});

test('fail: an older CA key list replayed, its keys all still trusted: refused by its version', async () => {
  const target = await installedDir();
  const next: Signer = caSigner('ed25519');
  const lines = [publicKeyLine(ca().signer, 'jit-ssh-ca'), publicKeyLine(next, 'jit-ssh-ca-next')];
  const step1 = listDoc(lines, 301);
  const step1Sig = await sshsign(ca().signer, CA_KEYS_NAMESPACE, Buffer.from(step1));
  assert.equal((await refresh(await craftedCa({ '/v1/ca.pub': step1, '/v1/ca.pub.sig': step1Sig }), target)).code, 0);
  assert.equal((await refresh(await craftedCa(servedList(listDoc([lines[0]!], 302))), target)).code, 0);
  await assertRefused(target, await craftedCa({ '/v1/ca.pub': step1, '/v1/ca.pub.sig': step1Sig }), /\/v1\/ca\.pub has version 301, lower than the version 302 this server holds \(a replay of an older one\?\); nothing changed/);
});

test('ok/fail: the same CA key list version: signed later is a re-signing, installed quietly; signed earlier or with other keys is refused', async () => {
  const target = await installedDir();
  const lines = [publicKeyLine(ca().signer, 'jit-ssh-ca')];
  const earlier = listDoc(lines, 401, { ageSeconds: 600 });
  assert.equal((await refresh(await craftedCa(servedList(earlier)), target)).code, 0);
  const later = listDoc(lines, 401, { ageSeconds: 60 });
  assert.deepEqual(await refresh(await craftedCa(servedList(later)), target), { code: 0, stdout: '', stderr: '' });
  assert.equal(readFileSync(path.join(target, 'ca.pub'), 'utf8'), later);
  assert.ok(stateOf(target).includes(`ca_signed ${headerOf(later).signedAt}`));
  // The same document again: nothing to do.
  assert.deepEqual(await refresh(await craftedCa(servedList(later)), target), { code: 0, stdout: '', stderr: '' });
  await assertRefused(target, await craftedCa(servedList(earlier)), /\/v1\/ca\.pub is version 401 signed at \d+, earlier than the signing at \d+ this server holds \(a replay\?\); nothing changed/);
  const other = listDoc([...lines, publicKeyLine(caSigner('ed25519'), 'other')], 401);
  await assertRefused(target, await craftedCa(servedList(other)), /\/v1\/ca\.pub has the version 401 this server holds, with a different content; nothing changed/);
});

test('fail: a CA key list without a signed version, or signed far ahead of the server clock', async () => {
  const target = await installedDir();
  // A list as CAs signed them before lists had versions: correctly signed, but it could be any old one.
  await assertRefused(target, await craftedCa(servedList(caPubText())), /\/v1\/ca\.pub has no signed version and signing time \(a list from before they were signed\?\); nothing changed/);
  const ahead = listDoc([publicKeyLine(ca().signer, 'jit-ssh-ca')], 501, { ageSeconds: -3600 });
  await assertRefused(target, await craftedCa(servedList(ahead)), /\/v1\/ca\.pub was signed at \d+, more than 300 s ahead of this server's clock \(\d+\); nothing changed/);
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
  await assertRefused(target, real, /\/v1\/krl has version \d+, lower than the version 1000 this server holds \(a replay of an older one\?\); nothing changed/);
  // The same KRL again, same version: accepted, and quiet since nothing changed.
  assert.deepEqual(await refresh(ahead, target), { code: 0, stdout: '', stderr: '' });
});

test('fail: an older KRL of the CA replayed after a revocation: refused, the revocation stays', async () => {
  const target = await installedDir();
  // What an attacker records before the revocation: a KRL and the signature the CA made over it.
  const recorded = await ca().revocation.krl();
  const keyDir = mkdtempSync(path.join(dir, 'keys-'));
  const stolen = await issueCertificate(keyDir, 'stolen-again');
  await ca().revocation.revoke({ serial: stolen.serial }, 'stolen laptop', 'test');
  const res = await refresh(ca().url, target);
  assert.equal(res.code, 0, res.stderr);
  const current = krlVersion(path.join(target, 'revoked.krl'));
  assert.ok(current > Number(recorded.version));
  await assertRefused(
    target,
    await craftedCa({ '/v1/krl': recorded.krl, '/v1/krl.sig': recorded.signature }),
    new RegExp(`/v1/krl has version ${recorded.version}, lower than the version ${current} this server holds \\(a replay of an older one\\?\\); nothing changed`),
  );
  assert.equal((await runCommand('ssh-keygen', ['-Q', '-f', path.join(target, 'revoked.krl'), stolen.path])).code, 1, 'still revoked');
});

test('ok/fail: the same KRL version: signed later is a re-signing, installed quietly; signed earlier or with other content is refused', async () => {
  const target = await installedDir();
  const res = await refresh(await craftedCa(agedKrl(1500n, 600)), target);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /revoked\.krl updated: KRL version 1500 \(was \d+\)\n$/);
  const later = agedKrl(1500n, 60);
  assert.deepEqual(await refresh(await craftedCa(later), target), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(readFileSync(path.join(target, 'revoked.krl')), later['/v1/krl']);
  assert.ok(stateOf(target).includes(`krl_signed ${Number((later['/v1/krl'] as Buffer).readBigUInt64BE(20))}`));
  await assertRefused(target, await craftedCa(agedKrl(1500n, 600)), /\/v1\/krl is version 1500 signed at \d+, earlier than the signing at \d+ this server holds \(a replay\?\); nothing changed/);
  // Version 1500 again, signed later, but revoking something: not the KRL this server holds.
  const other = encodeKrl({ version: 1500n, generatedAt: new Date(), comment: 'jit-ssh', revoked: [{ caKeyBlob: ca().signer.publicKeyBlob, serials: [123456789n] }] });
  await assertRefused(target, await craftedCa({ '/v1/krl': other, '/v1/krl.sig': () => sshsign(ca().signer, KRL_NAMESPACE, other) }), /\/v1\/krl has the version 1500 this server holds, with a different content; nothing changed/);
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
  const url = await craftedCa(servedList(listDoc([publicKeyLine(caSigner('ed25519'), 'jit-ssh-ca-next')], 1001)));
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
    const list = listDoc([caPubText().trim(), extra], 1001);
    const url = await craftedCa(servedList(list));
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
  assert.match(res.stdout, /^jit-ssh-refresh: .*\/ca\.pub updated: 1 CA keys, version \d+ \(was none\)\njit-ssh-refresh: .*\/revoked\.krl updated: KRL version \d+ \(was none\)\n$/);
  assert.deepEqual(readFileSync(path.join(target, 'revoked.krl')).subarray(28), (await upstream('/v1/krl')).subarray(28));

  const before = snapshot(target);
  const failing = await refresh(await craftedCa({ '/v1/krl': { status: 500 } }), target, env);
  assert.equal(failing.code, 1);
  assert.match(failing.stderr, /^jit-ssh-refresh: cannot download http:\/\/127\.0\.0\.1:\d+\/v1\/krl: wget failed\n$/);
  assert.deepEqual(snapshot(target), before);
});

test('warn: a KRL served with an old signing time is never installed: past the maximum age, a line saying so and exit 3', async () => {
  const target = await installedDir();
  const held = krlVersion(path.join(target, 'revoked.krl'));
  const frozen = await craftedCa(agedKrl(1000n, 7200));
  const env = cleanEnv({ JIT_SSH_REFRESH_MAX_AGE: '1800' });
  for (let run = 0; run < 2; run++) {
    const res = await refresh(frozen, target, env);
    assert.equal(res.code, 3, `run ${run}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, /^jit-ssh-refresh: http:\/\/127\.0\.0\.1:\d+\/v1\/krl was signed 72\d\d s ago, more than JIT_SSH_REFRESH_MAX_AGE=1800 s: an old document is never installed \(a replay, or a stuck CA\?\); nothing changed\n$/);
    assert.equal(krlVersion(path.join(target, 'revoked.krl')), held, 'the KRL held stays');
  }
  // A current signing of it is installed.
  const current = await refresh(await craftedCa(agedKrl(1000n, 0)), target, env);
  assert.equal(current.code, 0, current.stderr);
  assert.match(current.stdout, /revoked\.krl updated: KRL version 1000/);
});

test("fail: a first run with nothing held refuses a rotation's old list replayed to it: the retired key is not trusted", async () => {
  const next: Signer = caSigner('ed25519');
  // The server was set up with the new key alone (jit-ssh-ca ca pubkey prints no retired lines).
  const target = serverDir(publicKeyLine(next, 'jit-ssh-ca') + '\n');
  // The list of the rotation's second step, signed by the new key a month ago, still naming the old one.
  const replay = listDoc([publicKeyLine(next, 'jit-ssh-ca'), publicKeyLine(ca().signer, 'jit-ssh-ca-old')], 5, { ageSeconds: 30 * 86400 });
  const before = snapshot(target);
  const res = await refresh(await craftedCa({ ...servedList(replay, next), ...agedKrl(9n, 0, next) }), target);
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(res.stderr, /\/v1\/ca\.pub was signed 2592\d\d\d s ago, more than JIT_SSH_REFRESH_MAX_AGE=1800 s: an old document is never installed/);
  assert.deepEqual(snapshot(target), before);
  assert.doesNotMatch(readFileSync(path.join(target, 'ca.pub'), 'utf8'), new RegExp(publicKeyLine(ca().signer, 'x').split(' ')[1]!.replace(/[+/]/g, '\\$&')));
});

test('warn: the CA unreachable while what the server holds grows old: the error, a warning per document, exit 3', async () => {
  const target = serverDir();
  const lines = [publicKeyLine(ca().signer, 'jit-ssh-ca')];
  // The last documents this server got were signed an hour ago.
  const res = await refresh(await craftedCa({ ...servedList(listDoc(lines, 601, { ageSeconds: 3600 })), ...agedKrl(1600n, 3600) }), target, cleanEnv({ JIT_SSH_REFRESH_MAX_AGE: '7200' }));
  assert.equal(res.code, 0, res.stderr);
  const closed = await new Promise<string>((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
  const before = snapshot(target);
  // Within the maximum age: a plain failure.
  const early = await refresh(closed, target, cleanEnv({ JIT_SSH_REFRESH_MAX_AGE: '7200' }));
  assert.equal(early.code, 1);
  assert.match(early.stderr, /^jit-ssh-refresh: cannot download [^\n]*\n$/);
  // Past it (the default, 1800 s): the same error, then the warnings, and exit 3 for monitoring.
  const late = await refresh(closed, target);
  assert.equal(late.code, 3);
  const lines2 = late.stderr.split('\n');
  assert.equal(lines2.length, 4, late.stderr);
  assert.match(lines2[0]!, /^jit-ssh-refresh: cannot download http:\/\/127\.0\.0\.1:\d+\/v1\/ca\.pub: curl: \(7\)/);
  assert.match(lines2[1]!, /^jit-ssh-refresh: warning: .*\/ca\.pub was signed 36\d\d s ago, more than JIT_SSH_REFRESH_MAX_AGE=1800 s: the CA is unreachable or serves an old list$/);
  assert.match(lines2[2]!, /^jit-ssh-refresh: warning: .*\/revoked\.krl was signed 36\d\d s ago, more than JIT_SSH_REFRESH_MAX_AGE=1800 s/);
  assert.deepEqual(snapshot(target), before);
  for (const bad of ['0', '30m', '-5', '']) {
    const r = await refresh(ca().url, target, cleanEnv({ JIT_SSH_REFRESH_MAX_AGE: bad }));
    if (bad === '') {
      assert.equal(r.code, 3, 'empty means the default');
      continue;
    }
    assert.equal(r.code, 1, bad);
    assert.equal(r.stderr, `jit-ssh-refresh: JIT_SSH_REFRESH_MAX_AGE must be a positive number of seconds: ${bad}\n`);
  }
});

test('ok: the state file survives between runs: with ca.pub reinstalled by hand, an older list is still refused', async () => {
  const target = serverDir();
  const lines = [publicKeyLine(ca().signer, 'jit-ssh-ca')];
  const v700 = servedList(listDoc(lines, 700));
  assert.equal((await refresh(await craftedCa(v700), target)).code, 0);
  assert.equal((await refresh(await craftedCa({ ...servedList(listDoc(lines, 701)), ...agedKrl(1701n, 0) }), target)).code, 0);
  const held = stateOf(target);
  assert.ok(held.includes('ca_version 701') && held.includes('krl_version 1701'), held.join(', '));
  // The operator reinstalls ca.pub from `jit-ssh-ca ca pubkey` (no header): the state still knows 701.
  writeFileSync(path.join(target, 'ca.pub'), caPubText());
  await assertRefused(target, await craftedCa(v700), /\/v1\/ca\.pub has version 700, lower than the version 701 this server holds/);
  assert.deepEqual(stateOf(target), held);
});

test('ok: without the state file, the signed headers of the installed files still hold the line; the next good run writes it again', async () => {
  const target = serverDir();
  const lines = [publicKeyLine(ca().signer, 'jit-ssh-ca')];
  assert.equal((await refresh(await craftedCa({ ...servedList(listDoc(lines, 801)), ...agedKrl(1801n, 0) }), target)).code, 0);
  const held = stateOf(target);
  // Lost (or a run cut short after installing the files, before the state).
  rmSync(path.join(target, STATE));
  await assertRefused(target, await craftedCa({ ...servedList(listDoc(lines, 800)), ...agedKrl(1801n, 0) }), /\/v1\/ca\.pub has version 800, lower than the version 801/);
  await assertRefused(target, await craftedCa({ ...servedList(listDoc(lines, 801)), ...agedKrl(1800n, 0) }), /\/v1\/krl has version 1800, lower than the version 1801/);
  const res = await refresh(await craftedCa({ ...servedList(listDoc(lines, 801)), ...agedKrl(1801n, 0) }), target);
  assert.deepEqual([res.code, res.stdout, res.stderr], [0, '', '']);
  const versions = (entries: string[]) => entries.filter((l) => !/_signed /.test(l));
  assert.deepEqual(versions(stateOf(target)), versions(held));
});

test('fail: a damaged state file is refused with one line, nothing changed', async () => {
  const target = await installedDir();
  const file = path.join(target, STATE);
  writeFileSync(file, readFileSync(file, 'utf8') + 'ca_version twelve\n');
  await assertRefused(target, ca().url, /\/jit-ssh-refresh\.state is damaged at line \d+: restore it, or remove it to start again from the installed files$/m);
});

test('fail: a key the installed ca.pub names as retired (server-setup writes them) is never trusted', async () => {
  const gone = caSigner('ed25519');
  const target = serverDir(caKeysBody([publicKeyLine(ca().signer, 'jit-ssh-ca')], [publicKeyLine(gone, 'gone')]));
  const list = listDoc([publicKeyLine(ca().signer, 'jit-ssh-ca'), publicKeyLine(gone, 'back')], 901);
  await assertRefused(target, await craftedCa(servedList(list)), new RegExp(`lists the CA key ${escapeRe(gone.fingerprint)}, which was retired`));
  assert.deepEqual(readdirSync(target), ['ca.pub']);
});
