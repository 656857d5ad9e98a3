import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hashPassword, passwordProblem, verifyPassword } from '../../src/auth/password.js';
import { createSecretBox, loadOrCreateSecretKey } from '../../src/auth/secret-box.js';
import { hashToken, looksLikeToken, newToken } from '../../src/auth/tokens.js';
import { enrollmentUri, newTotpSecret, verifyTotp } from '../../src/auth/totp.js';
import { tempDir } from '../helpers/keys.js';

test('ok: scrypt hashes carry their parameters, verify, and ask for a rehash when the cost rises', async () => {
  const hash = await hashPassword('correct horse battery staple', 14);
  assert.match(hash, /^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(await verifyPassword(hash, 'correct horse battery staple', 14), { ok: true, needsRehash: false });
  assert.deepEqual(await verifyPassword(hash, 'correct horse battery staple', 15), { ok: true, needsRehash: true });
  assert.deepEqual(await verifyPassword(hash, 'correct horse battery stapl', 14), { ok: false, needsRehash: false });
  assert.notEqual(await hashPassword('correct horse battery staple', 14), hash, 'salts must differ');
  assert.equal((await verifyPassword('garbage', 'x', 14)).ok, false);
});

test('ok/fail: passwords need 12 characters; up to 1 KiB is fine; Unicode forms match', async () => {
  assert.match(passwordProblem('short')!, /at least 12/);
  assert.equal(passwordProblem('x'.repeat(1024)), null);
  assert.match(passwordProblem('x'.repeat(1025))!, /at most 1024 bytes/);
  const hash = await hashPassword('café au lait now', 14); // é precomposed
  assert.equal((await verifyPassword(hash, 'cafe\u0301 au lait now', 14)).ok, true);
});

test('ok: the enrollment URI works in an independent TOTP implementation (oathtool)', async () => {
  const secret = newTotpSecret();
  assert.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  const uri = enrollmentUri('alice', secret);
  assert.equal(uri, `otpauth://totp/jit-ssh:alice?secret=${secret}&issuer=jit-ssh`);
  const fromUri = new URL(uri).searchParams.get('secret')!;
  const now = Math.floor(Date.now() / 1000);
  const code = execFileSync('oathtool', ['--totp', '-b', fromUri, '-N', `@${now}`], { encoding: 'utf8' }).trim();
  assert.equal(await verifyTotp(secret, code, now), Math.floor(now / 30));
});

test('ok/fail: one step of drift either way is accepted, two are not; junk is refused', async () => {
  const secret = newTotpSecret();
  const now = 1_800_000_015; // the middle of a step
  const at = (t: number) => execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${t}`], { encoding: 'utf8' }).trim();
  assert.equal(await verifyTotp(secret, at(now - 30), now), Math.floor(now / 30) - 1);
  assert.equal(await verifyTotp(secret, at(now + 30), now), Math.floor(now / 30) + 1);
  assert.equal(await verifyTotp(secret, at(now - 60), now), null);
  assert.equal(await verifyTotp(secret, at(now + 60), now), null);
  for (const junk of ['', '12345', '1234567', 'abcdef', ' 123456']) assert.equal(await verifyTotp(secret, junk, now), null);
});

test('ok/fail: sealed secrets open only with the same key and the same owner', () => {
  const box = createSecretBox(Buffer.alloc(32, 1));
  const sealed = box.seal('JBSWY3DPEHPK3PXP', 'user:alice');
  assert.ok(!sealed.includes('JBSWY3DPEHPK3PXP'));
  assert.equal(box.open(sealed, 'user:alice'), 'JBSWY3DPEHPK3PXP');
  assert.throws(() => box.open(sealed, 'user:mallory'), /does not open/);
  assert.throws(() => createSecretBox(Buffer.alloc(32, 2)).open(sealed, 'user:alice'), /does not open/);
  const raw = Buffer.from(sealed.slice(3), 'base64');
  raw[14]! ^= 1;
  assert.throws(() => box.open(`v1:${raw.toString('base64')}`, 'user:alice'), /does not open/);
});

test('ok/fail: the embedded secret key is made once, 0600, and refused when others can read it', async () => {
  const dir = tempDir();
  const key = await loadOrCreateSecretKey(dir);
  assert.equal(key.length, 32);
  assert.equal(statSync(path.join(dir, 'secret.key')).mode & 0o777, 0o600);
  assert.deepEqual(await loadOrCreateSecretKey(dir), key);
  chmodSync(path.join(dir, 'secret.key'), 0o644);
  await assert.rejects(loadOrCreateSecretKey(dir), /accessible by group or others/);
  chmodSync(path.join(dir, 'secret.key'), 0o600);
  writeFileSync(path.join(dir, 'secret.key'), 'short\n');
  await assert.rejects(loadOrCreateSecretKey(dir), /32-byte/);
});

test('ok: tokens are 256 random bits with a recognisable prefix; only their hash is kept', () => {
  const a = newToken();
  assert.ok(looksLikeToken(a));
  assert.notEqual(newToken(), a);
  assert.equal(hashToken(a).length, 32);
  assert.ok(!looksLikeToken('jit_short') && !looksLikeToken(a + 'x'));
});
