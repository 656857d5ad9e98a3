// Shared pieces for the certificate tests: the user key kinds we certify (made
// by the real ssh-keygen, or encoded for FIDO keys), the names OpenSSH prints
// for them, and random 64-bit serials.

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CertificateSpec } from '../../src/ssh/certificate.js';
import { parseUserPublicKey, type UserKeyType, type UserPublicKey } from '../../src/ssh/pubkey.js';
import type { Signer } from '../../src/ssh/signer.js';
import { securityKeyLine, userKey, type CaKind } from './keys.js';

export type UserKeyKind = 'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'sk-ed25519' | 'sk-ecdsa';

export interface UserKeyKindInfo {
  type: UserKeyType;
  bits: number;
  /** What `ssh-keygen -l` prints in parentheses. */
  label: string;
}

export const USER_KEY_KINDS: Record<UserKeyKind, UserKeyKindInfo> = {
  ed25519: { type: 'ssh-ed25519', bits: 256, label: 'ED25519' },
  'ecdsa-256': { type: 'ecdsa-sha2-nistp256', bits: 256, label: 'ECDSA' },
  'ecdsa-384': { type: 'ecdsa-sha2-nistp384', bits: 384, label: 'ECDSA' },
  'ecdsa-521': { type: 'ecdsa-sha2-nistp521', bits: 521, label: 'ECDSA' },
  'rsa-2048': { type: 'ssh-rsa', bits: 2048, label: 'RSA' },
  'rsa-3072': { type: 'ssh-rsa', bits: 3072, label: 'RSA' },
  'rsa-4096': { type: 'ssh-rsa', bits: 4096, label: 'RSA' },
  'sk-ed25519': { type: 'sk-ssh-ed25519@openssh.com', bits: 256, label: 'ED25519-SK' },
  'sk-ecdsa': { type: 'sk-ecdsa-sha2-nistp256@openssh.com', bits: 256, label: 'ECDSA-SK' },
};

/** The certificate type name OpenSSH uses for a key type. */
export const CERT_TYPE: Record<UserKeyType, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
  'sk-ssh-ed25519@openssh.com': 'sk-ssh-ed25519-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com': 'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
};

/** The CA's key type and the signature algorithm its certificates must carry. */
export const CA_INFO: Record<CaKind, { keyType: Signer['keyType']; label: string; signatureAlgorithm: string }> = {
  ed25519: { keyType: 'ssh-ed25519', label: 'ED25519', signatureAlgorithm: 'ssh-ed25519' },
  'ecdsa-p256': { keyType: 'ecdsa-sha2-nistp256', label: 'ECDSA', signatureAlgorithm: 'ecdsa-sha2-nistp256' },
  'ecdsa-p384': { keyType: 'ecdsa-sha2-nistp384', label: 'ECDSA', signatureAlgorithm: 'ecdsa-sha2-nistp384' },
  'rsa-3072': { keyType: 'ssh-rsa', label: 'RSA', signatureAlgorithm: 'rsa-sha2-512' },
};

export interface TestUserKey {
  kind: UserKeyKind;
  /** The public key file (`ssh-keygen -l -f` reads it). */
  pubFile: string;
  line: string;
  key: UserPublicKey;
}

/** Makes a user key of the given kind in `dir`: ssh-keygen for plain keys, an encoded line for FIDO keys. */
export function makeUserKey(dir: string, kind: UserKeyKind): TestUserKey {
  let pubFile: string;
  let line: string;
  if (kind === 'sk-ed25519' || kind === 'sk-ecdsa') {
    line = securityKeyLine(kind);
    pubFile = path.join(dir, `${kind}.pub`);
    writeFileSync(pubFile, line + '\n');
  } else {
    const [type, bits] = kind.split('-') as ['ed25519' | 'ecdsa' | 'rsa', string | undefined];
    const made = userKey(dir, type, bits ? Number(bits) : undefined, kind);
    pubFile = `${made.path}.pub`;
    line = made.publicLine;
  }
  return { kind, pubFile, line, key: parseUserPublicKey(line) };
}

/** A random serial in [2^62, 2^64): big enough that any 53-bit or signed-64-bit shortcut would show. */
export function randomSerial(): bigint {
  const span = (1n << 64n) - (1n << 62n);
  return (1n << 62n) + (randomBytes(8).readBigUInt64BE() % span);
}

/** A spec with every field set; tests override what they exercise. */
export function fullSpec(publicKey: UserPublicKey, overrides: Partial<CertificateSpec> = {}): CertificateSpec {
  return {
    publicKey,
    serial: randomSerial(),
    keyId: 'grant-42 alice@example.com',
    principals: ['deploy', 'web'],
    validAfter: 1_780_000_000,
    validBefore: 1_780_000_000 + 8 * 3600 + 1234,
    // Deliberately not in byte order: the certificate must carry them sorted.
    extensions: ['permit-pty', 'permit-agent-forwarding', 'permit-X11-forwarding', 'permit-port-forwarding'],
    criticalOptions: { 'source-address': '10.0.0.0/8,127.0.0.1/32', 'force-command': 'uptime' },
    ...overrides,
  };
}

/** The extensions of fullSpec() in byte order, as every reader must see them. */
export const SORTED_EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty'];
