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

export interface UsersTable {
  name: string;
  groups: string[];
  password_hash: string;
  totp_secret: string;
  totp_last_step: ColumnType<string | null, string | null, string | null>;
  enabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  last_login_at: Date | null;
}

export interface SessionsTable {
  token_hash: Buffer;
  username: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  client_address: string | null;
}

export interface LoginThrottleTable {
  key: string;
  failures: number;
  lockouts: Generated<number>;
  locked_until: Date | null;
  window_start: Date;
}

export interface AuditEventsTable {
  id: ColumnType<string, never, never>;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: 'ok' | 'failed' | 'refused';
  client_address: string | null;
  details: ColumnType<Record<string, unknown>, string, never>;
}

export interface Database {
  certificates: CertificatesTable;
  users: UsersTable;
  sessions: SessionsTable;
  login_throttle: LoginThrottleTable;
  audit_events: AuditEventsTable;
}

export type UserRow = Selectable<UsersTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;

export type CertificateRow = Selectable<CertificatesTable>;
export type NewCertificateRow = Insertable<CertificatesTable>;
