// The check every minted certificate passes before it is logged: parsed back,
// its signature verified against the CA key, and each field equal to the spec.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintCertificate, type CertificateSpec } from '../../src/ssh/certificate.js';
import { certificateChecker } from '../../src/ssh/certificate-verify.js';
import { signsInProcess, type Signer } from '../../src/ssh/signer.js';
import { fullSpec, makeUserKey } from '../helpers/certs.js';
import { CA_KINDS, caSigner, tempDir } from '../helpers/keys.js';

const dir = tempDir();
const user = makeUserKey(dir, 'ed25519');
const other = makeUserKey(dir, 'ecdsa-256');
const signer = caSigner('ed25519');
const check = certificateChecker(signer.publicKeyBlob);

/** The certificate line with the byte at `at` (from the end when negative) flipped. */
function flipped(text: string, at: number): string {
  const [type, b64] = text.split(' ') as [string, string];
  const blob = Buffer.from(b64, 'base64');
  const i = at < 0 ? blob.length + at : at;
  blob[i] = blob[i]! ^ 0x01;
  return `${type} ${blob.toString('base64')}`;
}

test('ok: a certificate exactly as specified passes, for every CA key type', async () => {
  for (const kind of CA_KINDS) {
    const ca = caSigner(kind);
    const spec = fullSpec(user.key);
    const cert = await mintCertificate(ca, spec);
    assert.equal(await certificateChecker(ca.publicKeyBlob)(cert.text, spec), null, kind);
  }
});

test('fail: each field that differs from the spec is named', async () => {
  const spec = fullSpec(user.key);
  const cert = await mintCertificate(signer, spec);
  const cases: Array<[string, Partial<CertificateSpec>, RegExp]> = [
    ['another key', { publicKey: other.key }, /line is not|another key/],
    ['another serial', { serial: spec.serial + 1n }, /^serial /],
    ['another key ID', { keyId: 'grant-43 alice@example.com' }, /^key ID /],
    ['another principal', { principals: ['deploy', 'root'] }, /^principals /],
    ['one principal fewer', { principals: ['deploy'] }, /^principals /],
    ['principals in another order', { principals: ['web', 'deploy'] }, /^principals /],
    ['an earlier start', { validAfter: spec.validAfter - 1 }, /^window /],
    ['a later end', { validBefore: spec.validBefore + 1 }, /^window /],
    ['no source-address', { criticalOptions: { 'force-command': 'uptime' } }, /critical options/],
    ['another command', { criticalOptions: { 'source-address': '10.0.0.0/8,127.0.0.1/32', 'force-command': 'id' } }, /critical options/],
    ['an option more', { criticalOptions: { ...spec.criticalOptions, 'verify-required': '' } }, /critical options/],
    ['an extension fewer', { extensions: ['permit-pty'] }, /extensions/],
    ['an extension more', { extensions: [...spec.extensions, 'permit-user-rc'] }, /extensions/],
  ];
  for (const [label, overrides, why] of cases) {
    assert.match((await check(cert.text, { ...spec, ...overrides })) ?? 'passed', why, label);
  }
});

test('fail: damaged bytes, a foreign CA and a lying signer are caught', async () => {
  const spec = fullSpec(user.key);
  const cert = await mintCertificate(signer, spec);
  const otherCa = caSigner('ed25519');
  // Signs with one key and names another: the certificate's signature key is the CA's, its signature is not.
  const impostor: Signer = { ...signer, sign: (data) => otherCa.sign(data) };
  const forged = await mintCertificate(impostor, spec);
  const cases: Array<[string, string, RegExp]> = [
    ['the last byte of the signature', flipped(cert.text, -1), /signature does not verify/],
    ['a byte of the nonce', flipped(cert.text, 40), /signature does not verify/],
    ['a length field', flipped(cert.text, 3), /does not parse/],
    ['another type on the line', cert.text.replace(/^ssh-ed25519-cert/, 'ssh-rsa-cert'), /line is not/],
    ['a comment after it', `${cert.text} me@laptop`, /line is not/],
    ['no base64', cert.text.split(' ')[0]!, /line is not/],
    ['non-canonical base64', cert.text.replace(/=*$/, '') + '====', /canonical/],
    ['signed by another key', forged.text, /signature does not verify/],
  ];
  for (const [label, text, why] of cases) {
    assert.match((await check(text, spec)) ?? 'passed', why, label);
  }
  assert.match((await certificateChecker(otherCa.publicKeyBlob)(cert.text, spec)) ?? 'passed', /another CA key/, 'checked against another CA');
});

test('ok: only a signer createKeySigner made counts as signing in this process; a copy or a wrapper does not', () => {
  assert.equal(signsInProcess(signer), true);
  assert.equal(signsInProcess({ ...signer }), false, 'a copy');
  assert.equal(signsInProcess({ ...signer, sign: (data) => signer.sign(data) }), false, 'a wrapper');
  assert.throws(() => ((signer as { sign: unknown }).sign = async () => Buffer.alloc(0)), TypeError, 'the signer cannot be changed in place');
});

test('ok/fail: without the signature check (a signer in this process) every field is still checked, the signature no longer', async () => {
  const spec = fullSpec(user.key);
  const cert = await mintCertificate(signer, spec);
  const fieldsOnly = certificateChecker(signer.publicKeyBlob, { signature: false });
  assert.equal(await fieldsOnly(cert.text, spec), null);
  assert.match((await fieldsOnly(cert.text, { ...spec, principals: ['admins'] })) ?? 'passed', /^principals /);
  assert.match((await fieldsOnly(cert.text, { ...spec, serial: spec.serial + 1n })) ?? 'passed', /serial/);
  assert.match((await fieldsOnly(flipped(cert.text, 3), spec)) ?? 'passed', /does not parse/);
  assert.match((await certificateChecker(caSigner('ed25519').publicKeyBlob, { signature: false })(cert.text, spec)) ?? 'passed', /another CA key/);
  // What the full check adds: a damaged signature.
  assert.equal(await fieldsOnly(flipped(cert.text, -1), spec), null);
  assert.match((await check(flipped(cert.text, -1), spec)) ?? 'passed', /signature does not verify/);
});
