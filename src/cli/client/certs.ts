// Keys and certificates on the engineer's machine. A fresh ed25519 key pair is
// made in memory for every certificate; the private key is written only under
// $JIT_SSH_HOME (0600) and, when an agent runs, handed to it with a lifetime
// equal to the certificate's, so the agent forgets it when access ends.
// With --sk the key is made on a FIDO security key by ssh-keygen instead: the
// file then holds only the key's handle, useless without the security key.

import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeOpensshEd25519 } from '../../ssh/ca-key.js';
import { parseCertificate } from '../../ssh/certificate-parse.js';
import { publicKeyLine, sshPublicKeyBlob } from '../../ssh/signer.js';
import type { Home } from './home.js';

export interface LocalCert {
  role: string;
  keyPath: string;
  certPath: string;
  principals: string[];
  keyId: string;
  serial: string;
  /** The grant (request) the certificate came from, from its key ID. */
  grantId: string | null;
  validBefore: Date;
}

export function newKeyPair(comment: string): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { keyType, blob } = sshPublicKeyBlob(privateKey);
  return { privateKey: encodeOpensshEd25519(privateKey, comment), publicKey: publicKeyLine({ keyType, publicKeyBlob: blob }, comment) };
}

/** The ssh-keygen command line that makes a key on a security key, as the helper runs it (and tells people). */
export const SECURITY_KEY_KEYGEN = 'ssh-keygen -t ed25519-sk -O verify-required';

/**
 * Makes a key pair on a FIDO security key with ssh-keygen, which asks the person at the key to
 * touch it (and for its PIN, where the key has one set) on the terminal: its standard input is
 * the helper's, what it prints goes to stderr (stdout stays for --json), and its error messages
 * become one line. `-O verify-required` marks the key so that ssh asks the security key to verify
 * its user (PIN or biometric) at every login: a certificate of a `require_key: fido` role carries
 * the `verify-required` critical option, and sshd refuses signatures made without that check.
 */
export async function newSecurityKeyPair(home: Home, comment: string, env: NodeJS.ProcessEnv): Promise<{ privateKey: string; publicKey: string }> {
  await home.ensure();
  const dir = await mkdtemp(path.join(home.keysDir, '.sk-'));
  try {
    const file = path.join(dir, 'key');
    // No passphrase on the file: it holds a key handle, and the secret never leaves the security key.
    const args = ['-q', '-t', 'ed25519-sk', '-O', 'verify-required', '-N', '', '-C', comment, '-f', file];
    const { code, stderr, error } = await new Promise<{ code: number | null; stderr: string; error: Error | null }>((resolve) => {
      const child = spawn('ssh-keygen', args, { stdio: ['inherit', 2, 'pipe'], env });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (e) => resolve({ code: null, stderr, error: e }));
      child.on('close', (c) => resolve({ code: c, stderr, error: null }));
    });
    if (error) throw new Error(`cannot run ssh-keygen to make a security key: ${error.message} (--sk needs OpenSSH 8.2 or later)`);
    if (code !== 0) {
      const why = stderr.trim().split('\n').filter(Boolean).pop() ?? `exit status ${code}`;
      const hint = /device not found/i.test(why) ? 'no FIDO security key found: plug one in and try again' : 'a FIDO2 security key with a PIN (or a fingerprint) set is needed';
      throw new Error(`${SECURITY_KEY_KEYGEN} failed: ${why} (${hint})`);
    }
    return { privateKey: await readFile(file, 'utf8'), publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function readLocalCert(home: Home, role: string): Promise<LocalCert | null> {
  const paths = home.keyPaths(role);
  try {
    const line = (await readFile(paths.cert, 'utf8')).trim();
    const c = parseCertificate(Buffer.from(line.split(/\s+/)[1] ?? '', 'base64'));
    return {
      role,
      keyPath: paths.key,
      certPath: paths.cert,
      principals: c.principals,
      keyId: c.keyId,
      serial: c.serial.toString(),
      grantId: /\breq=(\S+)/.exec(c.keyId)?.[1] ?? null,
      validBefore: new Date(Number(c.validBefore) * 1000),
    };
  } catch {
    return null;
  }
}

export async function storeCert(home: Home, role: string, privateKey: string, publicKey: string, certificate: string): Promise<LocalCert> {
  const paths = home.keyPaths(role);
  // Key first: ssh pairs `<key>` with `<key>-cert.pub`, and a new certificate must never sit beside an old key.
  await home.write(paths.key, privateKey);
  await home.write(paths.pub, publicKey + '\n', 0o600);
  await home.write(paths.cert, certificate + '\n');
  const local = await readLocalCert(home, role);
  if (!local) throw new Error(`the certificate written to ${paths.cert} cannot be read back`);
  return local;
}

const run = promisify(execFile);

/** Adds key + certificate to the running agent until the certificate expires; false when no agent runs. */
export async function addToAgent(cert: LocalCert, env: NodeJS.ProcessEnv, now = Date.now()): Promise<boolean> {
  if (!env['SSH_AUTH_SOCK']) return false;
  const seconds = Math.floor((cert.validBefore.getTime() - now) / 1000);
  if (seconds <= 0) return false;
  await run('ssh-add', ['-q', '-t', String(seconds), cert.keyPath], { env });
  return true;
}
