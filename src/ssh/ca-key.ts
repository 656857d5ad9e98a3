// Loading, generating and publishing CA keys.

import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import sshpk from 'sshpk';
import { parsePublicKeyBlob, KeyError } from './pubkey.js';
import { createKeySigner, publicKeyLine, sshPublicKeyBlob, type Signer } from './signer.js';
import { SshWriter } from './wire.js';

export class CaKeyError extends Error {
  override name = 'CaKeyError';
}

const MIN_CA_RSA_BITS = 3072;

/** Refuses a key file that others can read, as ssh does ("UNPROTECTED PRIVATE KEY FILE"). */
async function checkPermissions(file: string): Promise<void> {
  const st = await fs.stat(file);
  if (!st.isFile()) throw new CaKeyError(`CA key ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new CaKeyError(`CA key ${file} is accessible by group or others (mode ${mode}); run: chmod 600 ${file}`);
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new CaKeyError(`CA key ${file} is owned by uid ${st.uid}, not by the user running the CA (uid ${process.getuid()})`);
  }
}

function toKeyObject(key: sshpk.PrivateKey): KeyObject {
  if (key.type === 'ed25519') {
    const part = (name: string) => key.parts.find((p) => p.name === name)!.data;
    return createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: part('k').toString('base64url'), x: part('A').toString('base64url') },
      format: 'jwk',
    });
  }
  return createPrivateKey(key.toString('pkcs8'));
}

function vetCaKey(key: sshpk.PrivateKey, file: string): void {
  if (key.type === 'ed25519') return;
  if (key.type === 'ecdsa' && (key.curve === 'nistp256' || key.curve === 'nistp384')) return;
  if (key.type === 'rsa') {
    if (key.size < MIN_CA_RSA_BITS) throw new CaKeyError(`CA key ${file} is RSA ${key.size} bits; a CA needs at least ${MIN_CA_RSA_BITS}`);
    return;
  }
  const what = key.type === 'ecdsa' ? `ecdsa ${key.curve}` : key.type;
  throw new CaKeyError(`CA key ${file} is ${what}; use ed25519, ecdsa P-256/P-384 or RSA ≥ ${MIN_CA_RSA_BITS}`);
}

/** Loads an OpenSSH (or PEM) private key file as the CA signer. */
export async function loadCaKey(file: string, passphrase?: string): Promise<Signer> {
  try {
    await checkPermissions(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CaKeyError(`CA key ${file} does not exist`);
    throw e;
  }
  const data = await fs.readFile(file);
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(data, 'auto', passphrase ? { passphrase } : undefined);
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'KeyEncryptedError') throw new CaKeyError(`CA key ${file} is passphrase-protected; set JIT_SSH_CA_KEY_PASSPHRASE`);
    if (/passphrase/i.test((e as Error).message)) throw new CaKeyError(`CA key ${file}: wrong passphrase`);
    throw new CaKeyError(`CA key ${file} is not a readable OpenSSH private key`);
  }
  vetCaKey(key, file);
  // createKeySigner checks that the key signs for its public half.
  return createKeySigner(toKeyObject(key));
}

/** Serialises an ed25519 key in the unencrypted openssh-key-v1 format that ssh-keygen writes. */
export function encodeOpensshEd25519(privateKey: KeyObject, comment: string): string {
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  const { blob } = sshPublicKeyBlob(privateKey);
  const check = randomBytes(4).readUInt32BE(0);
  const priv = new SshWriter()
    .uint32(check)
    .uint32(check)
    .string('ssh-ed25519')
    .string(pub)
    .string(Buffer.concat([seed, pub]))
    .string(comment);
  let body = priv.toBuffer();
  const pad = (8 - (body.length % 8)) % 8;
  body = Buffer.concat([body, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const file = new SshWriter()
    .raw(Buffer.from('openssh-key-v1\0', 'binary'))
    .string('none')
    .string('none')
    .string('')
    .uint32(1)
    .string(blob)
    .string(body)
    .toBuffer()
    .toString('base64');
  const lines = file.match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * Creates a new ed25519 CA key at `file` (mode 0600, never overwriting) and its
 * `.pub` beside it. Returns false when a key already exists there.
 */
export async function generateCaKey(file: string, comment = 'jit-ssh-ca'): Promise<boolean> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  let handle: fs.FileHandle;
  try {
    // O_EXCL: two instances starting at once cannot both write a key.
    handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await handle.writeFile(encodeOpensshEd25519(privateKey, comment));
    await handle.sync();
  } finally {
    await handle.close();
  }
  const signer = createKeySigner(privateKey);
  await fs.writeFile(`${file}.pub`, publicKeyLine(signer, comment) + '\n', { mode: 0o644 });
  return true;
}

const CA_PUBLIC_TYPES = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);

export interface TrustedKeys {
  /** Older CA keys servers still trust: published in `/v1/ca.pub` beside the signer. */
  trusted: string[];
  /** Retired CA keys: no longer published, kept to verify what they once signed (audit checkpoints). */
  retired: string[];
}

/**
 * Reads the extra CA public keys of a rotation (one OpenSSH line each, `#`
 * comments): keys still trusted, and keys marked `@retired` at the start of
 * their line.
 */
export async function loadTrustedKeys(file: string): Promise<TrustedKeys> {
  const text = await fs.readFile(file, 'utf8');
  const out: TrustedKeys = { trusted: [], retired: [] };
  text.split('\n').forEach((raw, i) => {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const retired = /^@retired\s/.test(line);
    if (retired) line = line.slice('@retired'.length).trim();
    const [type, b64, ...rest] = line.split(/\s+/);
    try {
      if (!type || !b64 || !CA_PUBLIC_TYPES.has(type)) throw new KeyError(`not a CA public key type (${type})`);
      const key = parsePublicKeyBlob(Buffer.from(b64, 'base64'));
      if (key.type !== type) throw new KeyError('type does not match key data');
      (retired ? out.retired : out.trusted).push([type, b64, ...rest].join(' '));
    } catch (e) {
      throw new CaKeyError(`${file}:${i + 1}: ${(e as Error).message}`);
    }
  });
  return out;
}
