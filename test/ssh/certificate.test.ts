// Minting rules: what a certificate spec must satisfy, and how the body is
// laid out byte for byte (PROTOCOL.certkeys, plus the stricter rules of Go's
// x/crypto/ssh: options sorted by name in byte order, each once, valued data
// wrapped in a second string).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import {
  CertificateSpecError,
  certificateType,
  encodeCertificateBody,
  mintCertificate,
  validPrincipal,
  validSourceAddress,
  type CertificateSpec,
} from '../../src/ssh/certificate.js';
import type { Signer } from '../../src/ssh/signer.js';
import { SshReader, SshWriter } from '../../src/ssh/wire.js';
import { CERT_TYPE, fullSpec, makeUserKey } from '../helpers/certs.js';
import { caSigner, tempDir } from '../helpers/keys.js';

const dir = tempDir();
const signer = caSigner('ed25519');
const user = makeUserKey(dir, 'ed25519');

function spec(overrides: Partial<CertificateSpec> = {}): CertificateSpec {
  return fullSpec(user.key, overrides);
}

/** Asserts that encoding `s` is refused with exactly `message` (a string) or a message matching it. */
function refuses(s: CertificateSpec, message: string | RegExp, label = String(message)): void {
  assert.throws(
    () => encodeCertificateBody(s, signer.publicKeyBlob),
    (e: unknown) => {
      assert.ok(e instanceof CertificateSpecError, `${label}: threw ${String(e)}`);
      assert.equal(e.code, 'invalid_certificate');
      if (typeof message === 'string') assert.equal(e.message, message, label);
      else assert.match(e.message, message, label);
      return true;
    },
    label,
  );
}

/** The body's fields for an ed25519 user key, read with the wire reader. */
function fields(blob: Buffer) {
  const r = new SshReader(blob);
  const out = {
    type: r.text(),
    nonce: r.string(),
    key: r.string(),
    serial: r.uint64(),
    certType: r.uint32(),
    keyId: r.text(),
    principals: r.string(),
    validAfter: r.uint64(),
    validBefore: r.uint64(),
    critical: r.string(),
    extensions: r.string(),
    reserved: r.string(),
    signatureKey: r.string(),
    bodyEnd: r.offset,
    signature: r.string(),
  };
  r.end('certificate');
  return out;
}

/** The fields of an unsigned body (an empty signature is appended so the reader can run to the end). */
function bodyFields(body: Buffer) {
  return fields(Buffer.concat([body, new SshWriter().string('').toBuffer()]));
}

function names(tuples: Buffer): string[] {
  const r = new SshReader(tuples);
  const out: string[] = [];
  while (r.remaining > 0) {
    out.push(r.text());
    r.string();
  }
  return out;
}

// ---- Refusals ----

test('fail: serials 0 and 1, and anything outside 64 bits, are refused', () => {
  for (const serial of [0n, 1n, -1n, 1n << 64n]) {
    refuses(spec({ serial }), "serial must be in [2, 2^64): 0 cannot be revoked by serial and 1 is sshpk's default", `serial ${serial}`);
  }
});

test('ok: serial 2 and 2^64-1 are the bounds that are accepted', async () => {
  for (const serial of [2n, (1n << 64n) - 1n]) {
    const parsed = parseCertificate((await mintCertificate(signer, spec({ serial }))).blob);
    assert.equal(parsed.serial, serial);
    assert.equal(parsed.signatureValid, true);
  }
});

test('fail: a certificate without principals is refused', () => {
  refuses(spec({ principals: [] }), 'a certificate needs at least one principal (sshd refuses one without)');
});

const BAD_PRINCIPALS = [
  ['comma (sshd splits on it)', 'deploy,root'],
  ['lone comma', ','],
  ['space', 'deploy web'],
  ['leading space', ' deploy'],
  ['wildcard *', '*'],
  ['embedded *', 'dep*'],
  ['wildcard ?', 'dep?oy'],
  ['negation !', '!root'],
  ['newline', 'deploy\nroot'],
  ['trailing newline', 'deploy\n'],
  ['tab', 'deploy\t'],
  ['NUL', 'deploy\0'],
  ['empty', ''],
  ['leading -', '-deploy'],
  ['leading .', '.deploy'],
  ['leading @', '@deploy'],
  ['slash', 'a/b'],
  ['non-ASCII', 'dëploy'],
  ['257 characters', 'a'.repeat(257)],
] as const;

test('fail: principals sshd could misread are refused, each named in the message', () => {
  for (const [what, p] of BAD_PRINCIPALS) {
    assert.equal(validPrincipal(p), false, what);
    refuses(spec({ principals: ['deploy', p] }), `invalid principal ${JSON.stringify(p)}`, what);
  }
});

