// The access review's queries over requests, audit events and revocations
// (the grants' own are in report-grants.ts). Counts come back as numbers.

import { sql, type SqlBool } from 'kysely';
import { grantsIn, requestsIn, type Db, type Period } from './report-period.js';

const n = (v: unknown) => Math.round(Number(v ?? 0));

/** The access review's totals for a period. */
export interface PeriodTotals {
  /** Requests filed in the period (extensions included), then by their status now. */
  requests: number;
  approved: number;
  pending: number;
  denied: number;
  expired: number;
  cancelled: number;
  /** Grants that started in the period. */
  grants: number;
  certificates: number;
  /** People who filed a request or held a grant that started in the period. */
  users: number;
}

/** Requests filed in the period by their status now, grants started and certificates issued in it, and the people involved. */
export async function periodTotals(db: Db, p: Period): Promise<PeriodTotals> {
  const r = await db
    .selectFrom('requests as r')
    .where(requestsIn(p))
    .select([
      sql<string>`count(*)`.as('requests'),
      sql<string>`count(*) filter (where r.status = 'approved')`.as('approved'),
      sql<string>`count(*) filter (where r.status = 'pending')`.as('pending'),
      sql<string>`count(*) filter (where r.status = 'denied')`.as('denied'),
      sql<string>`count(*) filter (where r.status = 'expired')`.as('expired'),
      sql<string>`count(*) filter (where r.status = 'cancelled')`.as('cancelled'),
    ])
    .executeTakeFirstOrThrow();
  const g = await db.selectFrom('grants as g').where(grantsIn(p)).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  const c = await db.selectFrom('certificates').where('issued_at', '>=', p.since).where('issued_at', '<', p.until).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  const { rows } = await sql<{ n: string }>`select count(*) as n from (
      select r.requester from requests r where ${requestsIn(p)}
      union select g.username from grants g where ${grantsIn(p)}) people`.execute(db);
  return {
    requests: n(r.requests),
    approved: n(r.approved),
    pending: n(r.pending),
    denied: n(r.denied),
    expired: n(r.expired),
    cancelled: n(r.cancelled),
    grants: n(g.n),
    certificates: n(c.n),
    users: n(rows[0]?.n),
  };
}

export interface ExtensionRow {
  grant_id: string;
  requester: string;
  role: string;
  requests: number;
  approved: number;
  added_seconds: number;
}

/** Extension requests filed in the period, per grant extended (up to `limit`, by grant). */
export async function extensionsByGrant(db: Db, p: Period, limit: number): Promise<ExtensionRow[]> {
  const rows = await db
    .selectFrom('requests as r')
    .where(requestsIn(p))
    .where('r.extends_grant', 'is not', null)
    .select([
      sql<string>`r.extends_grant`.as('grant_id'),
      'r.requester',
      'r.role',
      sql<string>`count(*)`.as('requests'),
      sql<string>`count(*) filter (where r.status = 'approved')`.as('approved'),
      sql<string>`coalesce(sum(r.duration_seconds) filter (where r.status = 'approved'), 0)`.as('added'),
    ])
    .groupBy(['r.extends_grant', 'r.requester', 'r.role'])
    .orderBy('r.extends_grant')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ grant_id: r.grant_id, requester: r.requester, role: r.role, requests: n(r.requests), approved: n(r.approved), added_seconds: n(r.added) }));
}

/** Who approved the period's extension requests of the given grants, by approver. */
export async function extensionApprovers(db: Db, p: Period, grantIds: string[]): Promise<Array<{ grant_id: string; approver: string }>> {
  if (grantIds.length === 0) return [];
  return db
    .selectFrom('requests as r')
    .innerJoin('approvals as a', 'a.request_id', 'r.id')
    .where(requestsIn(p))
    .where('r.extends_grant', 'in', grantIds)
    .where('a.decision', '=', 'approve')
    .select([sql<string>`r.extends_grant`.as('grant_id'), 'a.approver'])
    .distinct()
    .orderBy('a.approver')
    .execute();
}

export interface RequestDaysRow {
  requester: string;
  role: string;
  days: number;
  requests: number;
  first_at: Date;
  last_at: Date;
}

/** Who requested one role on at least `minDays` distinct UTC days of the period, whatever the answer; most days first. */
export async function repeatedRequests(db: Db, p: Period, minDays: number, limit: number): Promise<RequestDaysRow[]> {
  const days = sql<string>`count(distinct (r.created_at at time zone 'UTC')::date)`;
  const rows = await db
    .selectFrom('requests as r')
    .where(requestsIn(p))
    .select(['r.requester', 'r.role', days.as('days'), sql<string>`count(*)`.as('requests'), sql<Date>`min(r.created_at)`.as('first_at'), sql<Date>`max(r.created_at)`.as('last_at')])
    .groupBy(['r.requester', 'r.role'])
    .having(days, '>=', String(minDays))
    .orderBy(days, 'desc')
    .orderBy('r.requester')
    .orderBy('r.role')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ requester: r.requester, role: r.role, days: n(r.days), requests: n(r.requests), first_at: r.first_at, last_at: r.last_at }));
}

export interface PolicyReloadRow {
  at: Date;
  actor: string;
  target: string | null;
  digest: string | null;
  roles: string | null;
}

/** Successful policy reloads of the period that changed the policy, in order. */
export async function policyChangesIn(db: Db, p: Period, limit: number): Promise<PolicyReloadRow[]> {
  // A reload that says whether it changed anything is taken at its word; one
  // that does not is a change when its digest differs from the reload before.
  const previousDigest = sql`(select e2.details->>'digest' from audit_events e2
    where e2.action = 'policy.reload' and e2.outcome = 'ok' and e2.at <= e.at and (e2.at < e.at or e2.id < e.id)
    order by e2.at desc, e2.id desc limit 1)`;
  return db
    .selectFrom('audit_events as e')
    .where('e.action', '=', 'policy.reload')
    .where('e.outcome', '=', 'ok')
    .where('e.at', '>=', p.since)
    .where('e.at', '<', p.until)
    .where(sql<SqlBool>`case when jsonb_typeof(e.details->'changed') = 'boolean' then (e.details->>'changed')::boolean
      else (e.details->>'digest') is distinct from ${previousDigest} end`)
    .select(['e.at', 'e.actor', 'e.target', sql<string | null>`e.details->>'digest'`.as('digest'), sql<string | null>`e.details->>'roles'`.as('roles')])
    .orderBy('e.at')
    .orderBy('e.id')
    .limit(limit)
    .execute();
}

/** Certificates revoked in the period, in order, with whose they were. */
export async function revocationsIn(db: Db, p: Period, limit: number) {
  return db
    .selectFrom('revocations as v')
    .innerJoin('certificates as c', 'c.serial', 'v.serial')
    // Only a certificate still valid can be revoked, so valid_before (indexed) bounds the scan.
    .where('v.valid_before', '>', p.since)
    .where('v.revoked_at', '>=', p.since)
    .where('v.revoked_at', '<', p.until)
    .select(['v.serial', 'c.username', 'c.role', 'c.request_id', 'v.reason', 'v.revoked_by', 'v.revoked_at', 'v.valid_before'])
    .orderBy('v.revoked_at')
    .orderBy('v.serial')
    .limit(limit)
    .execute();
}
