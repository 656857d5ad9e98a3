// Table types as Kysely sees them. Serials are PostgreSQL bigint, which both
// drivers here return as decimal strings: exact, and converted to BigInt at the
// repository edge.

import type { ColumnType, Generated, Selectable } from 'kysely';

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
  seq: ColumnType<string, never, never>;
  /** SHA-256 of the record's canonical form, by the writer; null for rows written otherwise. */
  record_hash: ColumnType<Buffer | null, Buffer | null | undefined, never>;
  /** 'user' or 'host' (a host certificate: principals are the host's names). */
  kind: ColumnType<CertificateKind, CertificateKind | undefined, never>;
}

export type CertificateKind = 'user' | 'host';

/** One-time enrollment tokens of servers and, once used, the renewal credential they got. Secrets are stored as SHA-256 only. */
export interface HostEnrollmentsTable {
  id: string;
  names: string[];
  token_hash: Buffer;
  created_by: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  used_from: string | null;
  renewal_hash: Buffer | null;
  /** Renewal is possible until then: the end of the host's newest certificates. */
  renew_until: Date | null;
  renewed_at: Date | null;
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
  /** A SessionAuth (src/core/auth-method.ts), written as JSON text. */
  auth: ColumnType<unknown, string | undefined, never>;
}

export interface OidcIdentitiesTable {
  /** The issuer URL (the ID token's `iss`). */
  issuer: string;
  /** The ID token's `sub`. */
  subject: string;
  username: string;
  /** The configured issuer's id, for messages. */
  issuer_id: string;
  /** The groups the provider sent at the last sign-in (before group_map). */
  idp_groups: string[];
  /** When they were sent: the last sign-in. */
  groups_at: Date;
  created_at: Date;
}

export interface OidcFlowsTable {
  key_hash: Buffer;
  kind: 'auth' | 'code' | 'device';
  data: ColumnType<unknown, string, string>;
  created_at: Date;
  expires_at: Date;
}

/** A user's passkey or security key. */
export interface WebauthnCredentialsTable {
  /** The credential id, base64url. */
  id: string;
  username: string;
  name: string;
  /** The COSE public key. */
  public_key: Buffer;
  /** The signature counter last accepted (bigint, as a decimal string). */
  sign_count: ColumnType<string, string | undefined, string>;
  transports: string[];
  created_at: Date;
  last_used_at: Date | null;
}

/** A WebAuthn ceremony in flight: its challenge, bound to a session (by hash), a purpose and a target. */
export interface WebauthnChallengesTable {
  binding: Buffer;
  purpose: 'register' | 'login' | 'step_up';
  target: ColumnType<string, string | undefined, string>;
  username: string;
  challenge: string;
  data: ColumnType<unknown, string | undefined, string>;
  created_at: Date;
  expires_at: Date;
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

export type RequestStatus = 'pending' | 'approved' | 'denied' | 'cancelled' | 'expired';

export interface RequestsTable {
  id: string;
  requester: string;
  role: string;
  duration_seconds: number;
  reason: string;
  ticket: string | null;
  break_glass: boolean;
  status: RequestStatus;
  decision_outcome: string;
  decision_rule: string;
  decision_reason: string;
  policy_digest: string;
  required_approvals: number;
  extends_grant: string | null;
  created_at: Date;
  expires_at: Date;
  closed_at: Date | null;
  closed_by: string | null;
  close_reason: string | null;
  client_address: string | null;
}

export interface ApprovalsTable {
  request_id: string;
  approver: string;
  decision: 'approve' | 'deny';
  comment: string | null;
  at: Date;
  client_address: string | null;
}

export interface GrantsTable {
  id: string;
  username: string;
  role: string;
  starts_at: Date;
  ends_at: Date;
  break_glass: boolean;
  relinquished_at: Date | null;
  /** When the grant ended before its window did (relinquished, revoked, holder disabled or no longer eligible), by whom, why. */
  ended_at: Date | null;
  ended_by: string | null;
  end_reason: string | null;
  reviewed_by: string | null;
  reviewed_at: Date | null;
  review_comment: string | null;
}

export interface NotificationsTable {
  id: ColumnType<string, never, never>;
  event: string;
  url: string;
  body: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: Generated<number>;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

export interface ChainLinksTable {
  stream: string;
  position: string;
  record_key: string;
  record_seq: string;
  record_hash: Buffer;
  chain_hash: Buffer;
  sealed_at: Date;
}

export interface ChainCheckpointsTable {
  stream: string;
  position: string;
  chain_hash: Buffer;
  at: Date;
  ca_fingerprint: string;
  signature: string;
}

/** Every version of each row of requests, approvals and grants, written by a trigger; chained like the logs. */
export interface RowVersionsTable {
  id: ColumnType<string, never, never>;
  tbl: 'requests' | 'approvals' | 'grants';
  row_key: string;
  op: 'baseline' | 'insert' | 'update';
  xact: string;
  at: Date;
  data: Record<string, unknown>;
}

export interface RevocationsTable {
  serial: string;
  reason: string;
  revoked_by: string;
  revoked_at: Date;
  valid_before: Date;
}

export interface KrlStateTable {
  id: number;
  version: string;
  digest: string;
  generated_at: Date;
}

/** The CA key list's version, one row (id 1); the same shape as krl_state. */
export type CaKeysStateTable = KrlStateTable;

export interface CertificateUsageTable {
  serial: string;
  host: string;
  source_address: string;
  login: string;
  first_seen: Date;
  last_seen: Date;
  logins: number;
}

export interface CertificateLoginsTable {
  serial: string;
  host: string;
  source_address: string;
  port: number;
  login: string;
  at: Date;
}

/** A certificate sshd refused, from its log (audit/usage.ts). */
export interface CertificateRefusalsTable {
  serial: string;
  host: string;
  reason: string;
  key_id: string;
  /** When sshd refused it; null when the log line carried no time. */
  at: Date | null;
  recorded_at: Date;
}

export interface Database {
  certificates: CertificatesTable;
  users: UsersTable;
  sessions: SessionsTable;
  oidc_identities: OidcIdentitiesTable;
  oidc_flows: OidcFlowsTable;
  login_throttle: LoginThrottleTable;
  audit_events: AuditEventsTable;
  requests: RequestsTable;
  approvals: ApprovalsTable;
  grants: GrantsTable;
  notifications: NotificationsTable;
  chain_links: ChainLinksTable;
  chain_checkpoints: ChainCheckpointsTable;
  row_versions: RowVersionsTable;
  revocations: RevocationsTable;
  krl_state: KrlStateTable;
  ca_keys_state: CaKeysStateTable;
  certificate_usage: CertificateUsageTable;
  certificate_logins: CertificateLoginsTable;
  certificate_refusals: CertificateRefusalsTable;
  host_enrollments: HostEnrollmentsTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
}

export type RequestRow = Selectable<RequestsTable>;
export type ApprovalRow = Selectable<ApprovalsTable>;
export type GrantRow = Selectable<GrantsTable>;
export type NotificationRow = Selectable<NotificationsTable>;

export type UserRow = Selectable<UsersTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;

export type CertificateRow = Selectable<CertificatesTable>;
