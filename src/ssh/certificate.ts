// Minting OpenSSH user certificates (PROTOCOL.certkeys). The body is encoded
// here and signed by a Signer; the rules sshd does not enforce but stricter
// parsers (Go's x/crypto/ssh, used by Teleport, Vault and step-ca tooling) do
// are kept too: options sorted by name in byte order, each name once, valued
// options' data wrapped in a second string.

import { randomBytes } from 'node:crypto';
import { KNOWN_EXTENSIONS, validPrincipal, validSourceAddress } from '../core/cert-options.js';
import { DomainError } from '../core/errors.js';

export { KNOWN_EXTENSIONS, validPrincipal, validSourceAddress };
import type { Signer } from './signer.js';
import { SshReader, SshWriter } from './wire.js';

export const SSH_CERT_TYPE_USER = 1;
/** A host certificate: principals are the host's names, and it carries no options or extensions. */
export const SSH_CERT_TYPE_HOST = 2;


export const KNOWN_CRITICAL_OPTIONS = ['force-command', 'source-address', 'verify-required'] as const;

export interface CertificateSpec {
  /** The certified key: its type name (e.g. `ssh-ed25519`) and wire encoding. */
  publicKey: { type: string; blob: Buffer };
  serial: bigint;
  keyId: string;
  principals: readonly string[];
  /** Unix seconds, inclusive. */
  validAfter: number;
  /** Unix seconds, exclusive. */
  validBefore: number;
  /** Flag extensions (empty data), e.g. `permit-pty`. */
  extensions: readonly string[];
  /** `force-command` / `source-address` take a value; `verify-required` is a flag (value ''). */
  criticalOptions: Readonly<Record<string, string>>;
  /** SSH_CERT_TYPE_USER (the default) or SSH_CERT_TYPE_HOST. */
  certType?: typeof SSH_CERT_TYPE_USER | typeof SSH_CERT_TYPE_HOST;
}

export interface MintedCertificate {
  /** The certificate's type name, e.g. `ssh-ed25519-cert-v01@openssh.com`. */
  type: string;
  blob: Buffer;
  /** One line as ssh writes a `-cert.pub` file: `TYPE BASE64`. */
  text: string;
}

export class CertificateSpecError extends DomainError {
  override name = 'CertificateSpecError';
  constructor(message: string) {
    super('invalid_certificate', message);
  }
}

const OPTION_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]*(@[a-zA-Z0-9.-]+)?$/;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

export function certificateType(keyType: string): string {
  return keyType.endsWith('@openssh.com')
    ? keyType.replace(/@openssh\.com$/, '-cert-v01@openssh.com')
    : `${keyType}-cert-v01@openssh.com`;
}


/** Encodes name/data tuples sorted by name in byte order; refuses duplicates. */
function encodeTuples(entries: Array<[string, Buffer]>, what: string): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
  const w = new SshWriter();
  sorted.forEach(([name, data], i) => {
    if (i > 0 && sorted[i - 1]![0] === name) throw new CertificateSpecError(`${what} ${name} given twice`);
    w.string(name).string(data);
  });
  return w.toBuffer();
}

