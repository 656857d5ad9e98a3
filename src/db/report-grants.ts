// The access review's queries over grants: one line per grant, and totals per
// role or per user computed in the database (exact however long the lists).

import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { grantSeconds as seconds, grantsIn, type Db, type Period } from './report-period.js';

const isAuto = sql<SqlBool>`not g.break_glass and r.decision_outcome = 'approved'`;
const isApproved = sql<SqlBool>`not g.break_glass and r.decision_outcome <> 'approved'`;
const hasCertificate = sql<SqlBool>`exists (select 1 from certificates c where c.request_id = g.id)`;
const wasUsed = sql<SqlBool>`exists (select 1 from certificates c join certificate_usage u on u.serial = c.serial where c.request_id = g.id)`;

/** One line per grant; every column is one indexed lookup by the grant's id or its certificates' serials. */
function lines(db: Db) {
  return db
    .selectFrom('grants as g')
    .innerJoin('requests as r', 'r.id', 'g.id')
    .select(['g.id', 'g.username', 'g.role', 'g.starts_at', 'g.ends_at', 'g.relinquished_at', 'g.break_glass', 'g.reviewed_by', 'g.reviewed_at', 'g.review_comment', 'r.reason', 'r.ticket', 'r.decision_outcome', 'r.decision_rule'])
    .select([
      seconds.as('seconds'),
      sql<string[]>`coalesce((select array_agg(a.approver order by a.at, a.approver) from approvals a where a.request_id = g.id and a.decision = 'approve'), '{}'::text[])`.as('approvers'),
      sql<string>`(select count(*) from certificates c where c.request_id = g.id)`.as('certificates'),
      sql<Date | null>`(select min(u.first_seen) from certificates c join certificate_usage u on u.serial = c.serial where c.request_id = g.id)`.as('first_used'),
      sql<Date | null>`(select max(u.last_seen) from certificates c join certificate_usage u on u.serial = c.serial where c.request_id = g.id)`.as('last_used'),
      sql<string>`(select count(*) from requests x where x.extends_grant = g.id and x.status = 'approved')`.as('extensions'),
      // How the requester and each approver had signed in, as their events recorded it (audit_events_target_at).
      sql<unknown>`(select e.details->'auth' from audit_events e where e.target = g.id and e.action = 'request.create' order by e.id limit 1)`.as('requester_auth'),
      sql<Array<{ approver: string; auth?: unknown; step_up?: unknown }> | null>`(select jsonb_agg(jsonb_strip_nulls(jsonb_build_object('approver', e.actor, 'auth', e.details->'auth', 'step_up', e.details->'step_up')) order by e.id) from audit_events e where e.target = g.id and e.action = 'request.approve')`.as('approver_auth'),
    ]);
}

export type GrantLine = Awaited<ReturnType<ReturnType<typeof lines>['execute']>>[number];

/**
 * Which grants to list:
 * - started: those that started in the period, by start (`only` narrows them to
 *   break-glass ones, or to those with certificates none of which was seen used);
 * - longest: those that started in the period, longest first;
 * - open_reviews_before: break-glass grants that started before `before` and
 *   still wait for review (the partial index grants_open_reviews serves it).
 */
export type GrantSelection =
  | { kind: 'started'; period: Period; only?: 'break_glass' | 'never_used' }
  | { kind: 'longest'; period: Period }
  | { kind: 'open_reviews_before'; before: Date };

/** Up to `limit` grant lines of `which`, ties broken by start then id. */
export async function selectGrantLines(db: Db, which: GrantSelection, limit: number): Promise<GrantLine[]> {
  let q = lines(db);
  if (which.kind === 'open_reviews_before') q = q.where('g.break_glass', '=', true).where('g.reviewed_at', 'is', null).where('g.starts_at', '<', which.before);
  else q = q.where(grantsIn(which.period));
  if (which.kind === 'started' && which.only === 'break_glass') q = q.where('g.break_glass', '=', true);
  if (which.kind === 'started' && which.only === 'never_used') q = q.where(hasCertificate).where(sql<SqlBool>`not ${wasUsed}`);
  if (which.kind === 'longest') q = q.orderBy(seconds, 'desc');
  return q.orderBy('g.starts_at').orderBy('g.id').limit(limit).execute();
}

/** Break-glass grants of the period nobody has acknowledged yet. */
export async function countOpenReviews(db: Db, p: Period): Promise<number> {
  const open = await db.selectFrom('grants as g').where(grantsIn(p)).where('g.break_glass', '=', true).where('g.reviewed_at', 'is', null).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(open.n);
}

