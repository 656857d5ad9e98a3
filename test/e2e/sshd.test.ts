// Certificates we mint, used to log in to a real OpenSSH server: what sshd
// accepts and what it refuses (and why, from its log). One sshd serves the
// whole file; it trusts three CA keys, and every test gets a fresh user key so
// that no stale `<key>-cert.pub` from another test can be offered instead.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { mintCertificate, type CertificateSpec } from '../../src/ssh/certificate.js';
import { parseUserPublicKey } from '../../src/ssh/pubkey.js';
import { randomSerial } from '../../src/ssh/serial.js';
import { publicKeyLine, type Signer } from '../../src/ssh/signer.js';
import { caSigner, tempDir, userKey, type UserKeyFile } from '../helpers/keys.js';
import { trySsh, useSshd, type SshResult } from '../helpers/sshd.js';

// sshd compares principals with the login name; we log in as whoever runs the tests.
const USER = os.userInfo().username;
const dir = tempDir();
const ca = { ed25519: caSigner('ed25519'), rsa: caSigner('rsa-3072'), ecdsa: caSigner('ecdsa-p384') };
// Same kind as a trusted CA, so only its absence from TrustedUserCAKeys can explain a refusal.
const untrustedCa = caSigner('ed25519');

const sshd = useSshd({ caKeys: [ca.ed25519, ca.rsa, ca.ecdsa].map((s) => publicKeyLine(s)) });

let keys = 0;
function freshKey(type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519', bits?: number): UserKeyFile {
  return userKey(dir, type, bits, `user${++keys}-${type}`);
}

interface Issued {
  signer: Signer;
  spec: CertificateSpec;
  /** The user key's fingerprint, as sshd logs it for the certificate. */
  fingerprint: string;
  blob: Buffer;
  certPath: string;
}

/** Mints a certificate valid now for USER with permit-pty, and writes it where ssh looks for it. */
async function issue(signer: Signer, key: UserKeyFile, overrides: Partial<CertificateSpec> = {}): Promise<Issued> {
  const now = Math.floor(Date.now() / 1000);
  const publicKey = parseUserPublicKey(key.publicLine);
  const spec: CertificateSpec = {
    publicKey,
    serial: randomSerial(),
    keyId: `e2e-${keys}@jit-ssh.test`,
    principals: [USER],
    validAfter: now - 60,
    validBefore: now + 300,
    extensions: ['permit-pty'],
    criticalOptions: {},
    ...overrides,
  };
  const cert = await mintCertificate(signer, spec);
  const certPath = `${key.path}-cert.pub`;
  writeFileSync(certPath, cert.text + '\n', { mode: 0o600 });
  return { signer, spec, fingerprint: publicKey.fingerprint, blob: cert.blob, certPath };
}

interface Login extends SshResult {
  /** Where this attempt's part of the sshd log starts. */
  logFrom: number;
}

async function login(key: UserKeyFile, certPath: string, command = 'echo hello'): Promise<Login> {
  const logFrom = sshd().log().length;
  const res = await trySsh({ port: sshd().port, keyPath: key.path, certPath, user: USER, command });
  return { ...res, logFrom };
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** What sshd calls key types in its log (sshkey_type()). */
const LABEL: Record<string, string> = { 'ssh-ed25519': 'ED25519', 'ecdsa-sha2-nistp256': 'ECDSA', 'ecdsa-sha2-nistp384': 'ECDSA', 'ssh-rsa': 'RSA' };

/**
 * sshd's VERBOSE line for a login attempt with exactly this certificate: user
 * key, key ID, serial and CA. (Logging to stderr, sshd ends lines with CRLF.)
 */
function authLine(outcome: 'Accepted' | 'Failed', { signer, spec, fingerprint }: Issued): RegExp {
  return new RegExp(
    `${outcome} publickey for ${escape(USER)} from 127\\.0\\.0\\.1 port \\d+ ssh2: ` +
      `${LABEL[spec.publicKey.type]}-CERT ${escape(fingerprint)} ID ${escape(spec.keyId)} \\(serial ${spec.serial}\\) ` +
      `CA ${LABEL[signer.keyType]} ${escape(signer.fingerprint)}\\r?$`,
    'm',
  );
}

async function assertAccepted(res: Login, issued: Issued): Promise<void> {
  assert.equal(res.code, 0, `ssh failed: ${res.stderr}\nsshd log:\n${sshd().log().slice(res.logFrom)}`);
  await sshd().waitForLog(authLine('Accepted', issued), res.logFrom);
}

/** Asserts ssh was refused at authentication (not a network error), sshd logged every pattern, and accepted nothing. */
async function assertRefused(res: Login, ...patterns: RegExp[]): Promise<void> {
  assert.equal(res.code, 255, `ssh should have been refused; stdout: ${res.stdout} stderr: ${res.stderr}`);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, /Permission denied \(publickey\)/);
  for (const pattern of patterns) await sshd().waitForLog(pattern, res.logFrom);
  assert.doesNotMatch(sshd().log().slice(res.logFrom), /Accepted (publickey|certificate)/);
}