function checkSpec(spec: CertificateSpec): void {
  if (spec.serial < 2n || spec.serial > MAX_U64) {
    throw new CertificateSpecError('serial must be in [2, 2^64): 0 cannot be revoked by serial and 1 is sshpk\'s default');
  }
  if (spec.principals.length === 0) throw new CertificateSpecError('a certificate needs at least one principal (sshd refuses one without)');
  for (const p of spec.principals) {
    if (!validPrincipal(p)) throw new CertificateSpecError(`invalid principal ${JSON.stringify(p)}`);
  }
  if (new Set(spec.principals).size !== spec.principals.length) throw new CertificateSpecError('duplicate principal');
  if (spec.keyId.length === 0 || spec.keyId.length > 512 || /[\x00-\x1f\x7f]/.test(spec.keyId)) {
    throw new CertificateSpecError('key ID must be 1-512 printable characters');
  }
  if (!Number.isSafeInteger(spec.validAfter) || !Number.isSafeInteger(spec.validBefore) || spec.validAfter < 0) {
    throw new CertificateSpecError('validity times must be whole Unix seconds');
  }
  if (spec.validBefore <= spec.validAfter) throw new CertificateSpecError('valid_before must be after valid_after');
  const certType = spec.certType ?? SSH_CERT_TYPE_USER;
  if (certType !== SSH_CERT_TYPE_USER && certType !== SSH_CERT_TYPE_HOST) throw new CertificateSpecError(`certificate type ${certType} is neither user (1) nor host (2)`);
  // PROTOCOL.certkeys defines no critical option or extension for host certificates.
  if (certType === SSH_CERT_TYPE_HOST && (spec.extensions.length > 0 || Object.keys(spec.criticalOptions).length > 0)) {
    throw new CertificateSpecError('a host certificate carries no critical options or extensions');
  }
  for (const ext of spec.extensions) {
    if (!(KNOWN_EXTENSIONS as readonly string[]).includes(ext) && !(OPTION_NAME.test(ext) && ext.includes('@'))) {
      throw new CertificateSpecError(`unknown extension ${JSON.stringify(ext)}`);
    }
  }
  for (const [name, value] of Object.entries(spec.criticalOptions)) {
    if (!(KNOWN_CRITICAL_OPTIONS as readonly string[]).includes(name)) {
      // sshd refuses a certificate carrying a critical option it does not know.
      throw new CertificateSpecError(`unknown critical option ${JSON.stringify(name)}`);
    }
    if (name === 'verify-required' && value !== '') throw new CertificateSpecError('verify-required takes no value');
    if (name === 'source-address' && !validSourceAddress(value)) throw new CertificateSpecError(`invalid source-address ${JSON.stringify(value)}`);
    if (name === 'force-command' && (value === '' || value.includes('\0') || value.length > 4096)) {
      throw new CertificateSpecError('force-command must be a non-empty command without NUL');
    }
  }
}

/** Everything the CA signs: the certificate up to and including the signature key. */
export function encodeCertificateBody(spec: CertificateSpec, caPublicKeyBlob: Buffer, nonce: Buffer = randomBytes(32)): Buffer {
  checkSpec(spec);
  const keyReader = new SshReader(spec.publicKey.blob);
  keyReader.string('key type');
  const keyFields = spec.publicKey.blob.subarray(keyReader.offset);
  const principals = new SshWriter();
  for (const p of spec.principals) principals.string(p);
  const critical = encodeTuples(
    Object.entries(spec.criticalOptions).map(([k, v]) => [k, v === '' ? Buffer.alloc(0) : new SshWriter().string(v).toBuffer()]),
    'critical option',
  );
  const extensions = encodeTuples(spec.extensions.map((e) => [e, Buffer.alloc(0)]), 'extension');
  return new SshWriter()
    .string(certificateType(spec.publicKey.type))
    .string(nonce)
    .raw(keyFields)
    .uint64(spec.serial)
    .uint32(spec.certType ?? SSH_CERT_TYPE_USER)
    .string(spec.keyId)
    .string(principals.toBuffer())
    .uint64(BigInt(spec.validAfter))
    .uint64(BigInt(spec.validBefore))
    .string(critical)
    .string(extensions)
    .string('')
    .string(caPublicKeyBlob)
    .toBuffer();
}

export async function mintCertificate(signer: Signer, spec: CertificateSpec): Promise<MintedCertificate> {
  const body = encodeCertificateBody(spec, signer.publicKeyBlob);
  const signature = await signer.sign(body);
  const blob = new SshWriter().raw(body).string(signature).toBuffer();
  const type = certificateType(spec.publicKey.type);
  return { type, blob, text: `${type} ${blob.toString('base64')}` };
}