test('ok: ordinary user names, service accounts and email-style principals are accepted, in the order given', () => {
  const good = ['web', 'deploy', 'alice@example.com', 'svc_backup', 'a.b-c+d', '0ps', '_x', 'A'.repeat(256)];
  for (const p of good) assert.equal(validPrincipal(p), true, p);
  const f = bodyFields(encodeCertificateBody(spec({ principals: good }), signer.publicKeyBlob));
  const r = new SshReader(f.principals);
  const read: string[] = [];
  while (r.remaining > 0) read.push(r.text());
  assert.deepEqual(read, good);
});

test('fail: a principal given twice is refused', () => {
  refuses(spec({ principals: ['deploy', 'web', 'deploy'] }), 'duplicate principal');
});

test('fail: an extension given twice is refused, wherever the copies are', () => {
  refuses(spec({ extensions: ['permit-pty', 'permit-pty'] }), 'extension permit-pty given twice');
  refuses(spec({ extensions: ['permit-pty', 'permit-X11-forwarding', 'permit-pty'] }), 'extension permit-pty given twice');
  refuses(spec({ extensions: ['login@example.com', 'permit-pty', 'login@example.com'] }), 'extension login@example.com given twice');
});

test('fail: unknown extensions without a vendor domain are refused; vendor@domain ones are allowed', () => {
  for (const ext of ['permit-everything', 'permit-pty ', 'PERMIT-PTY', '', '@example.com', 'x@', 'a b@example.com']) {
    refuses(spec({ extensions: [ext] }), `unknown extension ${JSON.stringify(ext)}`, ext);
  }
  const f = bodyFields(encodeCertificateBody(spec({ extensions: ['login@github.com', 'permit-pty'] }), signer.publicKeyBlob));
  assert.deepEqual(names(f.extensions), ['login@github.com', 'permit-pty']);
});

test('fail: a critical option sshd does not know is refused (sshd would refuse the whole certificate)', () => {
  for (const name of ['no-pty', 'permit-pty', 'force-command ', 'Force-Command', 'source-address@example.com']) {
    refuses(spec({ criticalOptions: { [name]: 'x' } }), `unknown critical option ${JSON.stringify(name)}`, name);
  }
});

const BAD_SOURCE_ADDRESSES = [
  '10.0.0.0/33',
  '300.1.1.1',
  '1.2.3.256',
  'abc',
  '',
  '10.0.0.0/8,',
  ',10.0.0.0/8',
  '10.0.0.0/8, 127.0.0.1',
  '1.2.3.4/',
  '1.2.3.4/-1',
  '1.2.3.4/8/9',
  '1.2.3',
  '::1/129',
  'fe80::1%eth0',
  'example.com',
  '*',
];

test('fail: malformed source-address values are refused, each named in the message', () => {
  for (const value of BAD_SOURCE_ADDRESSES) {
    assert.equal(validSourceAddress(value), false, JSON.stringify(value));
    refuses(spec({ criticalOptions: { 'source-address': value } }), `invalid source-address ${JSON.stringify(value)}`, JSON.stringify(value));
  }
  assert.equal(validSourceAddress('10.0.0.0/8,'.repeat(400) + '10.0.0.0/8'), false, 'over 4096 characters');
});

test('ok: IPv4 and IPv6 addresses and CIDR blocks, alone or in a list, are accepted', () => {
  for (const value of ['10.0.0.0/8', '127.0.0.1', '127.0.0.1/32', '10.0.0.0/8,127.0.0.1/32', '0.0.0.0/0', '::1', '::1/128', '2001:db8::/32', '::/0', '::ffff:1.2.3.4', '192.168.1.0/24,2001:db8::/48']) {
    assert.equal(validSourceAddress(value), true, value);
    encodeCertificateBody(spec({ criticalOptions: { 'source-address': value } }), signer.publicKeyBlob);
  }
});

/** Whether OpenSSH itself (ssh-keygen -s -O source-address=...) accepts a source-address value. */
let opensshCa: string | undefined;
function opensshAcceptsSourceAddress(value: string): boolean {
  if (!opensshCa) {
    opensshCa = path.join(dir, 'openssh-ca');
    assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', opensshCa]).status, 0);
  }
  const res = spawnSync('ssh-keygen', ['-q', '-s', opensshCa, '-I', 'x', '-n', 'x', '-O', `source-address=${value}`, '-z', '5', user.pubFile], { encoding: 'utf8' });
  return res.status === 0;
}

// Values OpenSSH's own source-address parser (addr_match_cidr_list) refuses;
// sshd refuses a certificate carrying one at login.
const OPENSSH_REFUSES = ['10.0.0.1/8', '1.2.3.4/0', '2001:db8::1/32', ':::', 'a:b', '1:2:3:4:5:6:7:8:9'];

