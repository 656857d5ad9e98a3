// Keys and certificates on the engineer's machine. A fresh ed25519 key pair is
// made in memory for every certificate; the private key is written only under
// $JIT_SSH_HOME (0600) and, when an agent runs, handed to it with a lifetime
// equal to the certificate's, so the agent forgets it when access ends.

import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
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
