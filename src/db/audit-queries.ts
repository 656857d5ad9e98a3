// The auditors' searches of the issuance log and the audit events: filtered,
// newest first, a page at a time by write order (audit/queries.ts turns the
// rows into views and cursors), each served by an index.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface CertificateSearch {
  user?: string;
  principal?: string;
  role?: string;
  /** A stored serial, or 'none' for one no certificate of ours can have (2^63 or more). */
  serial?: string | 'none';
  request?: string;
  approver?: string;
  break_glass?: boolean;
  kind?: 'user' | 'host';
  since?: Date;
  until?: Date;
  /** Only certificates written before this write order (`seq`). */
  beforeSeq?: string;
}

/** Up to `limit` certificates matching `f`, newest first, with their grant's break-glass flag, revocation and first and last use. */
export async function searchCertificates(db: Db, f: CertificateSearch, limit: number) {
  let q = db
    .selectFrom('certificates as c')
    .leftJoin('grants as g', 'g.id', 'c.request_id')
    .leftJoin('revocations as v', 'v.serial', 'c.serial')
    .select([
      'c.serial', 'c.key_id', 'c.username', 'c.request_id', 'c.role', 'c.principals', 'c.valid_after', 'c.valid_before', 'c.extensions', 'c.critical_options',
      'c.public_key_type', 'c.public_key_fingerprint', 'c.ca_key_fingerprint', 'c.client_address', 'c.issued_at', 'c.certificate', 'c.seq', 'c.kind', 'g.break_glass', 'v.revoked_at',
    ])
    .select((eb) => [
      eb.selectFrom('certificate_usage as u').whereRef('u.serial', '=', 'c.serial').select((e) => e.fn.min('u.first_seen').as('f')).as('first_used'),
      eb.selectFrom('certificate_usage as u').whereRef('u.serial', '=', 'c.serial').select((e) => e.fn.max('u.last_seen').as('l')).as('last_used'),
      eb.selectFrom('certificate_refusals as x').whereRef('x.serial', '=', 'c.serial').select((e) => e.fn.countAll<string>().as('n')).as('refusals'),
      // The latest refusal by sshd's time (a line without one counts as when it was recorded).
      eb
        .selectFrom('certificate_refusals as x')
        .whereRef('x.serial', '=', 'c.serial')
        .select(sql<string>`json_build_object('at', x.at, 'host', x.host, 'reason', x.reason)::text`.as('r'))
        .orderBy(sql`coalesce(x.at, x.recorded_at)`, 'desc')
        .limit(1)
        .as('last_refusal'),
    ]);
  if (f.user) q = q.where('c.username', '=', f.user);
  if (f.kind) q = q.where('c.kind', '=', f.kind);
  if (f.role) q = q.where('c.role', '=', f.role);
  if (f.request) q = q.where('c.request_id', '=', f.request);
  if (f.serial !== undefined) q = f.serial === 'none' ? q.where(sql<boolean>`false`) : q.where('c.serial', '=', f.serial);
  if (f.principal) q = q.where(sql<boolean>`c.principals @> array[${f.principal}]::text[]`);
  if (f.since) q = q.where('c.issued_at', '>=', f.since);
  if (f.until) q = q.where('c.issued_at', '<', f.until);
  if (f.break_glass !== undefined) q = q.where(sql<boolean>`coalesce(g.break_glass, false) = ${f.break_glass}`);
  if (f.approver) q = q.where((eb) => eb.exists(eb.selectFrom('approvals as a').whereRef('a.request_id', '=', 'c.request_id').where('a.approver', '=', f.approver!).where('a.decision', '=', 'approve').select('a.approver')));
  if (f.beforeSeq) q = q.where('c.seq', '<', f.beforeSeq);
  return q.orderBy('c.seq', 'desc').limit(limit).execute();
}

export interface EventSearch {
  actor?: string;
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  /** Only events written before this id. */
  beforeId?: string;
}

/** Up to `limit` audit events matching `f`, newest first. */
export async function searchEvents(db: Db, f: EventSearch, limit: number) {
  let q = db.selectFrom('audit_events').selectAll();
  if (f.actor) q = q.where('actor', '=', f.actor);
  if (f.action) q = q.where('action', '=', f.action);
  if (f.target) q = q.where('target', '=', f.target);
  if (f.since) q = q.where('at', '>=', f.since);
  if (f.until) q = q.where('at', '<', f.until);
  if (f.beforeId) q = q.where('id', '<', f.beforeId);
  return q.orderBy('id', 'desc').limit(limit).execute();
}

/** Per CA key: certificates signed, those not yet expired at `now`, the last issued and the longest-lived. */
export async function certificatesByCaKey(db: Db, now: Date) {
  return db
    .selectFrom('certificates')
    .select((eb) => [
      'ca_key_fingerprint',
      eb.fn.countAll<string>().as('certificates'),
      sql<string>`count(*) filter (where valid_before > ${now})`.as('live'),
      eb.fn.max('issued_at').as('last_issued_at'),
      eb.fn.max('valid_before').as('last_valid_before'),
    ])
    // The CA key's certificates only: host certificates are the host CA's.
    .where('kind', '=', 'user')
    .groupBy('ca_key_fingerprint')
    .execute();
}
