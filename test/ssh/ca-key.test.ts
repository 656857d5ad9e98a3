import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { generateCaKey, loadCaKey, loadTrustedKeys } from '../../src/ssh/ca-key.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { tempDir } from '../helpers/keys.js';

const dir = tempDir();

function keygen(name: string, args: string[], passphrase = ''): string {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-N', passphrase, '-C', name, '-f', file], { stdio: 'ignore' });
  return file;
}

const fingerprintOf = (file: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' }).split(' ')[1];

test('ok: a generated CA key is ed25519, mode 0600, readable by ssh-keygen, and never overwritten', async () => {
  const file = path.join(dir, 'gen', 'ca_key');
  assert.equal(await generateCaKey(file), true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
  assert.equal(derived, readFileSync(`${file}.pub`, 'utf8').trim());
  const signer = await loadCaKey(file);
  assert.equal(signer.keyType, 'ssh-ed25519');
  assert.equal(publicKeyLine(signer, 'jit-ssh-ca'), derived);
  const before = readFileSync(file);
  assert.equal(await generateCaKey(file), false);
  assert.deepEqual(readFileSync(file), before);
});

test('ok: loads ssh-keygen CA keys of every supported type, with and without a passphrase', async () => {
  const cases: Array<[string, string[], string, string]> = [
    ['ed25519', ['-t', 'ed25519'], '', 'ssh-ed25519'],
    ['ecdsa256', ['-t', 'ecdsa', '-b', '256'], 'pass phrase', 'ecdsa-sha2-nistp256'],
    ['ecdsa384', ['-t', 'ecdsa', '-b', '384'], '', 'ecdsa-sha2-nistp384'],
    ['rsa3072', ['-t', 'rsa', '-b', '3072'], 's3cret', 'ssh-rsa'],
    ['pem-ecdsa', ['-t', 'ecdsa', '-b', '256', '-m', 'PEM'], '', 'ecdsa-sha2-nistp256'],
  ];
  for (const [name, args, pass, type] of cases) {
    const file = keygen(name, args, pass);
    const signer = await loadCaKey(file, pass || undefined);
    assert.equal(signer.keyType, type, name);
    assert.equal(signer.fingerprint, fingerprintOf(file), name);
    assert.equal(publicKeyLine(signer), readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' '), name);
  }
});

test('fail: a CA key readable by group or others is refused, as ssh refuses it', async () => {
  const file = keygen('open', ['-t', 'ed25519']);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(file, mode);
    await assert.rejects(loadCaKey(file), new RegExp(`accessible by group or others \\(mode 0${mode.toString(8)}\\); run: chmod 600 `));
  }
  chmodSync(file, 0o400);
  await loadCaKey(file);
});

test('fail: passphrase missing or wrong is said plainly', async () => {
  const file = keygen('locked', ['-t', 'ed25519'], 'right');
  await assert.rejects(loadCaKey(file), /passphrase-protected; set JIT_SSH_CA_KEY_PASSPHRASE/);
  await assert.rejects(loadCaKey(file, 'wrong'), /wrong passphrase/);
});

test('fail: weak or unsupported CA keys, garbage and missing files are refused', async () => {
  await assert.rejects(loadCaKey(keygen('rsa2048', ['-t', 'rsa', '-b', '2048'])), /RSA 2048 bits; a CA needs at least 3072/);
  await assert.rejects(loadCaKey(keygen('ecdsa521', ['-t', 'ecdsa', '-b', '521'])), /ecdsa nistp521; use ed25519, ecdsa P-256\/P-384 or RSA/);
  const junk = path.join(dir, 'junk');
  writeFileSync(junk, 'not a key\n', { mode: 0o600 });
  await assert.rejects(loadCaKey(junk), /not a readable OpenSSH private key/);
  await assert.rejects(loadCaKey(path.join(dir, 'absent')), /does not exist/);
});

test('ok: older CA public keys are read for rotation; a bad line is named by file and line', async () => {
  const a = readFileSync(`${keygen('old1', ['-t', 'ed25519'])}.pub`, 'utf8').trim();
  const b = readFileSync(`${keygen('old2', ['-t', 'ecdsa', '-b', '384'])}.pub`, 'utf8').trim();
  const file = path.join(dir, 'trusted.pub');
  const c = readFileSync(`${keygen('old3', ['-t', 'ed25519'])}.pub`, 'utf8').trim();
  writeFileSync(file, `# rotated 2026-10\n${a}\n\n${b}\n@retired ${c}\n`);
  assert.deepEqual(await loadTrustedKeys(file), { trusted: [a, b], retired: [c] });
  writeFileSync(file, `${a}\nssh-ed25519 AAAAbroken\n`);
  await assert.rejects(loadTrustedKeys(file), new RegExp(`${file}:2: `));
});

// A certificate is signed by a CA; it is not one. Offered where a CA key belongs, it is refused, as
// sshd's TrustedUserCAKeys compares plain key types only and would never match it.
test('fail-cert-as-trusted-ca-key: a certificate line in the JIT_SSH_TRUSTED_CA_KEYS file is refused, named by file and line', async () => {
  const ca = keygen('issuing-ca', ['-t', 'ed25519']);
  const user = keygen('cert-holder', ['-t', 'ed25519']);
  execFileSync('ssh-keygen', ['-q', '-s', ca, '-I', 'x', '-n', 'root', `${user}.pub`]);
  const file = path.join(dir, 'trusted-with-cert.pub');
  writeFileSync(file, `${readFileSync(`${ca}.pub`, 'utf8').trim()}\n${readFileSync(`${user}-cert.pub`, 'utf8').trim()}\n`);
  await assert.rejects(loadTrustedKeys(file), new RegExp(`${file}:2: not a CA public key type \\(ssh-ed25519-cert-v01@openssh.com\\)`));
  writeFileSync(file, `@retired ${readFileSync(`${user}-cert.pub`, 'utf8').trim()}\n`);
  await assert.rejects(loadTrustedKeys(file), new RegExp(`${file}:1: not a CA public key type`));
});

test('fail-cert-as-ca-key: a certificate or a public key given as the CA key file is refused', async () => {
  const ca = keygen('issuing-ca2', ['-t', 'ed25519']);
  const user = keygen('cert-holder2', ['-t', 'ed25519']);
  execFileSync('ssh-keygen', ['-q', '-s', ca, '-I', 'x', '-n', 'root', `${user}.pub`]);
  for (const file of [`${user}-cert.pub`, `${ca}.pub`]) {
    chmodSync(file, 0o600);
    await assert.rejects(loadCaKey(file), /not a readable OpenSSH private key/, file);
  }
});
