// HTTPS settings: the certificate chain and key files, read and checked
// before anything starts.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsSettings } from './types.js';

const TLS_CERT = 'JIT_SSH_TLS_CERT (--tls-cert)';
const TLS_KEY = 'JIT_SSH_TLS_KEY (--tls-key)';

/**
 * Reads and checks the HTTPS certificate and key: both or neither, each
 * readable PEM, the key not readable by others (as ssh insists for its keys)
 * and the key the certificate's own. Every problem goes to `problems`.
 */
export function loadTls(certFile: string | undefined, keyFile: string | undefined, problems: string[]): TlsSettings | null {
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile) {
    problems.push(`${certFile ? TLS_KEY : TLS_CERT}: required with ${certFile ? TLS_CERT : TLS_KEY}; HTTPS needs both a certificate and its key`);
    return null;
  }
  const certText = readOr(certFile, TLS_CERT, problems);
  const keyText = readOr(keyFile, TLS_KEY, problems);
  if (certText === undefined || keyText === undefined) return null;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certText);
  } catch {
    problems.push(`${TLS_CERT}: ${certFile} is not a PEM certificate`);
    return null;
  }
  try {
    createPrivateKey(keyText);
  } catch (e) {
    const encrypted = /-----BEGIN (ENCRYPTED PRIVATE KEY|[A-Z ]*PRIVATE KEY-----\r?\nProc-Type: 4,ENCRYPTED)/.test(keyText) || /passphrase/i.test((e as Error).message);
    problems.push(`${TLS_KEY}: ${keyFile} is not ${encrypted ? 'an unencrypted' : 'a readable'} PEM private key`);
    return null;
  }
  const mode = statSync(keyFile).mode & 0o777;
  if ((mode & 0o007) !== 0) {
    problems.push(`${TLS_KEY}: ${keyFile} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${keyFile}`);
    return null;
  }
  try {
    createSecureContext({ cert: certText, key: keyText });
  } catch (e) {
    const mismatch = /mismatch/i.test((e as Error).message);
    problems.push(mismatch ? `${TLS_KEY}: ${keyFile} is not the key of the certificate in ${certFile}` : `${TLS_CERT}: ${certFile} and ${keyFile} cannot be used together (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
  return { cert: Buffer.from(certText), key: Buffer.from(keyText), subject: leaf.subject.replace(/\n/g, ', '), notAfter: new Date(leaf.validTo) };
}

export function readOr(file: string, name: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    problems.push(`${name}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    return undefined;
  }
}
