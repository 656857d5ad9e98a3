// Vetting the user public keys certificates are issued for: what ssh-keygen
// makes is accepted with the type, size and fingerprint ssh-keygen reports, and
// every unacceptable input is refused with a message that says what is wrong.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { KeyError, parsePublicKeyBlob, parseUserPublicKey, sshFingerprint } from '../../src/ssh/pubkey.js';
import { SshReader, SshWriter } from '../../src/ssh/wire.js';
import { USER_KEY_KINDS, type UserKeyKind } from '../helpers/certs.js';
import { securityKeyLine, tempDir, userKey } from '../helpers/keys.js';

const dir = tempDir();

/** `ssh-keygen -l -E sha256 -f FILE`: bits, fingerprint, comment and type label. */
function keygenFingerprint(file: string): { bits: number; fingerprint: string; label: string } {
  const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' }).trim();
  const m = /^(\d+) (SHA256:[A-Za-z0-9+/]{43}) .* \(([A-Z0-9-]+)\)$/.exec(out);
  assert.ok(m, `unexpected ssh-keygen -l output ${JSON.stringify(out)}`);
  return { bits: Number(m[1]), fingerprint: m[2]!, label: m[3]! };
}

function line(type: string, blob: Buffer, comment = 'test'): string {
  return `${type} ${blob.toString('base64')}${comment ? ' ' + comment : ''}`;
}

function blobOf(keyLine: string): Buffer {
  return Buffer.from(keyLine.split(' ')[1]!, 'base64');
}

/** Asserts parseUserPublicKey refuses `input` with a KeyError whose message matches `message`. */
function refuses(input: string, message: RegExp, label: string): void {
  assert.throws(
    () => parseUserPublicKey(input),
    (e: unknown) => {
      assert.ok(e instanceof KeyError, `${label}: threw ${String(e)}`);
      assert.equal(e.code, 'invalid_public_key', label);
      assert.match(e.message, message, label);
      return true;
    },
    label,
  );
}

// ---- Accepted keys ----