/** Grants of the period for which no certificate was ever issued. */
export async function countGrantsWithoutCertificate(db: Db, p: Period): Promise<number> {
  const none = await db.selectFrom('grants as g').where(grantsIn(p)).where(sql<SqlBool>`not ${hasCertificate}`).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(none.n);
}

/** Whether any certificate use was ever recorded (an sshd log ingested). */
export async function hasUsageData(db: Db): Promise<boolean> {
  return (await db.selectFrom('certificate_usage').select('serial').limit(1).executeTakeFirst()) !== undefined;
}

export type GrantKey = 'role' | 'username';

export interface GrantTotalsRow {
  key: string;
  grants: number;
  seconds: number;
  auto: number;
  auto_seconds: number;
  approved: number;
  approved_seconds: number;
  bg: number;
  bg_seconds: number;
}

/** Per role or per user (up to `limit`, by key): grants and granted seconds by kind of approval. */
export async function grantTotalsBy(db: Db, p: Period, by: GrantKey, limit: number): Promise<GrantTotalsRow[]> {
  const key = sql.ref(`g.${by}`);
  const sum = (where: RawBuilder<SqlBool> | null) => (where ? sql<number>`coalesce(sum(${seconds}) filter (where ${where}), 0)` : sql<number>`coalesce(sum(${seconds}), 0)`);
  const rows = await db
    .selectFrom('grants as g')
    .innerJoin('requests as r', 'r.id', 'g.id')
    .where(grantsIn(p))
    .select([
      sql<string>`${key}`.as('key'),
      sql<string>`count(*)`.as('grants'),
      sum(null).as('seconds'),
      sql<string>`count(*) filter (where ${isAuto})`.as('auto'),
      sum(isAuto).as('auto_seconds'),
      sql<string>`count(*) filter (where ${isApproved})`.as('approved'),
      sum(isApproved).as('approved_seconds'),
      sql<string>`count(*) filter (where g.break_glass)`.as('bg'),
      sum(sql<SqlBool>`g.break_glass`).as('bg_seconds'),
    ])
    .groupBy(key)
    .orderBy(key)
    .limit(limit)
    .execute();
  const n = (v: unknown) => Math.round(Number(v ?? 0));
  return rows.map((r) => ({ key: r.key, grants: n(r.grants), seconds: n(r.seconds), auto: n(r.auto), auto_seconds: n(r.auto_seconds), approved: n(r.approved), approved_seconds: n(r.approved_seconds), bg: n(r.bg), bg_seconds: n(r.bg_seconds) }));
}

/** For the given roles or users: how many of their auto-approved grants each policy rule approved, by rule. */
export async function autoApprovalRulesBy(db: Db, p: Period, by: GrantKey, keys: string[]): Promise<Array<{ key: string; rule: string; grants: number }>> {
  if (keys.length === 0) return [];
  const key = sql.ref(`g.${by}`);
  const rows = await db
    .selectFrom('grants as g')
    .innerJoin('requests as r', 'r.id', 'g.id')
    .where(grantsIn(p))
    .where(isAuto)
    .where(key, 'in', keys)
    .select([sql<string>`${key}`.as('key'), 'r.decision_rule as rule', sql<string>`count(*)`.as('n')])
    .groupBy([key, 'r.decision_rule'])
    .orderBy('r.decision_rule')
    .execute();
  return rows.map((r) => ({ key: r.key, rule: r.rule, grants: Number(r.n) }));
}

/** For the given roles or users: how many of their approved grants each approver approved, by approver. */
export async function approversBy(db: Db, p: Period, by: GrantKey, keys: string[]): Promise<Array<{ key: string; approver: string; grants: number }>> {
  if (keys.length === 0) return [];
  const key = sql.ref(`g.${by}`);
  const rows = await db
    .selectFrom('grants as g')
    .innerJoin('requests as r', 'r.id', 'g.id')
    .innerJoin('approvals as a', 'a.request_id', 'g.id')
    .where(grantsIn(p))
    .where(isApproved)
    .where('a.decision', '=', 'approve')
    .where(key, 'in', keys)
    .select([sql<string>`${key}`.as('key'), 'a.approver', sql<string>`count(*)`.as('n')])
    .groupBy([key, 'a.approver'])
    .orderBy('a.approver')
    .execute();
  return rows.map((r) => ({ key: r.key, approver: r.approver, grants: Number(r.n) }));
}