test('ok (control): OpenSSH accepts the source-address values we accept, and refuses the ones listed as refused', () => {
  for (const value of ['10.0.0.0/8,127.0.0.1/32', '0.0.0.0/0', '::1/128', '2001:db8::/32', '::ffff:1.2.3.4']) {
    assert.equal(opensshAcceptsSourceAddress(value), true, value);
  }
  for (const value of [...OPENSSH_REFUSES, '10.0.0.0/33', '300.1.1.1', 'abc', '10.0.0.0/8,', '::1/129']) {
    assert.equal(opensshAcceptsSourceAddress(value), false, value);
  }
});

test(
  'fail: source-address values OpenSSH refuses are refused (host bits set under the mask, malformed IPv6)',
  () => {
    for (const value of OPENSSH_REFUSES) {
      assert.equal(validSourceAddress(value), false, `validSourceAddress accepts ${JSON.stringify(value)}, which OpenSSH refuses`);
    }
  },
);

test(
  'fail: IPv4 octets with leading zeros are refused (glibc reads 010.0.0.1 as octal, 8.0.0.1)',
  () => {
    assert.equal(validSourceAddress('010.0.0.1'), false);
  },
);

test('fail: flag and valued critical options with the wrong kind of value are refused', () => {
  refuses(spec({ criticalOptions: { 'verify-required': 'yes' } }), 'verify-required takes no value');
  for (const cmd of ['', 'uptime\0rm -rf /', 'x'.repeat(4097)]) {
    refuses(spec({ criticalOptions: { 'force-command': cmd } }), 'force-command must be a non-empty command without NUL', JSON.stringify(cmd.slice(0, 20)));
  }
});

test('fail: valid_before not after valid_after is refused', () => {
  refuses(spec({ validAfter: 1_780_000_000, validBefore: 1_780_000_000 }), 'valid_before must be after valid_after', 'equal');
  refuses(spec({ validAfter: 1_780_000_000, validBefore: 1_779_999_999 }), 'valid_before must be after valid_after', 'before');
});

test('fail: validity times that are not whole non-negative Unix seconds are refused', () => {
  for (const [validAfter, validBefore] of [[1.5, 10], [0, 10.25], [-1, 10], [0, Number.MAX_SAFE_INTEGER + 2], [Number.NaN, 10]] as const) {
    refuses(spec({ validAfter, validBefore }), 'validity times must be whole Unix seconds', `${validAfter}..${validBefore}`);
  }
});

test('fail: an empty, over-long or control-character key ID is refused', () => {
  for (const keyId of ['', 'x'.repeat(513), 'grant\n42', 'grant\x7f', 'tab\there']) {
    refuses(spec({ keyId }), 'key ID must be 1-512 printable characters', JSON.stringify(keyId.slice(0, 20)));
  }
});

test('fail: mintCertificate refuses a bad spec before asking the signer to sign', async () => {
  let calls = 0;
  const spy: Signer = { ...signer, sign: (d) => (calls++, signer.sign(d)) };
  await assert.rejects(mintCertificate(spy, spec({ serial: 1n })), CertificateSpecError);
  await assert.rejects(mintCertificate(spy, spec({ principals: ['a,b'] })), /invalid principal "a,b"/);
  assert.equal(calls, 0);
  await mintCertificate(spy, spec());
  assert.equal(calls, 1);
});

// ---- Encoding ----

test('ok: the certificate is laid out as PROTOCOL.certkeys says, signed over everything before the signature', async () => {
  const s = spec({ serial: 0x0123_4567_89ab_cdefn });
  const cert = await mintCertificate(signer, s);
  assert.equal(cert.text, `ssh-ed25519-cert-v01@openssh.com ${cert.blob.toString('base64')}`);
  const f = fields(cert.blob);
  assert.equal(f.type, 'ssh-ed25519-cert-v01@openssh.com');
  assert.equal(f.nonce.length, 32);
  // The user's key fields, taken from its own blob (string "ssh-ed25519", string key).
  const ur = new SshReader(user.key.blob);
  ur.string();
  assert.deepEqual(f.key, ur.string());
  assert.equal(f.serial, 0x0123_4567_89ab_cdefn);
  assert.equal(f.certType, 1);
  assert.equal(f.keyId, s.keyId);
  assert.deepEqual(f.principals, new SshWriter().string('deploy').string('web').toBuffer());
  assert.equal(f.validAfter, BigInt(s.validAfter));
  assert.equal(f.validBefore, BigInt(s.validBefore));
  assert.equal(f.reserved.length, 0);
  assert.deepEqual(f.signatureKey, signer.publicKeyBlob);
  const sig = new SshReader(f.signature);
  assert.equal(sig.text(), 'ssh-ed25519');
  const body = cert.blob.subarray(0, f.bodyEnd);
  assert.deepEqual(body, encodeCertificateBody(s, signer.publicKeyBlob, f.nonce));
  assert.equal(parseCertificate(cert.blob).signatureValid, true);
});

