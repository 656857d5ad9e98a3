// Certificates we mint, read by Go's golang.org/x/crypto/ssh (test/go/certcheck.go):
// the parser behind Teleport, Vault and step-ca tooling, stricter than sshd about
// option order, duplicates and the string wrapped around option data. Negative
// controls hand-craft (and properly sign) certificates that break exactly one of
// those rules, to show the checker would catch a minting regression.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { encodeCertificateBody, mintCertificate, type CertificateSpec, type MintedCertificate } from '../../src/ssh/certificate.js';
import type { UserPublicKey } from '../../src/ssh/pubkey.js';
import { publicKeyLine, type Signer } from '../../src/ssh/signer.js';
import { SshReader, SshWriter, WireError } from '../../src/ssh/wire.js';
import { CA_INFO, CERT_TYPE, fullSpec, makeUserKey, SORTED_EXTENSIONS, type TestUserKey, type UserKeyKind } from '../helpers/certs.js';
import { buildCertcheck, GO_MISSING, runCertcheck, type GoResult } from '../helpers/go-certcheck.js';
import { CA_KINDS, caSigner, tempDir, type CaKind } from '../helpers/keys.js';

const opts = { skip: GO_MISSING };

const dir = tempDir();
const WINDOW = { validAfter: 1_780_000_000, validBefore: 1_780_000_000 + 8 * 3600 };
let checker = '';

before(() => {
  if (!GO_MISSING) checker = buildCertcheck(dir);
});

/** Runs the Go checker on certificate lines (via a file, or stdin) and returns one result per line. */
function goCheck(lines: string[], { principal = 'web', now = WINDOW.validAfter + 60, stdin = false } = {}): GoResult[] {
  return runCertcheck(checker, dir, lines, { principal, now, stdin });
}

const signers = new Map<CaKind, Signer>(CA_KINDS.map((kind) => [kind, caSigner(kind)]));
const USER_KINDS: UserKeyKind[] = ['ed25519', 'ecdsa-256', 'rsa-3072', 'sk-ed25519', 'sk-ecdsa'];
const userKeys = new Map<UserKeyKind, TestUserKey>(USER_KINDS.map((kind) => [kind, makeUserKey(dir, kind)]));

function spec(key: UserPublicKey, overrides: Partial<CertificateSpec> = {}): CertificateSpec {
  return fullSpec(key, { ...WINDOW, ...overrides });
}

function expected(ca: CaKind, signer: Signer, user: TestUserKey, s: CertificateSpec, cert: MintedCertificate): GoResult {
  return {
    source: '',
    line: 0,
    ok: true,
    type: cert.type,
    certType: 1,
    keyType: user.key.type,
    serial: s.serial.toString(10),
    keyId: s.keyId,
    principals: ['deploy', 'web'],
    validAfter: String(s.validAfter),
    validBefore: String(s.validBefore),
    criticalOptions: { 'force-command': 'uptime', 'source-address': '10.0.0.0/8,127.0.0.1/32' },
    extensions: Object.fromEntries(SORTED_EXTENSIONS.map((e) => [e, ''])),
    extensionNames: SORTED_EXTENSIONS,
    signatureFormat: CA_INFO[ca].signatureAlgorithm,
    signatureKey: publicKeyLine(signer),
    comment: 'from-node',
  };
}

for (const ca of CA_KINDS) {
  test(`ok: ${ca} CA: Go parses every user key type's certificate, verifies it and reads every field`, opts, async () => {
    const signer = signers.get(ca)!;
    const minted = await Promise.all(
      USER_KINDS.map(async (kind) => {
        const user = userKeys.get(kind)!;
        const s = spec(user.key);
        return { user, s, cert: await mintCertificate(signer, s) };
      }),
    );
    const results = goCheck(minted.map(({ cert }) => `${cert.text} from-node`));
    minted.forEach(({ user, s, cert }, i) => {
      const got = results[i]!;
      assert.equal(cert.type, CERT_TYPE[user.key.type]);
      assert.ok(s.serial >= 1n << 62n);
      assert.deepEqual({ ...got, source: '', line: 0 }, expected(ca, signer, user, s, cert), `${ca} CA, ${user.kind} key`);
      assert.equal(got.line, i + 1);
    });
  });
}

