// The issued-certificates table: written once per certificate (the issuer's
// log, see services/issuance-sign.ts), read by auditors.

import type { Kysely, Transaction } from 'kysely';
import type { CertificateKind, Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface CertificateRecord {
  serial: bigint;
  keyId: string;
  username: string;
  requestId: string | null;
  role: string | null;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  extensions: string[];
  criticalOptions: Record<string, string>;
  publicKeyType: string;
  publicKeyFingerprint: string;
  caKeyFingerprint: string;
  certificate: string;
  clientAddress: string | null;
  issuedAt: Date;
  /** Absent = 'user'. */
  kind?: CertificateKind;
}

/**
 * The row as the database returns it (and as the audit chain hashes it), without `seq` and
 * `record_hash`; `kind` only for host certificates (user rows hash as they did before it existed).
 */
export function certificateContent(rec: CertificateRecord): Record<string, unknown> {
  const { kind: _kind, ...row } = toRow(rec);
  return { ...row, critical_options: rec.criticalOptions, ...(rec.kind === 'host' ? { kind: 'host' } : {}) };
}

function toRow(rec: CertificateRecord) {
  return {
    serial: rec.serial.toString(),
    key_id: rec.keyId,
    username: rec.username,
    request_id: rec.requestId,
    role: rec.role,
    principals: rec.principals,
    valid_after: rec.validAfter,
    valid_before: rec.validBefore,
    extensions: rec.extensions,
    critical_options: JSON.stringify(rec.criticalOptions),
    public_key_type: rec.publicKeyType,
    public_key_fingerprint: rec.publicKeyFingerprint,
    ca_key_fingerprint: rec.caKeyFingerprint,
    certificate: rec.certificate,
    client_address: rec.clientAddress,
    issued_at: rec.issuedAt,
    kind: rec.kind ?? 'user',
  };
}

/** Several rows in one statement: all are committed, or none. */
export async function insertCertificates(db: Db, recs: Array<CertificateRecord & { recordHash?: Buffer }>): Promise<void> {
  await db.insertInto('certificates').values(recs.map((r) => ({ ...toRow(r), record_hash: r.recordHash ?? null }))).execute();
}
