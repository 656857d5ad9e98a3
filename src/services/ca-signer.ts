// The CA's keys as the server and every `jit-ssh-ca` command load them: the
// signer, the public keys still trusted beside it, and the retired ones.

import type { ServerConfig } from '../config.js';
import type { Logger } from '../log.js';
import { generateCaKey, loadCaKey, loadTrustedKeys } from '../ssh/ca-key.js';
import { parsePublicKeyBlob } from '../ssh/pubkey.js';
import { publicKeyLine, type Signer } from '../ssh/signer.js';

export interface CaKeys {
  signer: Signer;
  /** `TrustedUserCAKeys` lines, the signer first, each key once. */
  publicKeys: string[];
  /** Retired CA keys: not published, but what they signed in the audit log still verifies. */
  retiredKeys: string[];
}

/**
 * The CA's signer: every use of the CA private key (certificates, the KRL's
 * and /v1/ca.pub's SSHSIG signatures, the audit log's checkpoints) goes
 * through the Signer this returns, in the server and in every jit-ssh-ca
 * command. This is the one place to plug in a key held elsewhere (a KMS, an
 * HSM through PKCS#11, ssh-agent): return your own Signer here
 * (docs/security.md, "Keeping the CA key in a KMS or HSM").
 */
export async function openCaSigner(config: ServerConfig, logger: Logger): Promise<Signer> {
  if (config.caKeyGenerated && (await generateCaKey(config.caKeyPath))) {
    logger.info('generated a new ed25519 CA key', { path: config.caKeyPath });
  }
  return loadCaKey(config.caKeyPath, config.caKeyPassphrase ?? undefined);
}

/** Loads the CA signer (`given`, else openCaSigner's) and the keys still trusted beside it. */
export async function loadCaKeys(config: ServerConfig, logger: Logger, given?: Signer): Promise<CaKeys> {
  const signer = given ?? (await openCaSigner(config, logger));
  const extra = config.trustedCaKeysPath ? await loadTrustedKeys(config.trustedCaKeysPath) : { trusted: [], retired: [] };
  const seen = new Set<string>();
  const once = (line: string) => {
    const fp = parsePublicKeyBlob(Buffer.from(line.split(' ')[1]!, 'base64')).fingerprint;
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  };
  const publicKeys = [publicKeyLine(signer, 'jit-ssh-ca'), ...extra.trusted].filter(once);
  // A key both trusted and marked retired stays trusted.
  return { signer, publicKeys, retiredKeys: extra.retired.filter(once) };
}

/** The CA public key blobs by fingerprint, from `TrustedUserCAKeys` lines. */
export function caKeyBlobs(lines: readonly string[]): Map<string, Buffer> {
  return new Map(
    lines.map((line) => {
      const blob = Buffer.from(line.split(' ')[1]!, 'base64');
      return [parsePublicKeyBlob(blob).fingerprint, blob] as const;
    }),
  );
}

export class HostCaKeyError extends Error {
  override name = 'HostCaKeyError';
}

/**
 * The host CA's signer and the host CA keys clients trust (`/v1/host-ca.pub`):
 * a key of its own, so that a stolen or misused host certificate path can
 * never mint a user certificate, nor the other way round. Generated on first
 * use at the default path, like the CA key; refused when it is the CA key.
 */
export async function loadHostCaKeys(config: ServerConfig, logger: Logger, userCa: Pick<Signer, 'fingerprint'>, given?: Signer): Promise<CaKeys> {
  if (!given && config.hostCaKeyGenerated && (await generateCaKey(config.hostCaKeyPath, 'jit-ssh-host-ca'))) {
    logger.info('generated a new ed25519 host CA key', { path: config.hostCaKeyPath });
  }
  const signer = given ?? (await loadCaKey(config.hostCaKeyPath, config.caKeyPassphrase ?? undefined));
  if (signer.fingerprint === userCa.fingerprint) {
    throw new HostCaKeyError(`the host CA key ${config.hostCaKeyPath} is the CA key (${signer.fingerprint}); host certificates need a key of their own (JIT_SSH_HOST_CA_KEY)`);
  }
  const extra = config.trustedHostCaKeysPath ? await loadTrustedKeys(config.trustedHostCaKeysPath) : { trusted: [], retired: [] };
  const seen = new Set<string>();
  const once = (line: string) => {
    const fp = parsePublicKeyBlob(Buffer.from(line.split(' ')[1]!, 'base64')).fingerprint;
    if (fp === userCa.fingerprint) throw new HostCaKeyError(`${config.trustedHostCaKeysPath} lists the CA key (${fp}) as a host CA key`);
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  };
  const publicKeys = [publicKeyLine(signer, 'jit-ssh-host-ca'), ...extra.trusted].filter(once);
  return { signer, publicKeys, retiredKeys: extra.retired.filter(once) };
}