test('ok: extensions come out in byte order whatever order they are given in', () => {
  const sorted = ['login@github.com', 'no-touch-required', 'permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'];
  const orders = [
    [...sorted].reverse(),
    ['permit-pty', 'permit-agent-forwarding', 'permit-X11-forwarding', 'permit-user-rc', 'login@github.com', 'no-touch-required', 'permit-port-forwarding'],
    sorted,
  ];
  for (const extensions of orders) {
    const body = encodeCertificateBody(spec({ extensions }), signer.publicKeyBlob);
    const f = bodyFields(body);
    assert.deepEqual(names(f.extensions), sorted, extensions.join(','));
    // Every extension is a flag: empty data.
    assert.deepEqual(f.extensions, Buffer.concat(sorted.map((e) => new SshWriter().string(e).string('').toBuffer())));
  }
});

test('ok: critical options come out in byte order, valued data wrapped in a second string, flags empty', () => {
  for (const criticalOptions of [
    { 'verify-required': '', 'source-address': '10.0.0.0/8', 'force-command': 'uptime' },
    { 'force-command': 'uptime', 'verify-required': '', 'source-address': '10.0.0.0/8' },
  ]) {
    const f = bodyFields(encodeCertificateBody(spec({ criticalOptions }), signer.publicKeyBlob));
    // force-command: uint32 10 (the data), uint32 6 (the value), "uptime".
    const expected = Buffer.concat([
      Buffer.from('0000000d', 'hex'), Buffer.from('force-command'),
      Buffer.from('0000000a', 'hex'), Buffer.from('00000006', 'hex'), Buffer.from('uptime'),
      Buffer.from('0000000e', 'hex'), Buffer.from('source-address'),
      Buffer.from('0000000e', 'hex'), Buffer.from('0000000a', 'hex'), Buffer.from('10.0.0.0/8'),
      Buffer.from('0000000f', 'hex'), Buffer.from('verify-required'),
      Buffer.from('00000000', 'hex'),
    ]);
    assert.deepEqual(f.critical, expected);
  }
});

test('ok: no critical options and no extensions encode as empty strings', () => {
  const f = bodyFields(encodeCertificateBody(spec({ criticalOptions: {}, extensions: [] }), signer.publicKeyBlob));
  assert.equal(f.critical.length, 0);
  assert.equal(f.extensions.length, 0);
});

test('ok: the nonce is 32 random bytes, different for every certificate', async () => {
  const s = spec();
  const a = await mintCertificate(signer, s);
  const b = await mintCertificate(signer, s);
  const na = fields(a.blob).nonce;
  const nb = fields(b.blob).nonce;
  assert.equal(na.length, 32);
  assert.notDeepEqual(na, nb);
  assert.notDeepEqual(na, Buffer.alloc(32));
  assert.notEqual(a.text, b.text);
  // Apart from the nonce (and the signature over it), the two bodies are the same.
  assert.deepEqual(encodeCertificateBody(s, signer.publicKeyBlob, na), a.blob.subarray(0, fields(a.blob).bodyEnd));
  assert.deepEqual(encodeCertificateBody(s, signer.publicKeyBlob, na).subarray(4 + 32 + 4 + 32), encodeCertificateBody(s, signer.publicKeyBlob, nb).subarray(4 + 32 + 4 + 32));
});

test('ok: serials up to 2^64-1 encode exactly as big-endian uint64', () => {
  const cases: Array<[bigint, string]> = [
    [2n, '0000000000000002'],
    [(1n << 53n) + 1n, '0020000000000001'],
    [(1n << 63n) - 1n, '7fffffffffffffff'],
    [1n << 63n, '8000000000000000'],
    [0xfedc_ba98_7654_3210n, 'fedcba9876543210'],
    [(1n << 64n) - 1n, 'ffffffffffffffff'],
  ];
  for (const [serial, hex] of cases) {
    const body = encodeCertificateBody(spec({ serial }), signer.publicKeyBlob, Buffer.alloc(32));
    // type string, nonce string, ed25519 key string, then the serial.
    const at = 4 + 'ssh-ed25519-cert-v01@openssh.com'.length + 4 + 32 + 4 + 32;
    assert.equal(body.subarray(at, at + 8).toString('hex'), hex, String(serial));
    assert.equal(bodyFields(body).serial, serial);
  }
});

test('ok: certificate type names follow OpenSSH for every key type', () => {
  for (const [keyType, certType] of Object.entries(CERT_TYPE)) assert.equal(certificateType(keyType), certType);
});
