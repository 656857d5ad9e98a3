// Bad input to the OpenSSH parsers: random bytes, and real keys, certificates
// and signatures cut short, bit-flipped, spliced. Each parser must refuse with
// its own error (KeyError, WireError), never a TypeError or RangeError from
// deeper down, and must never accept what was damaged.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { mintCertificate } from '../../src/ssh/certificate.js';
import { KeyError, parsePublicKeyBlob, parseUserPublicKey, sshFingerprint } from '../../src/ssh/pubkey.js';
import { sshsign, sshverify } from '../../src/ssh/sshsig.js';
import { SshReader, SshWriter, WireError } from '../../src/ssh/wire.js';
import { fullSpec, makeUserKey, USER_KEY_KINDS, type UserKeyKind } from '../helpers/certs.js';
import { check, damaged, fc, flipBit, hostileText } from '../helpers/fuzz.js';
import { CA_KINDS, caSigner, tempDir } from '../helpers/keys.js';

const dir = tempDir();
const KINDS: UserKeyKind[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-2048', 'sk-ed25519', 'sk-ecdsa'];
const keys = KINDS.map((k) => makeUserKey(dir, k));
const blobOf = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');

/** Runs `f`; an error must be an instance of `type`. Returns the value, or null when `f` refused. */
function refusesOnlyWith<T>(type: new (...args: never[]) => Error, f: () => T, input: unknown): T | null {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof type, `${type.name} expected for ${JSON.stringify(input)?.slice(0, 300)}, got ${(e as Error)?.stack ?? String(e)}`);
    assert.ok((e as Error).message.length > 0);
    return null;
  }
}

const keyIndex = fc.nat({ max: keys.length - 1 });

test('public key blobs: every truncation of a real key is refused with a KeyError', () => {
  for (const k of keys) {
    const blob = blobOf(k.line);
    for (let n = 0; n < blob.length; n++) assert.throws(() => parsePublicKeyBlob(blob.subarray(0, n)), KeyError, `${k.kind} cut to ${n} bytes`);
  }
});

test('public key blobs: damaged real keys give a KeyError or a key that is exactly what was sent', () => {
  const arb = keyIndex.chain((i) => fc.tuple(fc.constant(i), damaged(blobOf(keys[i]!.line))));
  check('damaged key blob', arb, ([i, blob]) => {
    const key = refusesOnlyWith(KeyError, () => parsePublicKeyBlob(blob), blob.toString('base64'));
    if (!key) return;
    // A flip that still parses (inside an RSA modulus, say) is a different, well-formed key: vetted like any other.
    assert.ok(Object.values(USER_KEY_KINDS).some((t) => t.type === key.type), key.type);
    assert.ok(key.blob.equals(blob));
    assert.equal(key.fingerprint, sshFingerprint(blob));
  }, 3000);
});

test('public key blobs and lines: random bytes and text are refused with a KeyError', () => {
  check('random blob', fc.uint8Array({ maxLength: 600 }), (a) => {
    refusesOnlyWith(KeyError, () => parsePublicKeyBlob(Buffer.from(a)), a);
  }, 1000);
  // A blob that names a type and then holds anything: the per-type readers get random fields.
  const typed = fc.tuple(fc.constantFrom(...new Set([...Object.values(USER_KEY_KINDS).map((k) => k.type), 'ssh-dss', 'ssh-ed25519-cert-v01@openssh.com', 'x'])), fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 5 }));
  check('typed random blob', typed, ([type, fields]) => {
    const w = new SshWriter().string(type);
    for (const f of fields) w.string(Buffer.from(f));
    refusesOnlyWith(KeyError, () => parsePublicKeyBlob(w.toBuffer()), [type, fields]);
  }, 1000);
  check('random line', fc.oneof(hostileText, fc.string({ unit: 'binary', maxLength: 300 })), (s) => {
    refusesOnlyWith(KeyError, () => parseUserPublicKey(s), s);
  }, 1000);
  check('not a string', fc.anything(), (v) => {
    if (typeof v === 'string') return;
    assert.throws(() => parseUserPublicKey(v as string), KeyError);
  }, 300);
});

test('public key lines: real lines with damaged text give a KeyError or the key', () => {
  const edit = keyIndex.chain((i) =>
    fc.tuple(
      fc.constant(i),
      fc.oneof(
        // a character replaced, inserted or removed anywhere in the line
        fc.tuple(fc.nat({ max: keys[i]!.line.length - 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 2 })).map(([at, s, drop]) => keys[i]!.line.slice(0, at) + s + keys[i]!.line.slice(at + drop)),
        // what a terminal or a mail client does to a pasted line
        fc.constantFrom('\r\n', '\n', '\0', '\u00a0', '\ufeff', ' \n ' + keys[i]!.line).map((s) => keys[i]!.line + s),
        fc.constantFrom('\ufeff', ' ', '\t', 'ssh-rsa ', '"', 'command="x" ').map((s) => s + keys[i]!.line),
        fc.string({ unit: 'binary', maxLength: 60 }).map((comment) => `${keys[i]!.line.split(' ').slice(0, 2).join(' ')} ${comment}`),
      ),
    ),
  );
  check('damaged key line', edit, ([i, line]) => {
    const key = refusesOnlyWith(KeyError, () => parseUserPublicKey(line), line);
    if (key && key.blob.equals(keys[i]!.key.blob)) assert.equal(key.type, keys[i]!.key.type);
  }, 2000);
});

