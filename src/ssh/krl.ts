// OpenSSH key revocation lists (PROTOCOL.krl): revoked certificate serials,
// per CA key. No signature section: OpenSSH 9.4 and later refuse KRLs that
// embed one, so the KRL is signed separately (SSHSIG, see sshsig.ts).

import { SshWriter } from './wire.js';

const KRL_MAGIC = 0x5353484b524c0a00n; // "SSHKRL\n\0"
const KRL_FORMAT_VERSION = 1;
const KRL_SECTION_CERTIFICATES = 1;
const KRL_SECTION_CERT_SERIAL_LIST = 0x20;

export interface KrlInput {
  /** Increases every time the set of revocations changes. */
  version: bigint;
  generatedAt: Date;
  comment: string;
  /** Revoked serials grouped by the CA key (public key blob) that signed them. */
  revoked: Array<{ caKeyBlob: Buffer; serials: bigint[] }>;
}

export function encodeKrl(input: KrlInput): Buffer {
  const w = new SshWriter()
    .uint64(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(input.version)
    .uint64(BigInt(Math.floor(input.generatedAt.getTime() / 1000)))
    .uint64(0n)
    .string('')
    .string(input.comment);
  for (const { caKeyBlob, serials } of input.revoked) {
    // Ascending and each once, as ssh-keygen writes them.
    const sorted = [...new Set(serials)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (sorted.length === 0) continue;
    const list = new SshWriter();
    for (const s of sorted) list.uint64(s);
    const section = new SshWriter().string(caKeyBlob).string('').raw(Buffer.from([KRL_SECTION_CERT_SERIAL_LIST])).string(list.toBuffer());
    w.raw(Buffer.from([KRL_SECTION_CERTIFICATES])).string(section.toBuffer());
  }
  return w.toBuffer();
}
