// Parsing and vetting of the user public keys that certificates are issued for.
// Every way a key can be unacceptable gets its own precise message: the person
// pasting it needs to know what to send instead.

import { createHash, createPublicKey } from 'node:crypto';
import { DomainError } from '../core/errors.js';
import { SshReader, WireError } from './wire.js';

export type UserKeyType =
  | 'ssh-ed25519'
  | 'ecdsa-sha2-nistp256'
  | 'ecdsa-sha2-nistp384'
  | 'ecdsa-sha2-nistp521'
  | 'ssh-rsa'
  | 'sk-ssh-ed25519@openssh.com'
  | 'sk-ecdsa-sha2-nistp256@openssh.com';

export interface UserPublicKey {
  type: UserKeyType;
  /** The key's wire encoding (what the base64 of an authorized_keys line decodes to). */
  blob: Buffer;
  /** `SHA256:...` as ssh-keygen -l prints it. */
  fingerprint: string;
  bits: number;
  comment: string;
}

export class KeyError extends DomainError {
  override name = 'KeyError';
  constructor(message: string) {
    super('invalid_public_key', message);
  }
}

const MIN_RSA_BITS = 2048;
// OpenSSH's own upper bound (SSHBUF_MAX_BIGNUM); larger keys only cost CPU.
const MAX_RSA_BITS = 16384;
const MAX_LINE = 16 * 1024;

const EC_CURVES: Record<string, { jwk: string; bytes: number }> = {
  nistp256: { jwk: 'P-256', bytes: 32 },
  nistp384: { jwk: 'P-384', bytes: 48 },
  nistp521: { jwk: 'P-521', bytes: 66 },
};

export function sshFingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Parses one OpenSSH public key line (`type base64 [comment]`) and vets it for use in a user certificate. */
export function parseUserPublicKey(input: string): UserPublicKey {
  if (typeof input !== 'string' || input.trim() === '') throw new KeyError('public key is empty');
  if (input.length > MAX_LINE) throw new KeyError(`public key is too long (${input.length} characters; at most ${MAX_LINE})`);
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(input)) {
    throw new KeyError('this is a private key; send the public key (the .pub file) and keep the private key to yourself');
  }
  if (/BEGIN SSH2 PUBLIC KEY/.test(input)) {
    throw new KeyError('RFC 4716 public keys are not accepted; send the OpenSSH one-line form (ssh-keygen -i -f KEY converts it)');
  }
  if (input.includes('\0')) throw new KeyError('public key contains a NUL byte');
  const lines = input.trim().split(/\r?\n/);
  if (lines.length !== 1) throw new KeyError('public key must be a single line');
  const fields = lines[0]!.trim().split(/[ \t]+/);
  if (fields.length < 2) throw new KeyError('public key must be "TYPE BASE64 [COMMENT]"');
  const [lineType, b64] = fields as [string, string];
  const comment = fields.slice(2).join(' ');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new KeyError('public key data is not base64');
  const blob = Buffer.from(b64, 'base64');
  if (blob.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
    throw new KeyError('public key data is not canonical base64');
  }
  const key = parsePublicKeyBlob(blob);
  if (key.type !== lineType) {
    throw new KeyError(`key type in the line (${lineType}) does not match the key data (${key.type})`);
  }
  return { ...key, comment };
}

/** Parses and vets a public key blob. */
export function parsePublicKeyBlob(blob: Buffer): Omit<UserPublicKey, 'comment'> {
  const r = new SshReader(blob);
  let type: string;
  try {
    type = r.text('key type');
  } catch {
    throw new KeyError('public key data is truncated or not an SSH public key');
  }
  if (type.endsWith('-cert-v01@openssh.com')) {
    throw new KeyError('this is a certificate, not a public key; send the plain public key (the .pub file)');
  }
  try {
    const bits = vetKeyBody(type, r);
    r.end('public key');
    return { type: type as UserKeyType, blob, fingerprint: sshFingerprint(blob), bits };
  } catch (e) {
    if (e instanceof WireError) throw new KeyError(`malformed ${type} public key: ${e.message}`);
    throw e;
  }
}

function vetKeyBody(type: string, r: SshReader): number {
  switch (type) {
    case 'ssh-ed25519':
      return vetEd25519(r.string('ed25519 key'));
    case 'sk-ssh-ed25519@openssh.com': {
      const bits = vetEd25519(r.string('ed25519 key'));
      vetApplication(r.text('application'));
      return bits;
    }
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
      return vetEcdsa(type.slice('ecdsa-sha2-'.length), r);
    case 'sk-ecdsa-sha2-nistp256@openssh.com': {
      const bits = vetEcdsa('nistp256', r);
      vetApplication(r.text('application'));
      return bits;
    }
    case 'ssh-rsa':
      return vetRsa(r.mpint('rsa e'), r.mpint('rsa n'));
    case 'ssh-dss':
      throw new KeyError('DSA keys are not accepted (OpenSSH disabled them as too weak); use ed25519: ssh-keygen -t ed25519');
    default:
      throw new KeyError(`unsupported key type ${JSON.stringify(type.slice(0, 64))}; use ed25519, ecdsa, RSA (2048 bits or more) or a FIDO security key`);
  }
}

function vetEd25519(pk: Buffer): number {
  if (pk.length !== 32) throw new KeyError(`ed25519 key must be 32 bytes, got ${pk.length}`);
  return 256;
}

function vetApplication(app: string): void {
  // OpenSSH requires security-key applications to be "ssh:..." (or an https origin for webauthn).
  if (!/^(ssh:|https:\/\/)/.test(app)) throw new KeyError(`security key application ${JSON.stringify(app.slice(0, 64))} must start with "ssh:"`);
}

function vetEcdsa(curve: string, r: SshReader): number {
  const inner = r.text('ecdsa curve');
  if (inner !== curve) throw new KeyError(`ecdsa key says curve ${JSON.stringify(inner.slice(0, 32))} but its type says ${curve}`);
  const spec = EC_CURVES[curve]!;
  const point = r.string('ecdsa point');
  if (point.length !== 1 + 2 * spec.bytes || point[0] !== 0x04) {
    throw new KeyError(`ecdsa ${curve} point must be uncompressed (${1 + 2 * spec.bytes} bytes)`);
  }
  try {
    // Importing checks that the point lies on the curve.
    createPublicKey({
      key: {
        kty: 'EC',
        crv: spec.jwk,
        x: point.subarray(1, 1 + spec.bytes).toString('base64url'),
        y: point.subarray(1 + spec.bytes).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    throw new KeyError(`ecdsa ${curve} point is not on the curve`);
  }
  return spec.bytes === 66 ? 521 : spec.bytes * 8;
}

function vetRsa(e: Buffer, n: Buffer): number {
  const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  if (bits < MIN_RSA_BITS) throw new KeyError(`RSA key is ${bits} bits; at least ${MIN_RSA_BITS} are required (ssh-keygen -t ed25519 makes a better key)`);
  if (bits > MAX_RSA_BITS) throw new KeyError(`RSA key is ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
  const eLast = e[e.length - 1] ?? 0;
  if (e.length === 0 || (eLast & 1) === 0 || (e.length === 1 && eLast < 3)) throw new KeyError('RSA public exponent is invalid');
  if ((n[n.length - 1]! & 1) === 0) throw new KeyError('RSA modulus is even');
  return bits;
}
