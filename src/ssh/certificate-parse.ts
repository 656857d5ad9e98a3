// A strict reader for OpenSSH certificates: the checks of Go's x/crypto/ssh
// (option names in strictly increasing byte order, valued data wrapped in a
// string, nothing trailing) plus signature verification. Used to check every
// certificate the CA mints before it is logged (certificate-verify.ts) and to
// read certificates back.

import { verifySignature } from './ca-signature.js';
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

/** A certificate's fields read strictly, its signature not yet checked. */
export interface CertificateFields extends Omit<ParsedCertificate, 'signatureAlgorithm' | 'signatureValid'> {
  /** Everything the signature covers. */
  signedBody: Buffer;
  /** The SSH signature blob. */
  signature: Buffer;
}

/** Reads a certificate blob strictly; throws WireError on any encoding fault. The signature is left to the caller. */
export function readCertificate(blob: Buffer): CertificateFields {
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
    signedBody: blob.subarray(0, bodyEnd),
    signature,
  };
}

/** Parses a certificate blob strictly and checks its signature against the key it names; throws WireError on any encoding fault. */
export function parseCertificate(blob: Buffer): ParsedCertificate {
  const { signedBody, signature, ...fields } = readCertificate(blob);
  const { algorithm, valid } = verifySignature(fields.signatureKey, signedBody, signature);
  return { ...fields, signatureAlgorithm: algorithm, signatureValid: valid };
}
