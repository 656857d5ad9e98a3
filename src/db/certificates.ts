// The issued-certificates table: written once per certificate, read by auditors.

import type { Kysely, Transaction } from 'kysely';
import type { CertificateRow, Database } from './schema.js';

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
}

/** The row as the database returns it (and as the audit chain hashes it), without `seq` and `record_hash`. */
export function certificateContent(rec: CertificateRecord): Record<string, unknown> {
  return { ...toRow(rec), critical_options: rec.criticalOptions };
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
  };
}

export async function insertCertificate(db: Db, rec: CertificateRecord): Promise<void> {
  await insertCertificates(db, [rec]);
}

/** Several rows in one statement: all are committed, or none. */
export async function insertCertificates(db: Db, recs: Array<CertificateRecord & { recordHash?: Buffer }>): Promise<void> {
  await db.insertInto('certificates').values(recs.map((r) => ({ ...toRow(r), record_hash: r.recordHash ?? null }))).execute();
}

function fromRow(r: CertificateRow): CertificateRecord {
  return {
    serial: BigInt(r.serial),
    keyId: r.key_id,
    username: r.username,
    requestId: r.request_id,
    role: r.role,
    principals: r.principals,
    validAfter: r.valid_after,
    validBefore: r.valid_before,
    extensions: r.extensions,
    criticalOptions: r.critical_options,
    publicKeyType: r.public_key_type,
    publicKeyFingerprint: r.public_key_fingerprint,
    caKeyFingerprint: r.ca_key_fingerprint,
    certificate: r.certificate,
    clientAddress: r.client_address,
    issuedAt: r.issued_at,
  };
}

export async function findCertificateBySerial(db: Db, serial: bigint): Promise<CertificateRecord | undefined> {
  const row = await db.selectFrom('certificates').selectAll().where('serial', '=', serial.toString()).executeTakeFirst();
  return row && fromRow(row);
}

export async function countCertificates(db: Db): Promise<number> {
  const { n } = await db.selectFrom('certificates').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(n);
}
