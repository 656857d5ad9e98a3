// The CA signer: the only object that holds CA private key material. Signing
// goes through node:crypto (native, and asynchronous on libuv's thread pool so
// the event loop stays free); the key itself never leaves this module.

import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { sshFingerprint } from './pubkey.js';
import { SshWriter } from './wire.js';

export type CaKeyType = 'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ssh-rsa';

/**
 * What certificate minting needs from a CA key. Implemented here over a
 * node:crypto private key; a KMS or HSM can implement the same interface.
 */
export interface Signer {
  readonly keyType: CaKeyType;
  /** The CA public key's wire encoding (the certificate's "signature key" field). */
  readonly publicKeyBlob: Buffer;
  /** `SHA256:...` fingerprint of the CA public key. */
  readonly fingerprint: string;
  /** Signs `data` and returns the SSH signature blob (`string alg, string sig`). */
  sign(data: Buffer): Promise<Buffer>;
}

export function publicKeyLine(signer: Pick<Signer, 'keyType' | 'publicKeyBlob'>, comment = ''): string {
  return `${signer.keyType} ${signer.publicKeyBlob.toString('base64')}${comment ? ' ' + comment : ''}`;
}

/** Encodes a node:crypto public key as an SSH public key blob. */
export function sshPublicKeyBlob(pub: KeyObject): { keyType: CaKeyType; blob: Buffer } {
  const jwk = pub.export({ format: 'jwk' });
  const w = new SshWriter();
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    w.string('ssh-ed25519').string(Buffer.from(jwk.x!, 'base64url'));
    return { keyType: 'ssh-ed25519', blob: w.toBuffer() };
  }
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384')) {
    const curve = jwk.crv === 'P-256' ? 'nistp256' : 'nistp384';
    const keyType = `ecdsa-sha2-${curve}` as const;
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    w.string(keyType).string(curve).string(point);
    return { keyType, blob: w.toBuffer() };
  }
  if (jwk.kty === 'RSA') {
    w.string('ssh-rsa').mpint(Buffer.from(jwk.e!, 'base64url')).mpint(Buffer.from(jwk.n!, 'base64url'));
    return { keyType: 'ssh-rsa', blob: w.toBuffer() };
  }
  throw new Error(`unsupported CA key (${jwk.kty} ${jwk.crv ?? ''})`);
}

function signAsync(alg: string | null, data: Buffer, key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    cryptoSign(alg, data, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
}

/**
 * The signers createKeySigner made: node:crypto signing in this process with
 * a key pair checked when it was loaded (selfTest). Membership, not a
 * property, so a copy or a wrapper (`{ ...signer, sign }`) is never taken for one.
 */
const IN_PROCESS = new WeakSet<Signer>();

/**
 * Whether `signer` signs in this process with node:crypto. The issuer
 * re-verifies every signature from any other signer (an agent, a KMS, an HSM,
 * a command): those bytes come from outside. node:crypto's own signatures are
 * not re-verified per certificate: the key pair is checked at load, every
 * signed body is unique (a fresh random serial and key), so the fault attack
 * on deterministic Ed25519 (the same message signed twice) has nothing to
 * pair, and OpenSSL checks its RSA-CRT results itself.
 */
export function signsInProcess(signer: Signer): boolean {
  return IN_PROCESS.has(signer);
}

/** A Signer over a node:crypto private key (ed25519, ECDSA P-256/P-384 or RSA). */
export function createKeySigner(privateKey: KeyObject): Signer {
  selfTest(privateKey);
  const { keyType, blob } = sshPublicKeyBlob(createPublicKey(privateKey));
  const fingerprint = sshFingerprint(blob);
  let sign: (data: Buffer) => Promise<Buffer>;
  switch (keyType) {
    case 'ssh-ed25519':
      sign = async (data) => new SshWriter().string('ssh-ed25519').string(await signAsync(null, data, privateKey)).toBuffer();
      break;
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384': {
      const hash = keyType === 'ecdsa-sha2-nistp256' ? 'sha256' : 'sha384';
      const half = keyType === 'ecdsa-sha2-nistp256' ? 32 : 48;
      sign = async (data) => {
        const rs = await signAsync(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const inner = new SshWriter().mpint(rs.subarray(0, half)).mpint(rs.subarray(half)).toBuffer();
        return new SshWriter().string(keyType).string(inner).toBuffer();
      };
      break;
    }
    case 'ssh-rsa':
      // ssh-rsa (SHA-1) signatures are refused by current sshd; rsa-sha2-512 is the strongest RSA choice.
      sign = async (data) => new SshWriter().string('rsa-sha2-512').string(await signAsync('sha512', data, privateKey)).toBuffer();
      break;
  }
  const signer: Signer = Object.freeze({ keyType, publicKeyBlob: blob, fingerprint, sign });
  IN_PROCESS.add(signer);
  return signer;
}

/** Checks that a private key really signs for its public half (catches a mismatched or corrupt key at start-up). */
export function selfTest(privateKey: KeyObject): void {
  const msg = Buffer.from('jit-ssh CA self-test');
  const pub = createPublicKey(privateKey);
  const type = pub.asymmetricKeyType;
  const alg = type === 'ed25519' ? null : 'sha256';
  const sig = cryptoSign(alg, msg, privateKey);
  if (!cryptoVerify(alg, msg, pub, sig)) throw new Error('CA key failed its signing self-test');
}
