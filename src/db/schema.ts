// Table types as Kysely sees them. Serials are PostgreSQL bigint, which both
// drivers here return as decimal strings: exact, and converted to BigInt at the
// repository edge.

import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

export interface CertificatesTable {
  serial: ColumnType<string, string, never>;
  key_id: string;
  username: string;
  request_id: string | null;
  role: string | null;
  principals: string[];
  valid_after: Date;
  valid_before: Date;
  extensions: string[];
  critical_options: ColumnType<Record<string, string>, string, never>;
  public_key_type: string;
  public_key_fingerprint: string;
  ca_key_fingerprint: string;
  certificate: string;
  client_address: string | null;
  issued_at: Generated<Date>;
}

export interface Database {
  certificates: CertificatesTable;
}

export type CertificateRow = Selectable<CertificatesTable>;
export type NewCertificateRow = Insertable<CertificatesTable>;
