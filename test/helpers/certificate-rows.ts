// Reading the certificates log back in tests: a row by serial, as the issuer
// wrote it, and the number of rows.

import type { Kysely } from 'kysely';
import type { CertificateRecord } from '../../src/db/certificates.js';
import type { CertificateRow, Database } from '../../src/db/schema.js';

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

export async function findCertificateBySerial(db: Kysely<Database>, serial: bigint): Promise<CertificateRecord | undefined> {
  const row = await db.selectFrom('certificates').selectAll().where('serial', '=', serial.toString()).executeTakeFirst();
  return row && fromRow(row);
}

export async function countCertificates(db: Kysely<Database>): Promise<number> {
  const { n } = await db.selectFrom('certificates').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(n);
}
