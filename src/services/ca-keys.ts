// The CA key list servers trust (`/v1/ca.pub`), as a signed document with a
// version and a signing time. It stays a TrustedUserCAKeys file: sshd skips
// lines starting with `#`, and everything that is not a trusted key is one.
//
//   # jit-ssh CA key list, version 7, signed at 1796292300 (2026-12-03T10:05:00Z)
//   ssh-ed25519 AAAA... jit-ssh-ca
//   ssh-ed25519 AAAA... jit-ssh-ca-previous
//   # retired ssh-ed25519 AAAA...
//
// The version increases whenever the lines below the header change (see
// published-version.ts); `# retired` lines name the keys marked @retired,
// which a server must never trust again. `/v1/ca.pub.sig` is an SSHSIG of the
// whole text, header included, so neither can be changed or replayed unseen.

import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Signer } from '../ssh/signer.js';
import { CA_KEYS_NAMESPACE, sshsign } from '../ssh/sshsig.js';
import { publishedVersion, signingTime } from './published-version.js';

export interface CaKeysDocument {
  version: string;
  /** RFC 3339. */
  signed_at: string;
  /** The body of `/v1/ca.pub`. */
  text: string;
  /** SSHSIG (namespace jit-ssh-ca-keys) over the exact bytes of `text`, by the current CA key. */
  signature: string;
}

/** `# retired TYPE BASE64` for each retired key line (their comments left out). */
export function retiredLines(retiredKeys: readonly string[]): string[] {
  return retiredKeys.map((line) => `# retired ${line.split(/\s+/).slice(0, 2).join(' ')}`);
}

/** The lines the version covers: the trusted keys, the signer first, then the retired ones. */
export function caKeysBody(publicKeys: readonly string[], retiredKeys: readonly string[]): string {
  return [...publicKeys, ...retiredLines(retiredKeys)].map((l) => l + '\n').join('');
}

export function caKeysHeader(version: string, signedAt: Date): string {
  const seconds = Math.floor(signedAt.getTime() / 1000);
  return `# jit-ssh CA key list, version ${version}, signed at ${seconds} (${new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')})\n`;
}

export interface CaKeysDeps {
  db: Kysely<Database>;
  signer: Signer;
  /** `TrustedUserCAKeys` lines, the signer first. */
  publicKeys: readonly string[];
  retiredKeys: readonly string[];
  now?: () => Date;
}

export function createCaKeysPublisher(deps: CaKeysDeps): { document(): Promise<CaKeysDocument> } {
  const now = deps.now ?? (() => new Date());
  const body = caKeysBody(deps.publicKeys, deps.retiredKeys);
  const digest = createHash('sha256').update(body).digest('hex');
  let cached: { version: string; signedAt: number; doc: Promise<CaKeysDocument> } | undefined;
  return {
    async document() {
      const at = now();
      const { version, since } = await publishedVersion(deps.db, 'ca_keys_state', digest, at);
      const signedAt = signingTime(at, since);
      if (cached && cached.version === version && cached.signedAt === signedAt.getTime()) return cached.doc;
      const text = caKeysHeader(version, signedAt) + body;
      const doc = sshsign(deps.signer, CA_KEYS_NAMESPACE, Buffer.from(text)).then((signature) => ({ version, signed_at: signedAt.toISOString(), text, signature }));
      cached = { version, signedAt: signedAt.getTime(), doc };
      doc.catch(() => {
        if (cached?.doc === doc) cached = undefined;
      });
      return doc;
    },
  };
}
