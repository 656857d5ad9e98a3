// Keys for tests: CA signers made with node:crypto, user keys made by the real
// ssh-keygen (so what we parse is what users have).

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { createKeySigner, type Signer } from '../../src/ssh/signer.js';
import { SshWriter } from '../../src/ssh/wire.js';

/** A temporary directory removed when the test file ends. */
export function tempDir(prefix = 'jit-ssh-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export type CaKind = 'ed25519' | 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-3072';
export const CA_KINDS: CaKind[] = ['ed25519', 'ecdsa-p256', 'ecdsa-p384', 'rsa-3072'];

export function caSigner(kind: CaKind): Signer {
  switch (kind) {
    case 'ed25519':
      return createKeySigner(generateKeyPairSync('ed25519').privateKey);
    case 'ecdsa-p256':
      return createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    case 'ecdsa-p384':
      return createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    case 'rsa-3072':
      return createKeySigner(generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey);
  }
}

export interface UserKeyFile {
  /** Path of the private key; the public key is at `${path}.pub`. */
  path: string;
  publicLine: string;
}

/** Makes a user key with ssh-keygen, e.g. userKey(dir, 'ed25519') or userKey(dir, 'rsa', 2048). */
export function userKey(dir: string, type: 'ed25519' | 'ecdsa' | 'rsa' | 'dsa', bits?: number, name = `${type}${bits ?? ''}`): UserKeyFile {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', file], { stdio: 'ignore' });
  return { path: file, publicLine: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/**
 * A FIDO security-key public key line. No authenticator is needed to encode
 * one: the public half is a plain key plus the application string.
 */
export function securityKeyLine(kind: 'sk-ed25519' | 'sk-ecdsa', application = 'ssh:'): string {
  const w = new SshWriter();
  if (kind === 'sk-ed25519') {
    const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    w.string('sk-ssh-ed25519@openssh.com').string(Buffer.from(jwk.x!, 'base64url')).string(application);
    return `sk-ssh-ed25519@openssh.com ${w.toBuffer().toString('base64')} sk@test`;
  }
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  w.string('sk-ecdsa-sha2-nistp256@openssh.com').string('nistp256').string(point).string(application);
  return `sk-ecdsa-sha2-nistp256@openssh.com ${w.toBuffer().toString('base64')} sk@test`;
}