const PLAIN_KINDS: UserKeyKind[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

for (const kind of PLAIN_KINDS) {
  test(`ok: ${kind} key from ssh-keygen is accepted with ssh-keygen's type, size and fingerprint`, () => {
    const [type, bits] = kind.split('-') as ['ed25519' | 'ecdsa' | 'rsa', string | undefined];
    const made = userKey(dir, type, bits ? Number(bits) : undefined, kind);
    const key = parseUserPublicKey(made.publicLine);
    const expected = keygenFingerprint(`${made.path}.pub`);
    assert.equal(key.type, USER_KEY_KINDS[kind].type);
    assert.equal(key.bits, USER_KEY_KINDS[kind].bits);
    assert.equal(key.bits, expected.bits);
    assert.equal(key.fingerprint, expected.fingerprint);
    assert.equal(expected.label, USER_KEY_KINDS[kind].label);
    assert.equal(key.comment, `${kind}@test`);
    assert.deepEqual(key.blob, blobOf(made.publicLine));
  });
}

for (const kind of ['sk-ed25519', 'sk-ecdsa'] as const) {
  test(`ok: ${kind} security key is accepted with ssh-keygen's type, size and fingerprint`, () => {
    const keyLine = securityKeyLine(kind);
    const file = path.join(dir, `${kind}.pub`);
    writeFileSync(file, keyLine + '\n');
    const key = parseUserPublicKey(keyLine);
    const expected = keygenFingerprint(file);
    assert.equal(key.type, USER_KEY_KINDS[kind].type);
    assert.equal(key.bits, expected.bits);
    assert.equal(key.bits, 256);
    assert.equal(key.fingerprint, expected.fingerprint);
    assert.equal(expected.label, USER_KEY_KINDS[kind].label);
    assert.equal(key.comment, 'sk@test');
    // An https origin is an application too (webauthn).
    assert.equal(parseUserPublicKey(securityKeyLine(kind, 'https://example.com')).type, USER_KEY_KINDS[kind].type);
  });
}

test('ok: surrounding whitespace, tabs, CRLF, no comment and a comment with spaces are all fine', () => {
  const made = userKey(dir, 'ed25519', undefined, 'ws');
  const [type, b64] = made.publicLine.split(' ') as [string, string];
  const fp = sshFingerprint(Buffer.from(b64, 'base64'));
  const cases: Array<[string, string]> = [
    [`${type} ${b64}`, ''],
    [`  ${type}\t${b64}  \n`, ''],
    [`${type} ${b64} alice laptop 2026\r\n`, 'alice laptop 2026'],
    [`${type}  \t ${b64}\tmy key`, 'my key'],
  ];
  for (const [input, comment] of cases) {
    const key = parseUserPublicKey(input);
    assert.equal(key.fingerprint, fp, JSON.stringify(input));
    assert.equal(key.comment, comment, JSON.stringify(input));
  }
});

// ---- Refused keys, from ssh-keygen ----

test('fail: a DSA key is refused, pointing to ed25519', () => {
  const made = userKey(dir, 'dsa');
  assert.match(made.publicLine, /^ssh-dss /);
  refuses(made.publicLine, /^DSA keys are not accepted \(OpenSSH disabled them as too weak\); use ed25519: ssh-keygen -t ed25519$/, 'dsa');
});

test('fail: an RSA key under 2048 bits is refused, saying its size', () => {
  const made = userKey(dir, 'rsa', 1024);
  refuses(made.publicLine, /^RSA key is 1024 bits; at least 2048 are required \(ssh-keygen -t ed25519 makes a better key\)$/, 'rsa 1024');
});

test('fail: a certificate is refused, asking for the plain public key', () => {
  const ca = userKey(dir, 'ed25519', undefined, 'some-ca');
  const made = userKey(dir, 'ed25519', undefined, 'certified');
  execFileSync('ssh-keygen', ['-q', '-s', ca.path, '-I', 'id', '-n', 'deploy', `${made.path}.pub`], { stdio: 'ignore' });
  const certLine = readFileSync(`${made.path}-cert.pub`, 'utf8');
  assert.match(certLine, /^ssh-ed25519-cert-v01@openssh\.com /);
  refuses(certLine, /^this is a certificate, not a public key; send the plain public key \(the \.pub file\)$/, 'certificate');
  assert.throws(() => parsePublicKeyBlob(blobOf(certLine)), /^KeyError: this is a certificate/);
});

test('fail: private keys in every format ssh-keygen writes are refused, without echoing them', () => {
  const openssh = userKey(dir, 'ed25519', undefined, 'priv-openssh');
  const pem = path.join(dir, 'priv-pem');
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', pem], { stdio: 'ignore' });
  const pkcs8 = path.join(dir, 'priv-pkcs8');
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-m', 'PKCS8', '-N', '', '-f', pkcs8], { stdio: 'ignore' });
  for (const file of [openssh.path, pem, pkcs8]) {
    const content = readFileSync(file, 'utf8');
    assert.match(content, /^-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    refuses(content, /^this is a private key; send the public key \(the \.pub file\) and keep the private key to yourself$/, file);
  }
});

test('fail: an RFC 4716 public key is refused, saying how to convert it', () => {
  const made = userKey(dir, 'ed25519', undefined, 'rfc4716');
  const rfc = execFileSync('ssh-keygen', ['-e', '-f', `${made.path}.pub`], { encoding: 'utf8' });
  assert.match(rfc, /^---- BEGIN SSH2 PUBLIC KEY ----/);
  refuses(rfc, /^RFC 4716 public keys are not accepted; send the OpenSSH one-line form \(ssh-keygen -i -f KEY converts it\)$/, 'rfc4716');
});

// ---- Refused input, crafted ----

const ed = userKey(dir, 'ed25519', undefined, 'base');
const [edType, edB64] = ed.publicLine.split(' ') as [string, string];
const edBlob = Buffer.from(edB64, 'base64');
const ec256 = userKey(dir, 'ecdsa', 256, 'ec256');
const ec256Blob = blobOf(ec256.publicLine);

/** Rebuilds an ecdsa-sha2-nistp256 blob with its point (and optionally curve) changed. */
function ecdsaBlob(mutate: (point: Buffer) => Buffer, curve = 'nistp256'): Buffer {
  const r = new SshReader(ec256Blob);
  const type = r.text();
  r.text();
  const point = Buffer.from(r.string());
  return new SshWriter().string(type).string(curve).string(mutate(point)).toBuffer();
}

function skBlob(kind: 'sk-ed25519' | 'sk-ecdsa', application: string): Buffer {
  return blobOf(securityKeyLine(kind, application));
}

const REFUSED: Array<[string, string, RegExp]> = [
  ['empty string', '', /^public key is empty$/],
  ['only whitespace', ' \n\t ', /^public key is empty$/],
  ['one word of garbage', 'garbage', /^public key must be "TYPE BASE64 \[COMMENT\]"$/],
  ['garbage that is not base64', 'ssh-ed25519 !!not*base64!!', /^public key data is not base64$/],
  ['garbage words', 'hello there world', /^public key data is not canonical base64$/],
  ['base64 that is no SSH key', 'ssh-ed25519 aGVsbG8gd29ybGQ=', /^public key data is truncated or not an SSH public key$/],
  ['too short to hold a type', 'ssh-ed25519 AAAA', /^public key data is truncated or not an SSH public key$/],
  ['truncated base64, cut at a 4-character boundary', `${edType} ${edB64.slice(0, 60)}`, /^malformed ssh-ed25519 public key: truncated ed25519 key: need 32 bytes, \d+ left$/],
  ['truncated base64, cut mid-quantum', `${edType} ${edB64.slice(0, 61)}`, /^public key data is not canonical base64$/],
  ['declared type differs from the blob', `ssh-rsa ${edB64} x`, /^key type in the line \(ssh-rsa\) does not match the key data \(ssh-ed25519\)$/],
  ['declared ecdsa curve differs from the blob', `ecdsa-sha2-nistp384 ${ec256Blob.toString('base64')}`, /^key type in the line \(ecdsa-sha2-nistp384\) does not match the key data \(ecdsa-sha2-nistp256\)$/],
  ['unknown key type', line('ssh-foo', new SshWriter().string('ssh-foo').string('x').toBuffer()), /^unsupported key type "ssh-foo"; use ed25519, ecdsa, RSA \(2048 bits or more\) or a FIDO security key$/],
  ['ecdsa point not on the curve (x flipped)', line('ecdsa-sha2-nistp256', ecdsaBlob((p) => ((p[10]! ^= 0x01), p))), /^ecdsa nistp256 point is not on the curve$/],
  ['ecdsa point not on the curve (y flipped)', line('ecdsa-sha2-nistp256', ecdsaBlob((p) => ((p[60]! ^= 0x80), p))), /^ecdsa nistp256 point is not on the curve$/],
  ['ecdsa point compressed', line('ecdsa-sha2-nistp256', ecdsaBlob((p) => Buffer.concat([Buffer.from([2 + (p[64]! & 1)]), p.subarray(1, 33)]))), /^ecdsa nistp256 point must be uncompressed \(65 bytes\)$/],
  ['ecdsa curve name inside differs from the type', line('ecdsa-sha2-nistp256', ecdsaBlob((p) => p, 'nistp384')), /^ecdsa key says curve "nistp384" but its type says nistp256$/],
  ['ed25519 key of 31 bytes', line('ssh-ed25519', new SshWriter().string('ssh-ed25519').string(Buffer.alloc(31, 9)).toBuffer()), /^ed25519 key must be 32 bytes, got 31$/],
  ['sk-ed25519 application not starting with ssh:', line('sk-ssh-ed25519@openssh.com', skBlob('sk-ed25519', 'github.com')), /^security key application "github\.com" must start with "ssh:"$/],
  ['sk-ecdsa application not starting with ssh:', line('sk-ecdsa-sha2-nistp256@openssh.com', skBlob('sk-ecdsa', 'http://example.com')), /^security key application "http:\/\/example\.com" must start with "ssh:"$/],
  ['sk-ecdsa application "SSH:" (case matters)', line('sk-ecdsa-sha2-nistp256@openssh.com', skBlob('sk-ecdsa', 'SSH:')), /^security key application "SSH:" must start with "ssh:"$/],
  ['sk key without its application', line('sk-ssh-ed25519@openssh.com', blobOf(securityKeyLine('sk-ed25519')).subarray(0, 4 + 26 + 4 + 32)), /^malformed sk-ssh-ed25519@openssh\.com public key: truncated application length: need 4 bytes, 0 left$/],
  ['trailing bytes after the key blob', line('ssh-ed25519', Buffer.concat([edBlob, Buffer.from([1, 2, 3])])), /^malformed ssh-ed25519 public key: 3 unexpected trailing bytes after public key$/],
  ['an empty string after the key blob', line('ssh-ed25519', Buffer.concat([edBlob, Buffer.alloc(4)])), /^malformed ssh-ed25519 public key: 4 unexpected trailing bytes after public key$/],
  ['two keys on two lines', `${ed.publicLine}\n${ec256.publicLine}`, /^public key must be a single line$/],
  ['two lines, CRLF', `${ed.publicLine}\r\n${ed.publicLine}\r\n`, /^public key must be a single line$/],
  ['a NUL byte in the comment', `${ed.publicLine}\0evil`, /^public key contains a NUL byte$/],
  ['a NUL byte before the key', `\0${ed.publicLine}`, /^public key contains a NUL byte$/],
  ['over 16 KiB', `${ed.publicLine} ${'x'.repeat(16 * 1024)}`, /^public key is too long \(\d+ characters; at most 16384\)$/],
];

for (const [name, input, message] of REFUSED) {
  test(`fail: ${name}`, () => refuses(input, message, name));
}

test('fail: base64 with padding bits set (decodes to the same key, but is not canonical)', () => {
  const b64 = ec256.publicLine.split(' ')[1]!;
  assert.match(b64, /[^=]=$/, 'a 104-byte blob ends in one "=": its last character carries 2 padding bits');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const tweaked = b64.slice(0, -2) + alphabet[alphabet.indexOf(b64.at(-2)!) ^ 1] + '=';
  assert.notEqual(tweaked, b64);
  assert.deepEqual(Buffer.from(tweaked, 'base64'), ec256Blob);
  refuses(`ecdsa-sha2-nistp256 ${tweaked}`, /^public key data is not canonical base64$/, 'padding bits');
});

// ---- RSA parameters ----

function rsaLine(e: Buffer, n: Buffer): string {
  return line('ssh-rsa', new SshWriter().string('ssh-rsa').mpint(e).mpint(n).toBuffer());
}

const rsaN = (() => {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.n!, 'base64url');
})();

test('fail: RSA keys with a bad exponent, an even modulus or over 16384 bits are refused', () => {
  const e65537 = Buffer.from([1, 0, 1]);
  const cases: Array<[string, string, RegExp]> = [
    ['exponent 1', rsaLine(Buffer.from([1]), rsaN), /^RSA public exponent is invalid$/],
    ['even exponent', rsaLine(Buffer.from([1, 0, 0]), rsaN), /^RSA public exponent is invalid$/],
    ['empty exponent', rsaLine(Buffer.alloc(0), rsaN), /^RSA public exponent is invalid$/],
    ['even modulus', rsaLine(e65537, Buffer.concat([rsaN.subarray(0, -1), Buffer.from([rsaN.at(-1)! & 0xfe])])), /^RSA modulus is even$/],
    ['16392-bit modulus', rsaLine(e65537, Buffer.concat([Buffer.from([0xff]), Buffer.alloc(2047, 0x5a), Buffer.from([0x5b])])), /^RSA key is 16392 bits; at most 16384 are accepted$/],
    ['2047-bit modulus', rsaLine(e65537, Buffer.concat([Buffer.from([0x7f]), rsaN.subarray(1)])), /^RSA key is 2047 bits; at least 2048 are required/],
    [
      'negative modulus (mpint sign bit set)',
      line('ssh-rsa', new SshWriter().string('ssh-rsa').mpint(e65537).string(rsaN).toBuffer()),
      /^malformed ssh-rsa public key: rsa n is negative$/,
    ],
    [
      'modulus with a needless leading zero',
      line('ssh-rsa', new SshWriter().string('ssh-rsa').mpint(e65537).string(Buffer.concat([Buffer.from([0, 0]), rsaN])).toBuffer()),
      /^malformed ssh-rsa public key: rsa n has a needless leading zero$/,
    ],
  ];
  for (const [name, input, message] of cases) refuses(input, message, name);
  // Control: the same modulus and exponent, well encoded, is a good 2048-bit key.
  assert.equal(parseUserPublicKey(rsaLine(e65537, rsaN)).bits, 2048);
});

test('ok: a public key whose comment mentions "PRIVATE KEY" is still a public key', () => {
  const made = userKey(dir, 'ed25519', undefined, 'comment');
  const [type, b64] = made.publicLine.split(' ');
  const key = parseUserPublicKey(`${type} ${b64} my PRIVATE KEY backup`);
  assert.equal(key.comment, 'my PRIVATE KEY backup');
});
