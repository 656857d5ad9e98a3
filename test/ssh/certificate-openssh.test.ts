// Certificates we mint, read back by OpenSSH's own ssh-keygen -L (which parses
// the certificate and verifies the CA signature before printing anything) and
// by our strict parser, for every CA kind × every user key type.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { mintCertificate, type CertificateSpec, type MintedCertificate } from '../../src/ssh/certificate.js';
import { sshFingerprint } from '../../src/ssh/pubkey.js';
import type { Signer } from '../../src/ssh/signer.js';
import { CA_INFO, CERT_TYPE, fullSpec, makeUserKey, SORTED_EXTENSIONS, USER_KEY_KINDS, type TestUserKey, type UserKeyKind } from '../helpers/certs.js';
import { CA_KINDS, caSigner, tempDir, type CaKind } from '../helpers/keys.js';
import { listCertificate, type Listing } from '../helpers/keygen-list.js';

const dir = tempDir();

// RSA CA key generation is slow: one signer per kind for the whole file.
const signers = new Map<CaKind, Signer>(CA_KINDS.map((kind) => [kind, caSigner(kind)]));
const USER_KINDS: UserKeyKind[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048', 'rsa-3072', 'sk-ed25519', 'sk-ecdsa'];
const userKeys = new Map<UserKeyKind, TestUserKey>(USER_KINDS.map((kind) => [kind, makeUserKey(dir, kind)]));

/** What ssh-keygen -L prints for the certified key (sshkey_type() of the certificate). */
const CERT_LABEL: Record<UserKeyKind, string> = {
  ed25519: 'ED25519-CERT',
  'ecdsa-256': 'ECDSA-CERT',
  'ecdsa-384': 'ECDSA-CERT',
  'ecdsa-521': 'ECDSA-CERT',
  'rsa-2048': 'RSA-CERT',
  'rsa-3072': 'RSA-CERT',
  'rsa-4096': 'RSA-CERT',
  'sk-ed25519': 'ED25519-SK-CERT',
  'sk-ecdsa': 'ECDSA-SK-CERT',
};

let fileCount = 0;
function writeCert(cert: MintedCertificate): string {
  const file = path.join(dir, `c${++fileCount}-cert.pub`);
  writeFileSync(file, `${cert.text} test-comment\n`);
  return file;
}

/** How ssh-keygen prints a time: local time, YYYY-MM-DDTHH:MM:SS, for a zone `offsetSeconds` east of UTC. */
function keygenTime(unixSeconds: number, offsetSeconds = 0): string {
  return new Date((unixSeconds + offsetSeconds) * 1000).toISOString().slice(0, 19);
}

function expectedListing(ca: CaKind, signer: Signer, user: TestUserKey, spec: CertificateSpec): Listing {
  return {
    Type: `${CERT_TYPE[user.key.type]} user certificate`,
    'Public key': `${CERT_LABEL[user.kind]} ${user.key.fingerprint}`,
    'Signing CA': `${CA_INFO[ca].label} ${signer.fingerprint} (using ${CA_INFO[ca].signatureAlgorithm})`,
    'Key ID': JSON.stringify(spec.keyId),
    Serial: spec.serial.toString(10),
    Valid: `from ${keygenTime(spec.validAfter)} to ${keygenTime(spec.validBefore)}`,
    Principals: [...spec.principals],
    'Critical Options': ['force-command uptime', 'source-address 10.0.0.0/8,127.0.0.1/32'],
    Extensions: SORTED_EXTENSIONS,
  };
}

for (const ca of CA_KINDS) {
  for (const kind of USER_KINDS) {
    test(`ok: ${ca} CA, ${kind} user key: ssh-keygen -L and the strict parser read back every field`, async () => {
      const signer = signers.get(ca)!;
      const user = userKeys.get(kind)!;
      assert.equal(user.key.type, USER_KEY_KINDS[kind].type);
      const spec = fullSpec(user.key);
      assert.ok(spec.serial >= 1n << 62n);
      const cert = await mintCertificate(signer, spec);
      assert.equal(cert.type, CERT_TYPE[user.key.type]);

      assert.deepEqual(listCertificate(writeCert(cert)), expectedListing(ca, signer, user, spec));

      const parsed = parseCertificate(cert.blob);
      assert.equal(parsed.signatureValid, true);
      assert.equal(parsed.signatureAlgorithm, CA_INFO[ca].signatureAlgorithm);
      assert.equal(parsed.type, cert.type);
      assert.deepEqual(parsed.publicKeyBlob, user.key.blob);
      assert.deepEqual(parsed.signatureKey, signer.publicKeyBlob);
      assert.equal(parsed.certType, 1);
      assert.equal(parsed.serial, spec.serial);
      assert.equal(parsed.keyId, spec.keyId);
      assert.deepEqual(parsed.principals, ['deploy', 'web']);
      assert.equal(parsed.validAfter, BigInt(spec.validAfter));
      assert.equal(parsed.validBefore, BigInt(spec.validBefore));
      assert.deepEqual([...parsed.criticalOptions], [
        ['force-command', 'uptime'],
        ['source-address', '10.0.0.0/8,127.0.0.1/32'],
      ]);
      assert.deepEqual([...parsed.extensions.keys()], SORTED_EXTENSIONS);
      assert.equal(parsed.nonce.length, 32);
    });
  }
}

test('ok: the largest and smallest allowed serials print exactly', async () => {
  const signer = signers.get('ed25519')!;
  const user = userKeys.get('ed25519')!;
  for (const serial of [2n, (1n << 53n) + 1n, (1n << 63n) + 1n, (1n << 64n) - 1n]) {
    const cert = await mintCertificate(signer, fullSpec(user.key, { serial }));
    assert.equal(listCertificate(writeCert(cert)).Serial, serial.toString(10));
    assert.equal(parseCertificate(cert.blob).serial, serial);
  }
});

test('ok: validity is printed in local time, both ends', async () => {
  const signer = signers.get('ecdsa-p256')!;
  const user = userKeys.get('ed25519')!;
  // Across a day boundary: 2026-12-31T22:00:00Z to 2027-01-01T01:30:00Z.
  const spec = fullSpec(user.key, { validAfter: 1_798_754_400, validBefore: 1_798_767_000 });
  const file = writeCert(await mintCertificate(signer, spec));
  assert.equal(listCertificate(file).Valid, 'from 2026-12-31T22:00:00 to 2027-01-01T01:30:00');
  // A POSIX TZ string (no tzdata needed): 5h30 east of UTC.
  const ist = 5 * 3600 + 30 * 60;
  assert.equal(listCertificate(file, 'IST-5:30').Valid, `from ${keygenTime(spec.validAfter, ist)} to ${keygenTime(spec.validBefore, ist)}`);
  assert.equal(listCertificate(file, 'IST-5:30').Valid, 'from 2027-01-01T03:30:00 to 2027-01-01T07:00:00');
});

test('ok: a single flag option and a single extension are listed alone', async () => {
  const signer = signers.get('ed25519')!;
  const user = userKeys.get('sk-ed25519')!;
  const spec = fullSpec(user.key, { principals: ['ops'], extensions: ['permit-pty'], criticalOptions: { 'verify-required': '' } });
  const listing = listCertificate(writeCert(await mintCertificate(signer, spec)));
  assert.deepEqual(listing.Principals, ['ops']);
  assert.deepEqual(listing['Critical Options'], ['verify-required']);
  assert.deepEqual(listing.Extensions, ['permit-pty']);
});

test('fail (control): ssh-keygen -L refuses a certificate whose body no longer matches its signature', async () => {
  for (const ca of CA_KINDS) {
    const signer = signers.get(ca)!;
    const user = userKeys.get('ed25519')!;
    const cert = await mintCertificate(signer, fullSpec(user.key));
    const blob = Buffer.from(cert.blob);
    // The last byte of the key ID ("...example.com"): changes what was signed, not the structure.
    const at = blob.indexOf(Buffer.from('example.com')) + 'example.co'.length;
    blob[at] = 'n'.charCodeAt(0);
    const file = path.join(dir, `tampered-${ca}-cert.pub`);
    writeFileSync(file, `${cert.type} ${blob.toString('base64')}\n`);
    const res = spawnSync('ssh-keygen', ['-L', '-f', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    assert.notEqual(res.status, 0, `${ca}: ssh-keygen accepted a tampered certificate`);
    assert.equal(parseCertificate(blob).signatureValid, false, ca);
    assert.equal(parseCertificate(blob).keyId, 'grant-42 alice@example.con', ca);
  }
});

test('ok: the public key fingerprint ssh-keygen prints is the certified key, not the CA', async () => {
  const signer = signers.get('rsa-3072')!;
  const user = userKeys.get('ecdsa-521')!;
  const listing = listCertificate(writeCert(await mintCertificate(signer, fullSpec(user.key))));
  assert.equal(listing['Public key'], `ECDSA-CERT ${sshFingerprint(user.key.blob)}`);
  assert.notEqual(user.key.fingerprint, signer.fingerprint);
});
