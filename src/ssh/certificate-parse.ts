// A strict reader for OpenSSH certificates: the checks of Go's x/crypto/ssh
// (option names in strictly increasing byte order, valued data wrapped in a
// string, nothing trailing) plus signature verification. Used to check what we
// mint and, later, to read certificates back.

import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SshReader, WireError } from './wire.js';

export interface ParsedCertificate {
  type: string;
  nonce: Buffer;
  /** The certified key's own blob (type name + key fields). */
  publicKeyBlob: Buffer;
  serial: bigint;
  certType: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Map<string, string>;
  extensions: Map<string, string>;
  signatureKey: Buffer;
  signatureAlgorithm: string;
  signatureValid: boolean;
}

const KEY_FIELDS: Record<string, Array<'string' | 'mpint'>> = {
  'ssh-ed25519': ['string'],
  'ecdsa-sha2-nistp256': ['string', 'string'],
  'ecdsa-sha2-nistp384': ['string', 'string'],
  'ecdsa-sha2-nistp521': ['string', 'string'],
  'ssh-rsa': ['mpint', 'mpint'],
  'sk-ssh-ed25519@openssh.com': ['string', 'string'],
  'sk-ecdsa-sha2-nistp256@openssh.com': ['string', 'string', 'string'],
};

function keyTypeOf(certType: string): string | undefined {
  const m = /^(.*)-cert-v01@openssh\.com$/.exec(certType);
  if (!m) return undefined;
  const base = m[1]!;
  return base.startsWith('sk-') ? `${base}@openssh.com` : base;
}

function parseTuples(buf: Buffer, what: string): Map<string, string> {
  const r = new SshReader(buf);
  const out = new Map<string, string>();
  let last: Buffer | undefined;
  while (r.remaining > 0) {
    const name = r.string(`${what} name`);
    if (last && Buffer.compare(last, name) >= 0) throw new WireError(`${what} are not in strictly increasing byte order at ${name.toString()}`);
    last = name;
    const data = r.string(`${what} data`);
    let value = '';
    if (data.length > 0) {
      const inner = new SshReader(data);
      value = inner.text(`${what} value`);
      inner.end(`${what} value`);
    }
    out.set(name.toString('utf8'), value);
  }
  return out;
}

/** A CA key from its JWK; a key node:crypto cannot import (a point off the curve, say) is an encoding fault. */
function importKey(jwk: JsonWebKey, type: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    throw new WireError(`the CA ${type} key is not a valid public key`);
  }
}

/** A signature check; a signature node:crypto cannot even read does not verify. */
function verify(hash: string | null, data: Buffer, key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' }, signature: Buffer): boolean {
  try {
    return cryptoVerify(hash, data, key, signature);
  } catch {
    return false;
  }
}

function caPublicKey(blob: Buffer): { type: string; key: KeyObject } {
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

function verifySignature(caBlob: Buffer, body: Buffer, sigBlob: Buffer): { algorithm: string; valid: boolean } {
  const { type, key } = caPublicKey(caBlob);
  const r = new SshReader(sigBlob);
  const algorithm = r.text('signature algorithm');
  const sig = r.string('signature');
  r.end('signature');
  if (type === 'ssh-ed25519') return { algorithm, valid: algorithm === type && verify(null, body, key, sig) };
  if (type.startsWith('ecdsa-sha2-')) {
    if (algorithm !== type) return { algorithm, valid: false };
    const inner = new SshReader(sig);
    const rr = inner.mpint('ecdsa r');
    const ss = inner.mpint('ecdsa s');
    inner.end('ecdsa signature');
    const half = { 'ecdsa-sha2-nistp256': 32, 'ecdsa-sha2-nistp384': 48, 'ecdsa-sha2-nistp521': 66 }[type] ?? 0;
    const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, half - b.length)), b]);
    const hash = { 'ecdsa-sha2-nistp256': 'sha256', 'ecdsa-sha2-nistp384': 'sha384', 'ecdsa-sha2-nistp521': 'sha512' }[type]!;
    return { algorithm, valid: verify(hash, body, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(rr), pad(ss)])) };
  }
  const hash = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256', 'ssh-rsa': 'sha1' }[algorithm];
  return { algorithm, valid: hash !== undefined && verify(hash, body, key, sig) };
}

/** Parses a certificate blob strictly; throws WireError on any encoding fault. */
export function parseCertificate(blob: Buffer): ParsedCertificate {
  const r = new SshReader(blob);
  const type = r.text('certificate type');
  const keyType = keyTypeOf(type);
  const fields = keyType ? KEY_FIELDS[keyType] : undefined;
  if (!keyType || !fields) throw new WireError(`not a supported certificate type: ${type}`);
  const nonce = r.string('nonce');
  const keyStart = r.offset;
  for (const f of fields) (f === 'mpint' ? r.mpint('key field') : r.string('key field'));
  const keyFields = blob.subarray(keyStart, r.offset);
  const typeName = Buffer.from(keyType);
  const publicKeyBlob = Buffer.concat([Buffer.alloc(4), typeName, keyFields]);
  publicKeyBlob.writeUInt32BE(typeName.length, 0);
  const serial = r.uint64('serial');
  const certType = r.uint32('certificate kind');
  const keyId = r.text('key id');
  const pr = new SshReader(r.string('principals'));
  const principals: string[] = [];
  while (pr.remaining > 0) principals.push(pr.text('principal'));
  const validAfter = r.uint64('valid after');
  const validBefore = r.uint64('valid before');
  const criticalOptions = parseTuples(r.string('critical options'), 'critical options');
  const extensions = parseTuples(r.string('extensions'), 'extensions');
  r.string('reserved');
  const signatureKey = r.string('signature key');
  const bodyEnd = r.offset;
  const signature = r.string('signature');
  r.end('certificate');
  const { algorithm, valid } = verifySignature(signatureKey, blob.subarray(0, bodyEnd), signature);
  return {
    type,
    nonce,
    publicKeyBlob,
    serial,
    certType,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signatureAlgorithm: algorithm,
    signatureValid: valid,
  };
}
