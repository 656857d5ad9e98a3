// Checking a CA's signature over a certificate body: the CA public key read
// from its wire encoding, the SSH signature blob unwrapped to what node:crypto
// verifies: for reading certificates back, and, with the CA key imported once,
// for checking every certificate the CA mints before it is logged.

import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SshReader, WireError } from './wire.js';

type VerifyKey = KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' };

/** What to hand node:crypto, or `valid: false` when the algorithm cannot match the CA key. */
type Prepared = { algorithm: string; hash: string | null | undefined; key: VerifyKey; signature: Buffer } | { algorithm: string; valid: false };

export interface CaPublicKey {
  type: string;
  key: KeyObject;
}

/** A CA key from its JWK; a key node:crypto cannot import (a point off the curve, say) is an encoding fault. */
function importKey(jwk: JsonWebKey, type: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    throw new WireError(`the CA ${type} key is not a valid public key`);
  }
}

export function caPublicKey(blob: Buffer): CaPublicKey {
  const r = new SshReader(blob);
  const type = r.text('CA key type');
  if (type === 'ssh-ed25519') {
    const x = r.string('ed25519 key');
    r.end('CA key');
    return { type, key: importKey({ kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url') }, type) };
  }
  if (type.startsWith('ecdsa-sha2-')) {
    const crv = { nistp256: 'P-256', nistp384: 'P-384', nistp521: 'P-521' }[r.text('curve')];
    const point = r.string('point');
    r.end('CA key');
    if (!crv || point[0] !== 4) throw new WireError('unsupported CA ecdsa key');
    const n = (point.length - 1) / 2;
    return { type, key: importKey({ kty: 'EC', crv, x: point.subarray(1, 1 + n).toString('base64url'), y: point.subarray(1 + n).toString('base64url') }, type) };
  }
  if (type === 'ssh-rsa') {
    const e = r.mpint('rsa e');
    const n = r.mpint('rsa n');
    r.end('CA key');
    return { type, key: importKey({ kty: 'RSA', e: e.toString('base64url'), n: n.toString('base64url') }, type) };
  }
  throw new WireError(`unsupported CA key type ${type}`);
}

const ECDSA: Record<string, { half: number; hash: string }> = {
  'ecdsa-sha2-nistp256': { half: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { half: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { half: 66, hash: 'sha512' },
};
const RSA_HASH: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' };

/** Unwraps an SSH signature blob (`string alg, string sig`) for `ca`; throws WireError when it is malformed. */
function prepare(ca: CaPublicKey, sigBlob: Buffer): Prepared {
  const r = new SshReader(sigBlob);
  const algorithm = r.text('signature algorithm');
  const sig = r.string('signature');
  r.end('signature');
  if (ca.type === 'ssh-ed25519') return algorithm === ca.type ? { algorithm, hash: null, key: ca.key, signature: sig } : { algorithm, valid: false };
  if (ca.type.startsWith('ecdsa-sha2-')) {
    if (algorithm !== ca.type) return { algorithm, valid: false };
    const inner = new SshReader(sig);
    const rr = inner.mpint('ecdsa r');
    const ss = inner.mpint('ecdsa s');
    inner.end('ecdsa signature');
    // A type the curve table does not know (a crafted CA key) is verified as node:crypto defaults.
    const { half, hash } = ECDSA[ca.type] ?? { half: 0, hash: undefined };
    const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, half - b.length)), b]);
    return { algorithm, hash, key: { key: ca.key, dsaEncoding: 'ieee-p1363' }, signature: Buffer.concat([pad(rr), pad(ss)]) };
  }
  const hash = RSA_HASH[algorithm];
  return hash === undefined ? { algorithm, valid: false } : { algorithm, hash, key: ca.key, signature: sig };
}

/** Checks `sigBlob` over `body` against the CA key `caBlob`; a signature node:crypto cannot even read does not verify. */
export function verifySignature(caBlob: Buffer, body: Buffer, sigBlob: Buffer): { algorithm: string; valid: boolean } {
  const p = prepare(caPublicKey(caBlob), sigBlob);
  if ('valid' in p) return p;
  try {
    return { algorithm: p.algorithm, valid: cryptoVerify(p.hash, body, p.key, p.signature) };
  } catch {
    return { algorithm: p.algorithm, valid: false };
  }
}

/**
 * The same check for one CA key, imported once. Synchronous: an ed25519 verify
 * is tens of microseconds, less than handing it to libuv's thread pool costs
 * (npm run bench on two cores: about 1,250/s with the pool, 1,360/s without).
 */
export function signatureVerifier(caBlob: Buffer): (body: Buffer, sigBlob: Buffer) => boolean {
  const ca = caPublicKey(caBlob);
  return (body, sigBlob) => {
    const p = prepare(ca, sigBlob);
    if ('valid' in p) return false;
    try {
      return cryptoVerify(p.hash, body, p.key, p.signature);
    } catch {
      return false;
    }
  };
}
