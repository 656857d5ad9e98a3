// Detached signatures in OpenSSH's SSHSIG format (PROTOCOL.sshsig), which
// `ssh-keygen -Y verify` checks: used for the KRL (OpenSSH 9.4+ refuses KRLs
// with embedded signatures) and for the audit log's checkpoints.

import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { sshFingerprint } from './pubkey.js';
import type { Signer } from './signer.js';
import { SshReader, SshWriter, WireError } from './wire.js';

const MAGIC = Buffer.from('SSHSIG');

/** Namespace of the signature over `/v1/ca.pub` (what servers check before trusting a new CA key list). */
export const CA_KEYS_NAMESPACE = 'jit-ssh-ca-keys';

/** Signs `message` for `namespace`; returns the armored `-----BEGIN SSH SIGNATURE-----` text. */
export async function sshsign(signer: Signer, namespace: string, message: Buffer): Promise<string> {
  const digest = createHash('sha512').update(message).digest();
  const signed = new SshWriter().raw(MAGIC).string(namespace).string('').string('sha512').string(digest).toBuffer();
  const signature = await signer.sign(signed);
  const blob = new SshWriter().raw(MAGIC).uint32(1).string(signer.publicKeyBlob).string(namespace).string('').string('sha512').string(signature).toBuffer();
  const lines = blob.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN SSH SIGNATURE-----\n${lines.join('\n')}\n-----END SSH SIGNATURE-----\n`;
}

/** A node:crypto public key for a CA public key blob (ed25519, ECDSA P-256/P-384, RSA). */
export function publicKeyObject(blob: Buffer): KeyObject {
  const r = new SshReader(blob);
  const type = r.text('key type');
  if (type === 'ssh-ed25519') return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: r.string('ed25519 key').toString('base64url') }, format: 'jwk' });
  if (type === 'ecdsa-sha2-nistp256' || type === 'ecdsa-sha2-nistp384') {
    const crv = type.endsWith('256') ? 'P-256' : 'P-384';
    r.text('curve');
    const point = r.string('point');
    const half = (point.length - 1) / 2;
    return createPublicKey({ key: { kty: 'EC', crv, x: point.subarray(1, 1 + half).toString('base64url'), y: point.subarray(1 + half).toString('base64url') }, format: 'jwk' });
  }
  if (type === 'ssh-rsa') {
    const e = r.mpint('rsa e');
    const n = r.mpint('rsa n');
    return createPublicKey({ key: { kty: 'RSA', e: e.toString('base64url'), n: n.toString('base64url') }, format: 'jwk' });
  }
  throw new WireError(`unsupported key type ${type}`);
}

/** Checks an SSH signature blob (`string alg, string sig`) made by `keyBlob` over `data`. */
export function verifySshSignature(keyBlob: Buffer, data: Buffer, signature: Buffer): boolean {
  const key = publicKeyObject(keyBlob);
  const r = new SshReader(signature);
  const alg = r.text('signature algorithm');
  const sig = r.string('signature');
  const keyType = new SshReader(keyBlob).text('key type');
  switch (alg) {
    case 'ssh-ed25519':
      return keyType === alg && cryptoVerify(null, data, key, sig);
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384': {
      if (keyType !== alg) return false;
      const half = alg.endsWith('256') ? 32 : 48;
      const inner = new SshReader(sig);
      const rs = Buffer.concat([inner.mpint('r'), inner.mpint('s')].map((b) => Buffer.concat([Buffer.alloc(Math.max(0, half - b.length)), b])));
      return rs.length === 2 * half && cryptoVerify(alg.endsWith('256') ? 'sha256' : 'sha384', data, { key, dsaEncoding: 'ieee-p1363' }, rs);
    }
    case 'rsa-sha2-512':
    case 'rsa-sha2-256':
      return keyType === 'ssh-rsa' && cryptoVerify(alg === 'rsa-sha2-512' ? 'sha512' : 'sha256', data, key, sig);
    default:
      return false;
  }
}

/**
 * Verifies an armored SSHSIG over `message` for `namespace` by one of `trusted`
 * (public key blobs); returns the signing key's blob, or throws saying why not.
 */
export function sshverify(armored: string, namespace: string, message: Buffer, trusted: readonly Buffer[]): Buffer {
  const m = /^-----BEGIN SSH SIGNATURE-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END SSH SIGNATURE-----\s*$/.exec(armored.trim());
  if (!m) throw new WireError('not an armored SSH signature');
  try {
    const r = new SshReader(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    if (!r.raw(6, 'magic').equals(MAGIC)) throw new WireError('not an SSHSIG signature');
    if (r.uint32('version') !== 1) throw new WireError('unsupported SSHSIG version');
    const key = r.string('public key');
    const ns = r.text('namespace');
    r.string('reserved');
    const hashAlg = r.text('hash algorithm');
    const signature = r.string('signature');
    r.end('signature');
    if (ns !== namespace) throw new WireError(`signature is for namespace ${JSON.stringify(ns)}, not ${JSON.stringify(namespace)}`);
    if (hashAlg !== 'sha512' && hashAlg !== 'sha256') throw new WireError(`unsupported hash algorithm ${JSON.stringify(hashAlg)}`);
    if (!trusted.some((t) => t.equals(key))) throw new WireError(`signed by ${sshFingerprint(key)}, which is not a trusted CA key`);
    const digest = createHash(hashAlg).update(message).digest();
    const signed = new SshWriter().raw(MAGIC).string(namespace).string('').string(hashAlg).string(digest).toBuffer();
    if (!verifySshSignature(key, signed, signature)) throw new WireError('signature does not verify');
    return key;
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(`malformed SSH signature: ${(e as Error).message}`);
  }
}
