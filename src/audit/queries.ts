// Auditors' questions over the logs: filtered, newest first, paged by an
// opaque cursor (the record's position in its log), each served by an index
// (the queries are in db/audit-queries.ts).

import type { Kysely } from 'kysely';
import { parseDuration } from '../core/duration.js';
import { DomainError } from '../core/errors.js';
import { certificatesByCaKey, searchCertificates, searchEvents } from '../db/audit-queries.js';
import type { Database } from '../db/schema.js';
import { parseSerial } from '../ssh/serial.js';

export interface CertificateFilter {
  user?: string;
  principal?: string;
  role?: string;
  serial?: string;
  request?: string;
  approver?: string;
  break_glass?: boolean;
  /** 'user' or 'host' certificates only. */
  kind?: 'user' | 'host';
  since?: Date;
  until?: Date;
  cursor?: string;
  limit?: number;
}

export interface EventFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  cursor?: string;
  limit?: number;
}

export const MAX_PAGE = 1000;

const EARLIEST = Date.parse('0001-01-01T00:00:00Z');

/** A time as RFC 3339, or a duration back from now ("30d", "2h"). */
export function parseTime(text: string, now: Date, what: string): Date {
  const ago = parseDuration(text);
  let at: Date | null = null;
  if (ago !== null) at = new Date(now.getTime() - ago * 1000);
  else if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(text) && !Number.isNaN(Date.parse(text))) at = new Date(text);
  if (at === null) throw new DomainError('invalid_input', `${what} must be an RFC 3339 time or a duration such as 30d`);
  // A duration far enough back leaves what a Date (or PostgreSQL, from 4713 BC) can hold.
  if (!(at.getTime() >= EARLIEST)) throw new DomainError('invalid_input', `${what} must not be before the year 1`);
  return at;
}

const encodeCursor = (seq: string) => Buffer.from(`s:${seq}`).toString('base64url');
function decodeCursor(cursor: string | undefined): string | null {
  if (!cursor) return null;
  const m = /^s:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new DomainError('invalid_input', 'cursor is not one this server gave out');
  return m[1]!;
}

function limitOf(n: number | undefined): number {
  if (n === undefined) return 100;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new DomainError('invalid_input', `limit must be between 1 and ${MAX_PAGE}`);
  return n;
}

export interface CertificateView {
  serial: string;
  /** 'user', or 'host' for a host certificate (principals are the host's names). */
  kind: 'user' | 'host';
  key_id: string;
  username: string;
  request_id: string | null;
  role: string | null;
  principals: string[];
  valid_after: string;
  valid_before: string;
  extensions: string[];
  critical_options: Record<string, string>;
  public_key_type: string;
  public_key_fingerprint: string;
  ca_key_fingerprint: string;
  client_address: string | null;
  issued_at: string;
  break_glass: boolean;
  revoked_at: string | null;
  first_used: string | null;
  last_used: string | null;
  /** Times sshd refused this certificate, from ingested logs (OpenSSH 10.1+ logs refusals). */
  refusals: number;
  /** The latest refusal: sshd's reason, the host, and its time (null when the log line had none). */
  last_refusal: { at: string | null; host: string; reason: string } | null;
  certificate: string;
}

function refusalOf(json: string | null): CertificateView['last_refusal'] {
  if (json === null) return null;
  const r = JSON.parse(json) as { at: string | null; host: string; reason: string };
  return { at: r.at === null ? null : new Date(r.at).toISOString(), host: r.host, reason: r.reason };
}

export async function queryCertificates(db: Kysely<Database>, f: CertificateFilter): Promise<{ certificates: CertificateView[]; next_cursor: string | null }> {
  const limit = limitOf(f.limit);
  const after = decodeCursor(f.cursor);
  const serial = f.serial === undefined ? undefined : parseSerial(f.serial);
  if (serial === null) throw new DomainError('invalid_input', 'serial must be a decimal number');
  const rows = await searchCertificates(
    db,
    {
      user: f.user,
      role: f.role,
      request: f.request,
      // A serial of 2^63 or more names no certificate of ours (and would overflow the column).
      serial: serial ? (serial.kind === 'stored' ? serial.value : 'none') : undefined,
      principal: f.principal,
      since: f.since,
      until: f.until,
      break_glass: f.break_glass,
      kind: f.kind,
      approver: f.approver,
      beforeSeq: after ?? undefined,
    },
    limit + 1,
  );
  const page = rows.slice(0, limit);
  const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
  return {
    certificates: page.map((r) => ({
      serial: r.serial,
      kind: r.kind,
      key_id: r.key_id,
      username: r.username,
      request_id: r.request_id,
      role: r.role,
      principals: r.principals,
      valid_after: r.valid_after.toISOString(),
      valid_before: r.valid_before.toISOString(),
      extensions: r.extensions,
      critical_options: r.critical_options,
      public_key_type: r.public_key_type,
      public_key_fingerprint: r.public_key_fingerprint,
      ca_key_fingerprint: r.ca_key_fingerprint,
      client_address: r.client_address,
      issued_at: r.issued_at.toISOString(),
      break_glass: r.break_glass ?? false,
      revoked_at: iso(r.revoked_at),
      first_used: iso(r.first_used as Date | null),
      last_used: iso(r.last_used as Date | null),
      refusals: Number(r.refusals ?? 0),
      last_refusal: refusalOf(r.last_refusal as string | null),
      certificate: r.certificate,
    })),
    next_cursor: rows.length > limit ? encodeCursor(page.at(-1)!.seq) : null,
  };
}

export interface EventView {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  client_address: string | null;
  details: Record<string, unknown>;
}

export async function queryEvents(db: Kysely<Database>, f: EventFilter): Promise<{ events: EventView[]; next_cursor: string | null }> {
  const limit = limitOf(f.limit);
  const after = decodeCursor(f.cursor);
  const rows = await searchEvents(db, { actor: f.actor, action: f.action, target: f.target, since: f.since, until: f.until, beforeId: after ?? undefined }, limit + 1);
  const page = rows.slice(0, limit);
  return {
    events: page.map((e) => ({ id: e.id, at: e.at.toISOString(), actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, client_address: e.client_address, details: e.details })),
    next_cursor: rows.length > limit ? encodeCursor(page.at(-1)!.id) : null,
  };
}

export interface CaKeyUsage {
  ca_key_fingerprint: string;
  certificates: number;
  /** Certificates not yet expired. */
  live: number;
  last_issued_at: string | null;
  /** The end of the longest-lived certificate: when servers may stop trusting the key. */
  last_valid_before: string | null;
}

/** What each CA key has signed: tells when a key replaced in a rotation can be retired. */
export async function caKeyUsage(db: Kysely<Database>, now: Date): Promise<CaKeyUsage[]> {
  const rows = await certificatesByCaKey(db, now);
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return rows.map((r) => ({
    ca_key_fingerprint: r.ca_key_fingerprint,
    certificates: Number(r.certificates),
    live: Number(r.live),
    last_issued_at: iso(r.last_issued_at as Date | null),
    last_valid_before: iso(r.last_valid_before as Date | null),
  }));
}
