// The check of a freshly minted certificate before it is logged or handed out:
// parsed back with the strict reader, its signature verified against the CA
// public key (unless the signer is node:crypto in this process, see
// signer.ts signsInProcess), and every field compared with what was meant to
// be signed — the certified key, serial, kind, key ID, principals, window,
// critical options and extensions. A certificate that says anything else is
// never issued.

import type { CertificateSpec } from './certificate.js';
import { certificateType, SSH_CERT_TYPE_HOST, SSH_CERT_TYPE_USER } from './certificate.js';
import { readCertificate } from './certificate-parse.js';
import { signatureVerifier } from './ca-signature.js';
import { WireError } from './wire.js';

/** Checks a certificate's one-line text against its spec; resolves to what differs, or null when it is exactly the spec. */
export type CertificateCheck = (text: string, spec: CertificateSpec) => Promise<string | null>;

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function sameOptions(got: Map<string, string>, want: ReadonlyArray<readonly [string, string]>): boolean {
  return got.size === want.length && want.every(([k, v]) => got.get(k) === v);
}

export interface CheckOptions {
  /** Verify the signature against the CA key (default true); false only for a signer in this process. */
  signature?: boolean;
}

/** A checker for certificates signed by the CA whose public key blob is `caPublicKeyBlob` (the key is imported once). */
export function certificateChecker(caPublicKeyBlob: Buffer, opts: CheckOptions = {}): CertificateCheck {
  const verify = opts.signature === false ? null : signatureVerifier(caPublicKeyBlob);
  return async (text, spec) => {
    const type = certificateType(spec.publicKey.type);
    const [lineType, b64, ...rest] = text.split(' ');
    if (lineType !== type || rest.length > 0 || !b64) return `the certificate line is not "${type} BASE64"`;
    const blob = Buffer.from(b64, 'base64');
    if (blob.toString('base64') !== b64) return 'the certificate is not canonical base64';
    let c;
    try {
      c = readCertificate(blob);
    } catch (e) {
      if (e instanceof WireError) return `the certificate does not parse: ${e.message}`;
      throw e;
    }
    if (c.type !== type) return `type ${c.type}, not ${type}`;
    if (!c.publicKeyBlob.equals(spec.publicKey.blob)) return 'it certifies another key';
    if (c.serial !== spec.serial) return `serial ${c.serial}, not ${spec.serial}`;
    const kind = spec.certType ?? SSH_CERT_TYPE_USER;
    if (c.certType !== kind) return `certificate kind ${c.certType}, not a ${kind === SSH_CERT_TYPE_HOST ? 'host' : 'user'} certificate`;
    if (c.keyId !== spec.keyId) return `key ID ${JSON.stringify(c.keyId)}, not ${JSON.stringify(spec.keyId)}`;
    if (!sameList(c.principals, spec.principals)) return `principals ${c.principals.join(',')}, not ${spec.principals.join(',')}`;
    if (c.validAfter !== BigInt(spec.validAfter) || c.validBefore !== BigInt(spec.validBefore)) {
      return `window ${c.validAfter}..${c.validBefore}, not ${spec.validAfter}..${spec.validBefore}`;
    }
    if (!sameOptions(c.criticalOptions, Object.entries(spec.criticalOptions))) return 'its critical options differ';
    if (!sameOptions(c.extensions, spec.extensions.map((e) => [e, ''] as const))) return 'its extensions differ';
    if (!c.signatureKey.equals(caPublicKeyBlob)) return 'it names another CA key';
    if (verify === null) return null;
    try {
      if (!verify(c.signedBody, c.signature)) return 'its signature does not verify against the CA key';
    } catch (e) {
      if (e instanceof WireError) return `its signature is malformed: ${e.message}`;
      throw e;
    }
    return null;
  };
}
