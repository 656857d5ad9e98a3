// Detached signatures in OpenSSH's SSHSIG format (PROTOCOL.sshsig), which
// `ssh-keygen -Y verify` checks: used for the KRL (OpenSSH 9.4+ refuses KRLs
// with embedded signatures) and for the audit log's checkpoints.

import { createHash } from 'node:crypto';
import type { Signer } from './signer.js';
import { SshWriter } from './wire.js';

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