test('ok: an ed25519 CA certificate for the current user logs in and runs the command', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key);
  const res = await login(key, issued.certPath);
  await assertAccepted(res, issued);
  assert.equal(res.stdout, 'hello\n');
});

// The RSA CA signs with rsa-sha2-512; sshd's default CASignatureAlgorithms would refuse ssh-rsa (SHA-1).
for (const [name, signer, keyType, bits, algorithm] of [
  ['RSA-3072 CA (rsa-sha2-512), ecdsa user key', ca.rsa, 'ecdsa', undefined, 'rsa-sha2-512'],
  ['ECDSA P-384 CA, RSA-3072 user key', ca.ecdsa, 'rsa', 3072, 'ecdsa-sha2-nistp384'],
] as const) {
  test(`ok: ${name} logs in`, async () => {
    const key = freshKey(keyType, bits);
    const issued = await issue(signer, key);
    assert.equal(parseCertificate(issued.blob).signatureAlgorithm, algorithm);
    const res = await login(key, issued.certPath);
    await assertAccepted(res, issued);
    assert.equal(res.stdout, 'hello\n');
  });
}

test('fail: a certificate for another principal is refused', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key, { principals: ['someone-else'] });
  await assertRefused(await login(key, issued.certPath), /^Certificate invalid: name is not a listed principal\r?$/m, authLine('Failed', issued));
});

test('fail: an expired certificate is refused', async () => {
  const key = freshKey();
  const now = Math.floor(Date.now() / 1000);
  const issued = await issue(ca.ed25519, key, { validAfter: now - 3600, validBefore: now - 60 });
  await assertRefused(await login(key, issued.certPath), /^Certificate invalid: expired\r?$/m, authLine('Failed', issued));
});

test('fail: a certificate from a CA sshd does not trust is refused', async () => {
  const key = freshKey();
  const issued = await issue(untrustedCa, key);
  // sshd names the CA it did not find in TrustedUserCAKeys only at debug level; the failed line carries its fingerprint.
  await assertRefused(await login(key, issued.certPath), authLine('Failed', issued));
});

test('fail: a certificate with a flipped bit in its signature is refused', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key);
  const [type, b64] = readFileSync(issued.certPath, 'utf8').trim().split(' ') as [string, string];
  const blob = Buffer.from(b64, 'base64');
  // The blob ends with the signature (an ed25519 one is 64 bytes): 10 bytes from the end is inside it.
  blob[blob.length - 10]! ^= 0x01;
  writeFileSync(issued.certPath, `${type} ${blob.toString('base64')}\n`, { mode: 0o600 });
  // ssh checks the CA signature when it loads a certificate and does not offer a broken one, so sshd only
  // ever sees (and refuses) the bare key: no certificate may appear in its log.
  const res = await login(key, issued.certPath);
  await assertRefused(res, new RegExp(`Failed publickey for ${escape(USER)} .* ssh2: ED25519 ${escape(issued.fingerprint)}\\r?$`, 'm'));
  assert.doesNotMatch(sshd().log().slice(res.logFrom), /-CERT|certificate/i);
});

test('ok: force-command runs instead of the requested command', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key, { criticalOptions: { 'force-command': 'echo forced' } });
  const res = await login(key, issued.certPath, 'echo other');
  await assertAccepted(res, issued);
  assert.equal(res.stdout, 'forced\n');
});

test('fail: source-address that excludes 127.0.0.1 is refused', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key, { criticalOptions: { 'source-address': '10.9.9.9/32' } });
  await assertRefused(
    await login(key, issued.certPath),
    new RegExp(`Authentication tried for ${escape(USER)} with valid certificate but not from a permitted source address \\(127\\.0\\.0\\.1\\)`),
    authLine('Failed', issued),
  );
});

test('ok: source-address 127.0.0.1/32 is accepted from 127.0.0.1', async () => {
  const key = freshKey();
  const issued = await issue(ca.ed25519, key, { criticalOptions: { 'source-address': '127.0.0.1/32' } });
  const res = await login(key, issued.certPath);
  await assertAccepted(res, issued);
  assert.equal(res.stdout, 'hello\n');
});