test('certificates: damaged certificates minted by every kind of CA are refused with a WireError and never verify', async () => {
  for (const kind of CA_KINDS) {
    const signer = caSigner(kind);
    const certs = await Promise.all(keys.map((k) => mintCertificate(signer, fullSpec(k.key))));
    for (const c of certs) {
      assert.equal(parseCertificate(c.blob).signatureValid, true, `${kind}: the undamaged certificate verifies`);
      for (let n = 0; n < c.blob.length; n += 7) assert.throws(() => parseCertificate(c.blob.subarray(0, n)), WireError, `${kind} cut to ${n}`);
    }
    const arb = fc.nat({ max: certs.length - 1 }).chain((i) => fc.tuple(fc.constant(i), damaged(certs[i]!.blob)));
    check(`damaged certificate (${kind} CA)`, arb, ([i, blob]) => {
      const parsed = refusesOnlyWith(WireError, () => parseCertificate(blob), blob.toString('base64'));
      if (parsed && !blob.equals(certs[i]!.blob)) assert.equal(parsed.signatureValid, false, `a damaged certificate verified: ${blob.toString('base64')}`);
    }, 500);
  }
  check('random certificate', fc.uint8Array({ maxLength: 800 }), (a) => {
    refusesOnlyWith(WireError, () => parseCertificate(Buffer.from(a)), a);
  }, 500);
});

test('regression: a certificate whose CA key is damaged is a WireError, not a TypeError from node:crypto', async () => {
  // An ECDSA CA key with one bit of its point flipped is off the curve; importing it threw "Invalid JWK EC key".
  const signer = caSigner('ecdsa-p256');
  const cert = await mintCertificate(signer, fullSpec(keys[0]!.key));
  const at = cert.blob.indexOf(signer.publicKeyBlob);
  const point = at + signer.publicKeyBlob.length - 20;
  assert.throws(() => parseCertificate(flipBit(cert.blob, point * 8)), (e: unknown) => e instanceof WireError && /CA ecdsa-sha2-nistp256 key is not a valid public key/.test(e.message));
});

test('SSHSIG: damaged signatures by every kind of CA are refused with a WireError', async () => {
  const message = Buffer.from('jit-ssh checkpoint\n');
  for (const kind of CA_KINDS) {
    const signer = caSigner(kind);
    const armored = await sshsign(signer, 'jit-ssh-test', message);
    assert.ok(sshverify(armored, 'jit-ssh-test', message, [signer.publicKeyBlob]).equals(signer.publicKeyBlob));
    const raw = Buffer.from(armored.split('\n').slice(1, -2).join(''), 'base64');
    const arm = (b: Buffer) => `-----BEGIN SSH SIGNATURE-----\n${b.toString('base64').replace(/.{70}/g, '$&\n')}\n-----END SSH SIGNATURE-----\n`;
    check(`damaged SSHSIG (${kind})`, damaged(raw), (b) => {
      if (b.equals(raw)) return;
      assert.throws(() => sshverify(arm(b), 'jit-ssh-test', message, [signer.publicKeyBlob]), WireError, b.toString('base64'));
    }, 400);
    const text = fc.tuple(fc.nat({ max: armored.length - 1 }), fc.string({ unit: 'binary', maxLength: 3 }), fc.integer({ min: 0, max: 3 })).map(([at, s, drop]) => armored.slice(0, at) + s + armored.slice(at + drop));
    check(`damaged SSHSIG text (${kind})`, text, (t) => {
      if (t === armored) return;
      const key = refusesOnlyWith(WireError, () => sshverify(t, 'jit-ssh-test', message, [signer.publicKeyBlob]), t);
      // An edit the armor ignores (a line break, trailing space) decodes to the very same signature.
      if (key) assert.ok(Buffer.from(t.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').equals(raw), `a changed signature verified: ${JSON.stringify(t)}`);
    }, 400);
  }
  check('random SSHSIG text', fc.oneof(hostileText, fc.uint8Array({ maxLength: 300 }).map((a) => `-----BEGIN SSH SIGNATURE-----\n${Buffer.from(a).toString('base64')}\n-----END SSH SIGNATURE-----`)), (t) => {
    refusesOnlyWith(WireError, () => sshverify(t, 'ns', Buffer.alloc(0), [caSigner('ed25519').publicKeyBlob]), t);
  }, 300);
});

test('wire reader: any sequence of reads over any bytes ends in a value or a WireError', () => {
  const op = fc.constantFrom('uint32', 'uint64', 'string', 'text', 'mpint', 'raw', 'end') as fc.Arbitrary<'uint32' | 'uint64' | 'string' | 'text' | 'mpint' | 'raw' | 'end'>;
  check('wire reads', fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.array(fc.tuple(op, fc.nat({ max: 300 })), { maxLength: 12 })), ([bytes, ops]) => {
    const r = new SshReader(Buffer.from(bytes));
    refusesOnlyWith(WireError, () => {
      for (const [o, n] of ops) {
        const before = r.remaining;
        if (o === 'raw') assert.equal(r.raw(n).length, n);
        else if (o === 'end') r.end('x');
        else r[o]();
        assert.ok(r.remaining <= before && r.remaining >= 0);
      }
    }, [bytes, ops]);
  }, 1000);
});