test('ok: the full 64-bit serial range reaches Go exactly (read from stdin)', opts, async () => {
  const signer = signers.get('ecdsa-p384')!;
  const key = userKeys.get('ed25519')!.key;
  const serials = [2n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
  const certs = await Promise.all(serials.map((serial) => mintCertificate(signer, spec(key, { serial }))));
  const results = goCheck(certs.map((c) => c.text), { stdin: true });
  assert.deepEqual(results.map((r) => [r.ok, r.serial, r.source]), serials.map((s) => [true, s.toString(10), '-']));
});

test('ok: the Go checker enforces principal and validity window (valid_after inclusive, valid_before exclusive)', opts, async () => {
  const signer = signers.get('ed25519')!;
  const cert = await mintCertificate(signer, spec(userKeys.get('sk-ecdsa')!.key));
  const cases: Array<[string, { principal: string; now: number }, RegExp | null]> = [
    ['principal deploy', { principal: 'deploy', now: WINDOW.validAfter + 1 }, null],
    ['first second', { principal: 'web', now: WINDOW.validAfter }, null],
    ['last second', { principal: 'web', now: WINDOW.validBefore - 1 }, null],
    ['principal not listed', { principal: 'root', now: WINDOW.validAfter + 1 }, /^ssh: principal "root" not in the set of valid principals/],
    ['principal differing in case', { principal: 'Deploy', now: WINDOW.validAfter + 1 }, /^ssh: principal "Deploy" not in the set/],
    ['before valid_after', { principal: 'web', now: WINDOW.validAfter - 1 }, /^ssh: cert is not yet valid$/],
    ['at valid_before', { principal: 'web', now: WINDOW.validBefore }, /^ssh: cert has expired$/],
  ];
  for (const [name, o, err] of cases) {
    const [r] = goCheck([cert.text], o);
    if (err) {
      assert.equal(r!.ok, false, name);
      assert.equal(r!.stage, 'check', name);
      assert.match(r!.error!, err, name);
    } else {
      assert.equal(r!.ok, true, `${name}: ${r!.error}`);
    }
  }
});

test('fail (control): Go refuses a certificate whose signature does not match, for every CA kind', opts, async () => {
  const lines: string[] = [];
  for (const ca of CA_KINDS) {
    const signer = signers.get(ca)!;
    const cert = await mintCertificate(signer, spec(userKeys.get('ed25519')!.key, { keyId: 'grant-7' }));
    const blob = Buffer.from(cert.blob);
    const at = blob.indexOf(Buffer.from('grant-7')) + 'grant-'.length;
    blob[at] = '8'.charCodeAt(0); // key ID grant-7 -> grant-8: well-formed, but not what was signed
    lines.push(`${cert.type} ${blob.toString('base64')}`);
    assert.equal(parseCertificate(blob).signatureValid, false);
  }
  // And a signature from another CA key of the same kind, under the first CA's name.
  const impostor = caSigner('ed25519');
  const genuine = signers.get('ed25519')!;
  const body = encodeCertificateBody(spec(userKeys.get('ed25519')!.key), genuine.publicKeyBlob);
  const forged = new SshWriter().raw(body).string(await impostor.sign(body)).toBuffer();
  lines.push(`ssh-ed25519-cert-v01@openssh.com ${forged.toString('base64')}`);
  for (const [i, r] of goCheck(lines).entries()) {
    assert.equal(r.ok, false, `line ${i + 1}`);
    assert.equal(r.error, 'ssh: certificate signature does not verify', `line ${i + 1}`);
    assert.equal(r.keyId, i < CA_KINDS.length ? 'grant-8' : 'grant-42 alice@example.com');
  }
});

// ---- Hand-crafted certificates: each breaks one rule of the encoding. ----

type Tuple = [name: string, data: Buffer];
const flag = (name: string): Tuple => [name, Buffer.alloc(0)];
/** A valued option as PROTOCOL.certkeys wants it: the value wrapped in a string inside the data string. */
const valued = (name: string, value: string): Tuple => [name, new SshWriter().string(value).toBuffer()];
/** The mistake: the value placed directly in the data string. */
const unwrapped = (name: string, value: string): Tuple => [name, Buffer.from(value)];

function tuples(list: Tuple[]): Buffer {
  const w = new SshWriter();
  for (const [name, data] of list) w.string(name).string(data);
  return w.toBuffer();
}

/** Encodes a certificate body exactly as given (no sorting, no checks) and signs it with `signer`. */
async function craft(signer: Signer, key: UserPublicKey, critical: Tuple[], extensions: Tuple[], nonce: Buffer, serial = 4242n): Promise<{ body: Buffer; line: string; blob: Buffer }> {
  const r = new SshReader(key.blob);
  r.string();
  const principals = new SshWriter().string('deploy').string('web').toBuffer();
  const body = new SshWriter()
    .string(CERT_TYPE[key.type])
    .string(nonce)
    .raw(key.blob.subarray(r.offset))
    .uint64(serial)
    .uint32(1)
    .string('grant-42 alice@example.com')
    .string(principals)
    .uint64(BigInt(WINDOW.validAfter))
    .uint64(BigInt(WINDOW.validBefore))
    .string(tuples(critical))
    .string(tuples(extensions))
    .string('')
    .string(signer.publicKeyBlob)
    .toBuffer();
  const blob = new SshWriter().raw(body).string(await signer.sign(body)).toBuffer();
  return { body, blob, line: `${CERT_TYPE[key.type]} ${blob.toString('base64')}` };
}

const WELL_FORMED = {
  critical: [valued('force-command', 'uptime'), valued('source-address', '10.0.0.0/8,127.0.0.1/32')],
  extensions: SORTED_EXTENSIONS.map(flag),
};

const MALFORMED: Array<{ name: string; critical: Tuple[]; extensions: Tuple[]; go: RegExp; js: RegExp }> = [
  {
    name: 'extensions out of byte order (permit-agent-forwarding before permit-X11-forwarding)',
    critical: WELL_FORMED.critical,
    extensions: ['permit-agent-forwarding', 'permit-X11-forwarding', 'permit-port-forwarding', 'permit-pty'].map(flag),
    go: /^ssh: no key found: ssh: certificate options are not in lexical order$/,
    js: /extensions are not in strictly increasing byte order at permit-X11-forwarding/,
  },
  {
    name: 'a duplicate extension',
    critical: WELL_FORMED.critical,
    extensions: ['permit-X11-forwarding', 'permit-pty', 'permit-pty'].map(flag),
    go: /^ssh: no key found: ssh: certificate options are not in lexical order$/,
    js: /extensions are not in strictly increasing byte order at permit-pty/,
  },
  {
    name: 'critical options out of byte order',
    critical: [WELL_FORMED.critical[1]!, WELL_FORMED.critical[0]!],
    extensions: WELL_FORMED.extensions,
    go: /^ssh: no key found: ssh: certificate options are not in lexical order$/,
    js: /critical options are not in strictly increasing byte order at force-command/,
  },
  {
    name: 'force-command data not wrapped in an inner string',
    critical: [unwrapped('force-command', 'uptime'), WELL_FORMED.critical[1]!],
    extensions: WELL_FORMED.extensions,
    go: /^ssh: no key found: ssh: short read$/,
    js: /truncated critical options value/,
  },
  {
    name: 'an option value with bytes after its inner string',
    critical: [['force-command', Buffer.concat([new SshWriter().string('uptime').toBuffer(), Buffer.from('!')])], WELL_FORMED.critical[1]!],
    extensions: WELL_FORMED.extensions,
    go: /^ssh: no key found: ssh: unexpected trailing data after certificate option value$/,
    js: /unexpected trailing bytes after critical options value/,
  },
];

test('ok (control): the hand-crafting encoder reproduces what mintCertificate signs, and Go accepts it', opts, async () => {
  const lines: string[] = [];
  for (const ca of CA_KINDS) {
    const signer = signers.get(ca)!;
    const key = userKeys.get('ed25519')!.key;
    const nonce = Buffer.alloc(32, 7);
    const crafted = await craft(signer, key, WELL_FORMED.critical, WELL_FORMED.extensions, nonce);
    const s = spec(key, { serial: 4242n });
    assert.deepEqual(crafted.body, encodeCertificateBody(s, signer.publicKeyBlob, nonce), ca);
    assert.equal(parseCertificate(crafted.blob).signatureValid, true, ca);
    lines.push(crafted.line);
  }
  for (const r of goCheck(lines)) {
    assert.equal(r.ok, true, r.error);
    assert.equal(r.serial, '4242');
    assert.deepEqual(r.extensionNames, SORTED_EXTENSIONS);
  }
});

for (const bad of MALFORMED) {
  test(`fail (control): Go rejects a correctly signed certificate with ${bad.name}`, opts, async () => {
    const lines: string[] = [];
    for (const ca of CA_KINDS) {
      const crafted = await craft(signers.get(ca)!, userKeys.get('ed25519')!.key, bad.critical, bad.extensions, Buffer.alloc(32, 1));
      lines.push(crafted.line);
      // Our own strict parser agrees.
      assert.throws(() => parseCertificate(crafted.blob), (e: unknown) => e instanceof WireError && bad.js.test(e.message), ca);
    }
    for (const [i, r] of goCheck(lines).entries()) {
      assert.equal(r.ok, false, CA_KINDS[i]);
      assert.equal(r.stage, 'parse', CA_KINDS[i]);
      assert.match(r.error!, bad.go, CA_KINDS[i]);
    }
  });
}

test('fail (control): the checker reports a plain public key and garbage instead of passing them', opts, () => {
  const results = goCheck([userKeys.get('ed25519')!.line, 'ssh-ed25519-cert-v01@openssh.com AAAA%%%%']);
  assert.equal(results[0]!.ok, false);
  assert.equal(results[0]!.error, 'not a certificate but a ssh-ed25519 key');
  assert.equal(results[1]!.ok, false);
  assert.match(results[1]!.error!, /^ssh: no key found: illegal base64 data/);
});
