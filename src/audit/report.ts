// The periodic access review: who had access to what, when, why, approved by
// whom, and whether they used it, over one period [since, until), in a form an
// auditor reads without SQL (Markdown), files (JSON) or sorts (CSV).
//
// A grant belongs to the period in which it started, a request to the period
// in which it was filed, so consecutive reports partition history: nothing is
// counted twice or missed at a boundary. Review states (break-glass
// acknowledgements, usage seen in sshd logs) are read as they are now, when
// the report is made, since that is what the auditor needs to act on.
//
// Every list is capped; a capped list says so (`truncated`), while counts and
// per-role/per-user totals are computed in the database and stay exact.

import { csvRow } from './csv.js';
import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { formatDuration } from '../core/duration.js';
import { DomainError } from '../core/errors.js';
import type { Database } from '../db/schema.js';

export interface ReportPeriod {
  since: Date;
  until: Date;
}

/** Requests for one role on at least this many distinct UTC days in a period suggest standing access. */
export const STANDING_ACCESS_MIN_DAYS = 5;
/** How many grants the "longest grants" section lists. */
export const LONGEST_GRANTS = 10;
/** The most grants listed one by one (the grants table, the CSV). */
export const MAX_GRANT_ROWS = 10_000;
/** The most rows in any other list (per-role and per-user totals, break-glass uses, revocations, ...). */
export const MAX_LIST_ROWS = 1_000;

/** A list that may have been cut at `limit` rows; `truncated` says whether it was. */
export interface Bounded<T> {
  rows: T[];
  limit: number;
  truncated: boolean;
}

export type ApprovalKind = 'auto' | 'approved' | 'break_glass';

export interface ReportGrant {
  grant_id: string;
  user: string;
  role: string;
  starts_at: string;
  /** Including every approved extension. */
  ends_at: string;
  duration_seconds: number;
  relinquished_at: string | null;
  /** auto: a policy rule approved it at once; approved: approvers did; break_glass: granted at once, reviewed after. */
  approval: ApprovalKind;
  /** The policy rule that decided the request (requests.decision_rule). */
  rule: string;
  /** Who approved the request (empty unless `approval` is `approved`). */
  approvers: string[];
  reason: string;
  ticket: string | null;
  certificates: number;
  first_used: string | null;
  last_used: string | null;
  /** Approved extensions of this grant. */
  extensions: number;
  /** Break-glass grants only. */
  review: { status: 'open' | 'acknowledged'; by: string | null; at: string | null; comment: string | null } | null;
}

export interface GrantTotals {
  grants: number;
  granted_seconds: number;
  auto_approved: { grants: number; granted_seconds: number; rules: Array<{ rule: string; grants: number }> };
  /** A grant approved by two people counts once for each of them in `approvers`. */
  approved: { grants: number; granted_seconds: number; approvers: Array<{ approver: string; grants: number }> };
  break_glass: { grants: number; granted_seconds: number };
}

export interface ExtensionSummary {
  grant_id: string;
  user: string;
  role: string;
  /** Extension requests filed in the period, whatever became of them. */
  requests: number;
  approved: number;
  added_seconds: number;
  approvers: string[];
}

export interface StandingAccessCandidate {
  user: string;
  role: string;
  days: number;
  requests: number;
  first_at: string;
  last_at: string;
}

export interface PolicyChange {
  at: string;
  actor: string;
  digest: string | null;
  roles: number | null;
  target: string | null;
}

export interface ReportRevocation {
  serial: string;
  user: string;
  role: string | null;
  grant_id: string | null;
  reason: string;
  revoked_by: string;
  revoked_at: string;
  valid_before: string;
}

export interface AccessReport {
  period: { since: string; until: string };
  generated_at: string;
  totals: {
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
  };
  grants_by_role: Bounded<{ role: string } & GrantTotals>;
  grants_by_user: Bounded<{ user: string } & GrantTotals>;
  break_glass: {
    uses: Bounded<ReportGrant>;
    /** Break-glass grants of the period nobody has acknowledged yet. */
    open_reviews: number;
    /** Break-glass grants from before the period still waiting for review. */
    open_from_earlier: Bounded<ReportGrant>;
  };
  longest_grants: Bounded<ReportGrant>;
  extensions: Bounded<ExtensionSummary>;
  never_used: {
    /** Whether any sshd log was ever ingested; without it, nothing can be called unused. */
    usage_data: boolean;
    /** Grants with certificates none of which was seen in an sshd log. */
    grants: Bounded<ReportGrant>;
    /** Grants for which no certificate was ever issued. */
    without_certificate: number;
  };
  standing_access: { min_days: number; candidates: Bounded<StandingAccessCandidate> };
  policy_changes: Bounded<PolicyChange>;
  revocations: Bounded<ReportRevocation>;
  grants: Bounded<ReportGrant>;
}

type Db = Kysely<Database>;

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);
const num = (v: unknown) => Math.round(Number(v ?? 0));

function bounded<T>(rows: T[], limit: number): Bounded<T> {
  return { rows: rows.slice(0, limit), limit, truncated: rows.length > limit };
}

// Request ids are ULIDs of the filing time (services/ids.ts), and grants take
// their request's id, so a time bound on created_at is also a range on the
// primary key: the index the requests table offers for "everything filed in a
// period". The timestamps stay the authoritative filter.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function ulidFloor(at: Date): string {
  let t = Math.max(0, Math.floor(at.getTime()));
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out + '0'.repeat(16);
}

const requestsIn = (p: ReportPeriod) =>
  sql<SqlBool>`r.id >= ${ulidFloor(p.since)} and r.id < ${ulidFloor(p.until)} and r.created_at >= ${p.since} and r.created_at < ${p.until}`;

// A grant starts no earlier than its request was filed, so its id is below the
// period's upper ULID bound; grants has no index on starts_at itself.
const grantsIn = (p: ReportPeriod) => sql<SqlBool>`g.starts_at >= ${p.since} and g.starts_at < ${p.until} and g.id < ${ulidFloor(p.until)}`;

const seconds = sql<number>`extract(epoch from g.ends_at - g.starts_at)::float8`;
const isAuto = sql<SqlBool>`not g.break_glass and r.decision_outcome = 'approved'`;
const isApproved = sql<SqlBool>`not g.break_glass and r.decision_outcome <> 'approved'`;
const hasCertificate = sql<SqlBool>`exists (select 1 from certificates c where c.request_id = g.id)`;
const wasUsed = sql<SqlBool>`exists (select 1 from certificates c join certificate_usage u on u.serial = c.serial where c.request_id = g.id)`;

/** One line per grant; every column is one indexed lookup by the grant's id or its certificates' serials. */
function grantLines(db: Db) {
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
    ]);
}

type GrantLineRow = Awaited<ReturnType<ReturnType<typeof grantLines>['execute']>>[number];

function toReportGrant(g: GrantLineRow): ReportGrant {
  return {
    grant_id: g.id,
    user: g.username,
    role: g.role,
    starts_at: iso(g.starts_at)!,
    ends_at: iso(g.ends_at)!,
    duration_seconds: num(g.seconds),
    relinquished_at: iso(g.relinquished_at),
    approval: g.break_glass ? 'break_glass' : g.decision_outcome === 'approved' ? 'auto' : 'approved',
    rule: g.decision_rule,
    approvers: g.approvers ?? [],
    reason: g.reason,
    ticket: g.ticket,
    certificates: num(g.certificates),
    first_used: iso(g.first_used),
    last_used: iso(g.last_used),
    extensions: num(g.extensions),
    review: g.break_glass ? { status: g.reviewed_at ? 'acknowledged' : 'open', by: g.reviewed_by, at: iso(g.reviewed_at), comment: g.review_comment } : null,
  };
}

async function listGrants(q: ReturnType<typeof grantLines>, limit: number): Promise<Bounded<ReportGrant>> {
  return bounded((await q.limit(limit + 1).execute()).map(toReportGrant), limit);
}

async function totals(db: Db, p: ReportPeriod): Promise<AccessReport['totals']> {
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
    requests: num(r.requests),
    approved: num(r.approved),
    pending: num(r.pending),
    denied: num(r.denied),
    expired: num(r.expired),
    cancelled: num(r.cancelled),
    grants: num(g.n),
    certificates: num(c.n),
    users: num(rows[0]?.n),
  };
}

/** Per role or per user: totals by kind of approval, then the rules and approvers behind them. */
async function grantTotals(db: Db, p: ReportPeriod, by: 'role' | 'username'): Promise<Bounded<{ key: string } & GrantTotals>> {
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
    .limit(MAX_LIST_ROWS + 1)
    .execute();
  const page = bounded(rows, MAX_LIST_ROWS);
  const keys = page.rows.map((r) => r.key);
  const rules = keys.length === 0 ? [] : await db
    .selectFrom('grants as g')
    .innerJoin('requests as r', 'r.id', 'g.id')
    .where(grantsIn(p))
    .where(isAuto)
    .where(key, 'in', keys)
    .select([sql<string>`${key}`.as('key'), 'r.decision_rule as rule', sql<string>`count(*)`.as('n')])
    .groupBy([key, 'r.decision_rule'])
    .orderBy('r.decision_rule')
    .execute();
  const approvers = keys.length === 0 ? [] : await db
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
  return {
    ...page,
    rows: page.rows.map((r) => ({
      key: r.key,
      grants: num(r.grants),
      granted_seconds: num(r.seconds),
      auto_approved: { grants: num(r.auto), granted_seconds: num(r.auto_seconds), rules: rules.filter((x) => x.key === r.key).map((x) => ({ rule: x.rule, grants: num(x.n) })) },
      approved: { grants: num(r.approved), granted_seconds: num(r.approved_seconds), approvers: approvers.filter((x) => x.key === r.key).map((x) => ({ approver: x.approver, grants: num(x.n) })) },
      break_glass: { grants: num(r.bg), granted_seconds: num(r.bg_seconds) },
    })),
  };
}

async function breakGlass(db: Db, p: ReportPeriod): Promise<AccessReport['break_glass']> {
  const uses = await listGrants(grantLines(db).where(grantsIn(p)).where('g.break_glass', '=', true).orderBy('g.starts_at').orderBy('g.id'), MAX_LIST_ROWS);
  const open = await db.selectFrom('grants as g').where(grantsIn(p)).where('g.break_glass', '=', true).where('g.reviewed_at', 'is', null).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  // Served by the partial index grants_open_reviews (break-glass, not yet reviewed, by start).
  const earlier = await listGrants(
    grantLines(db).where('g.break_glass', '=', true).where('g.reviewed_at', 'is', null).where('g.starts_at', '<', p.since).orderBy('g.starts_at').orderBy('g.id'),
    MAX_LIST_ROWS,
  );
  return { uses, open_reviews: num(open.n), open_from_earlier: earlier };
}

async function extensions(db: Db, p: ReportPeriod): Promise<Bounded<ExtensionSummary>> {
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
    .limit(MAX_LIST_ROWS + 1)
    .execute();
  const page = bounded(rows, MAX_LIST_ROWS);
  const ids = page.rows.map((r) => r.grant_id);
  const approvers = ids.length === 0 ? [] : await db
    .selectFrom('requests as r')
    .innerJoin('approvals as a', 'a.request_id', 'r.id')
    .where(requestsIn(p))
    .where('r.extends_grant', 'in', ids)
    .where('a.decision', '=', 'approve')
    .select([sql<string>`r.extends_grant`.as('grant_id'), 'a.approver'])
    .distinct()
    .orderBy('a.approver')
    .execute();
  return {
    ...page,
    rows: page.rows.map((r) => ({
      grant_id: r.grant_id,
      user: r.requester,
      role: r.role,
      requests: num(r.requests),
      approved: num(r.approved),
      added_seconds: num(r.added),
      approvers: approvers.filter((a) => a.grant_id === r.grant_id).map((a) => a.approver),
    })),
  };
}

async function neverUsed(db: Db, p: ReportPeriod): Promise<AccessReport['never_used']> {
  const usage = await db.selectFrom('certificate_usage').select('serial').limit(1).executeTakeFirst();
  const grants = await listGrants(grantLines(db).where(grantsIn(p)).where(hasCertificate).where(sql<SqlBool>`not ${wasUsed}`).orderBy('g.starts_at').orderBy('g.id'), MAX_LIST_ROWS);
  const none = await db.selectFrom('grants as g').where(grantsIn(p)).where(sql<SqlBool>`not ${hasCertificate}`).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return { usage_data: usage !== undefined, grants, without_certificate: num(none.n) };
}

async function standingAccess(db: Db, p: ReportPeriod): Promise<Bounded<StandingAccessCandidate>> {
  // Every request counts, granted or not: asking daily is the signal, whatever the answer.
  const days = sql<string>`count(distinct (r.created_at at time zone 'UTC')::date)`;
  const rows = await db
    .selectFrom('requests as r')
    .where(requestsIn(p))
    .select(['r.requester', 'r.role', days.as('days'), sql<string>`count(*)`.as('requests'), sql<Date>`min(r.created_at)`.as('first_at'), sql<Date>`max(r.created_at)`.as('last_at')])
    .groupBy(['r.requester', 'r.role'])
    .having(days, '>=', String(STANDING_ACCESS_MIN_DAYS))
    .orderBy(days, 'desc')
    .orderBy('r.requester')
    .orderBy('r.role')
    .limit(MAX_LIST_ROWS + 1)
    .execute();
  return bounded(
    rows.map((r) => ({ user: r.requester, role: r.role, days: num(r.days), requests: num(r.requests), first_at: iso(r.first_at)!, last_at: iso(r.last_at)! })),
    MAX_LIST_ROWS,
  );
}

async function policyChanges(db: Db, p: ReportPeriod): Promise<Bounded<PolicyChange>> {
  // A reload that says whether it changed anything is taken at its word; one
  // that does not is a change when its digest differs from the reload before.
  const previousDigest = sql`(select e2.details->>'digest' from audit_events e2
    where e2.action = 'policy.reload' and e2.outcome = 'ok' and e2.at <= e.at and (e2.at < e.at or e2.id < e.id)
    order by e2.at desc, e2.id desc limit 1)`;
  const rows = await db
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
    .limit(MAX_LIST_ROWS + 1)
    .execute();
  return bounded(
    rows.map((e) => ({ at: iso(e.at)!, actor: e.actor, digest: e.digest, roles: e.roles === null || Number.isNaN(Number(e.roles)) ? null : Number(e.roles), target: e.target })),
    MAX_LIST_ROWS,
  );
}

async function revocations(db: Db, p: ReportPeriod): Promise<Bounded<ReportRevocation>> {
  const rows = await db
    .selectFrom('revocations as v')
    .innerJoin('certificates as c', 'c.serial', 'v.serial')
    // Only a certificate still valid can be revoked, so valid_before (indexed) bounds the scan.
    .where('v.valid_before', '>', p.since)
    .where('v.revoked_at', '>=', p.since)
    .where('v.revoked_at', '<', p.until)
    .select(['v.serial', 'c.username', 'c.role', 'c.request_id', 'v.reason', 'v.revoked_by', 'v.revoked_at', 'v.valid_before'])
    .orderBy('v.revoked_at')
    .orderBy('v.serial')
    .limit(MAX_LIST_ROWS + 1)
    .execute();
  return bounded(
    rows.map((v) => ({ serial: String(v.serial), user: v.username, role: v.role, grant_id: v.request_id, reason: v.reason, revoked_by: v.revoked_by, revoked_at: iso(v.revoked_at)!, valid_before: iso(v.valid_before)! })),
    MAX_LIST_ROWS,
  );
}

export async function buildAccessReport(db: Kysely<Database>, period: ReportPeriod): Promise<AccessReport> {
  const { since, until } = period;
  if (!(since instanceof Date) || !(until instanceof Date) || Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) {
    throw new DomainError('invalid_input', 'the period needs a start and an end time');
  }
  if (since >= until) throw new DomainError('invalid_input', 'the period must start before it ends');
  // One read-only snapshot, so the totals and every list describe the same
  // history even while the server keeps writing. (On the embedded database
  // this holds its single connection for the report's few queries.)
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute((trx) => build(trx, period));
}

async function build(db: Db, period: ReportPeriod): Promise<AccessReport> {
  const { since, until } = period;
  const generatedAt = new Date();
  const byRole = await grantTotals(db, period, 'role');
  const byUser = await grantTotals(db, period, 'username');
  return {
    period: { since: since.toISOString(), until: until.toISOString() },
    generated_at: generatedAt.toISOString(),
    totals: await totals(db, period),
    grants_by_role: { ...byRole, rows: byRole.rows.map(({ key, ...t }) => ({ role: key, ...t })) },
    grants_by_user: { ...byUser, rows: byUser.rows.map(({ key, ...t }) => ({ user: key, ...t })) },
    break_glass: await breakGlass(db, period),
    longest_grants: await listGrants(grantLines(db).where(grantsIn(period)).orderBy(seconds, 'desc').orderBy('g.starts_at').orderBy('g.id'), LONGEST_GRANTS),
    extensions: await extensions(db, period),
    never_used: await neverUsed(db, period),
    standing_access: { min_days: STANDING_ACCESS_MIN_DAYS, candidates: await standingAccess(db, period) },
    policy_changes: await policyChanges(db, period),
    revocations: await revocations(db, period),
    grants: await listGrants(grantLines(db).where(grantsIn(period)).orderBy('g.starts_at').orderBy('g.id'), MAX_GRANT_ROWS),
  };
}

// ---- Rendering ----

export type ReportFormat = 'md' | 'json' | 'csv';

export function renderAccessReport(report: AccessReport, format: ReportFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(report, null, 2);
    case 'csv':
      return renderCsv(report);
    case 'md':
      return renderMarkdown(report);
    default:
      throw new DomainError('invalid_input', 'format must be md, json or csv');
  }
}

/** How a grant was approved, in one cell: auto:<rule>, approved:<approvers>, break-glass. */
export function approvalText(g: ReportGrant): string {
  if (g.approval === 'break_glass') return 'break-glass';
  if (g.approval === 'auto') return `auto:${g.rule}`;
  return `approved:${g.approvers.join(',')}`;
}

function reviewText(g: ReportGrant): string {
  if (!g.review) return '';
  if (g.review.status === 'open') return 'open';
  return `acknowledged by ${g.review.by} at ${g.review.at}${g.review.comment ? `: ${g.review.comment}` : ''}`;
}

export const CSV_COLUMNS = ['grant_id', 'user', 'role', 'starts_at', 'ends_at', 'duration_seconds', 'approval', 'reason', 'ticket', 'certificates', 'first_used', 'last_used', 'extensions', 'review'] as const;

function renderCsv(report: AccessReport): string {
  const rows = report.grants.rows.map((g) => [
    g.grant_id, g.user, g.role, g.starts_at, g.ends_at, g.duration_seconds, approvalText(g), g.reason, g.ticket, g.certificates, g.first_used, g.last_used, g.extensions, reviewText(g),
  ]);
  return [CSV_COLUMNS as readonly (string | number | null)[], ...rows].map(csvRow).join('');
}

/**
 * Table cell text. User-supplied text must not break the table or turn into
 * a link, HTML or emphasis; intraword underscores (auto_approve[0]) are safe
 * in CommonMark and stay readable.
 */
function mdCell(value: string | number | null): string {
  if (value === null || value === '') return '–';
  return String(value).replace(/[\r\n]+/g, ' ').replace(/[\\`*[\]<>|]/g, (c) => `\\${c}`);
}

function mdTable(head: string[], rows: Array<Array<string | number | null>>): string {
  if (rows.length === 0) return '_None._';
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map((r) => line(r.map(mdCell)))].join('\n');
}

/** Paragraphs and tables of a section, with the note a cut list needs. */
function mdList(table: string, list: Bounded<unknown>, what: string): string {
  return list.truncated ? `${table}\n\n_Only the first ${list.limit} ${what} are listed; the rest were cut. Narrow the period to see them all._` : table;
}

const dur = (s: number) => formatDuration(s);
const share = (n: number, s: number) => (n === 0 ? '0' : `${n} (${dur(s)})`);

function totalsTable(rows: Array<{ key: string } & GrantTotals>, keyName: string): string {
  return mdTable(
    [keyName, 'Grants', 'Granted time', 'Auto-approved', 'Rules', 'Approved', 'Approvers', 'Break-glass'],
    rows.map((r) => [
      r.key,
      r.grants,
      dur(r.granted_seconds),
      share(r.auto_approved.grants, r.auto_approved.granted_seconds),
      r.auto_approved.rules.map((x) => `${x.rule} ×${x.grants}`).join(', '),
      share(r.approved.grants, r.approved.granted_seconds),
      r.approved.approvers.map((x) => `${x.approver} ×${x.grants}`).join(', '),
      share(r.break_glass.grants, r.break_glass.granted_seconds),
    ]),
  );
}

const grantHead = ['Grant', 'User', 'Role', 'Starts', 'Ends', 'Duration', 'Approval', 'Reason', 'Ticket', 'Certificates', 'First used', 'Last used', 'Extensions'];
const grantRow = (g: ReportGrant) => [g.grant_id, g.user, g.role, g.starts_at, g.ends_at, dur(g.duration_seconds), approvalText(g), g.reason, g.ticket, g.certificates, g.first_used, g.last_used, g.extensions];
const bgHead = ['Grant', 'User', 'Role', 'Starts', 'Duration', 'Reason', 'Review', 'Reviewed by', 'Reviewed at', 'Comment'];
const bgRow = (g: ReportGrant) => [g.grant_id, g.user, g.role, g.starts_at, dur(g.duration_seconds), g.reason, g.review?.status === 'open' ? 'OPEN' : 'acknowledged', g.review?.by ?? null, g.review?.at ?? null, g.review?.comment ?? null];

function renderMarkdown(r: AccessReport): string {
  const t = r.totals;
  const section = (title: string, ...parts: string[]) => `## ${title}\n\n${parts.filter((x) => x !== '').join('\n\n')}`;
  const bg = r.break_glass;
  const nu = r.never_used;
  return [
    `# Access review ${r.period.since} to ${r.period.until}`,
    `From ${r.period.since} (included) to ${r.period.until} (excluded); generated ${r.generated_at}. ` +
      'A grant belongs to the period in which it started, a request to the period in which it was filed; review and usage states are as of generation.',
    section('Totals', mdTable(['Requests', 'Approved', 'Pending', 'Denied', 'Expired', 'Cancelled', 'Grants', 'Certificates issued', 'Users'], [[t.requests, t.approved, t.pending, t.denied, t.expired, t.cancelled, t.grants, t.certificates, t.users]])),
    section('Grants by role', mdList(totalsTable(r.grants_by_role.rows.map(({ role, ...x }) => ({ key: role, ...x })), 'Role'), r.grants_by_role, 'roles')),
    section('Grants by user', mdList(totalsTable(r.grants_by_user.rows.map(({ user, ...x }) => ({ key: user, ...x })), 'User'), r.grants_by_user, 'users')),
    section(
      'Break-glass use',
      `${bg.uses.rows.length}${bg.uses.truncated ? '+' : ''} break-glass grant(s) in the period; **${bg.open_reviews} still awaiting review**.`,
      mdList(mdTable(bgHead, bg.uses.rows.map(bgRow)), bg.uses, 'break-glass grants'),
      bg.open_from_earlier.rows.length > 0 ? `Still awaiting review from before the period:\n\n${mdList(mdTable(bgHead, bg.open_from_earlier.rows.map(bgRow)), bg.open_from_earlier, 'open reviews')}` : '',
    ),
    section(
      'Longest grants',
      `The ${r.longest_grants.limit} longest grants, extensions included${r.longest_grants.truncated ? ` (top ${r.longest_grants.limit} of ${t.grants} grants)` : ''}.`,
      mdTable(grantHead, r.longest_grants.rows.map(grantRow)),
    ),
    section('Extensions', mdList(mdTable(['Grant', 'User', 'Role', 'Extension requests', 'Approved', 'Time added', 'Approvers'], r.extensions.rows.map((e) => [e.grant_id, e.user, e.role, e.requests, e.approved, dur(e.added_seconds), e.approvers.join(', ')])), r.extensions, 'extended grants')),
    section(
      'Grants never used',
      nu.usage_data
        ? 'Grants whose certificates were never seen in an ingested sshd log; only as complete as the logs ingested.'
        : '> **Note:** no sshd logs have been ingested (no certificate use was ever recorded), so whether grants were used is unknown and none is listed here.',
      nu.usage_data ? mdList(mdTable(grantHead, nu.grants.rows.map(grantRow)), nu.grants, 'unused grants') : '',
      `${nu.without_certificate} grant(s) in the period never had a certificate issued.`,
    ),
    section(
      'Standing-access candidates',
      `Requests for the same role on at least ${r.standing_access.min_days} distinct days (UTC), whatever their outcome.`,
      mdList(mdTable(['User', 'Role', 'Days', 'Requests', 'First', 'Last'], r.standing_access.candidates.rows.map((c) => [c.user, c.role, c.days, c.requests, c.first_at, c.last_at])), r.standing_access.candidates, 'candidates'),
    ),
    section('Policy changes', mdList(mdTable(['At', 'By', 'Digest', 'Roles', 'File'], r.policy_changes.rows.map((c) => [c.at, c.actor, c.digest, c.roles, c.target])), r.policy_changes, 'changes')),
    section('Revocations', mdList(mdTable(['Serial', 'User', 'Role', 'Grant', 'Revoked at', 'By', 'Reason', 'Valid until'], r.revocations.rows.map((v) => [v.serial, v.user, v.role, v.grant_id, v.revoked_at, v.revoked_by, v.reason, v.valid_before])), r.revocations, 'revocations')),
    section('All grants', mdList(mdTable([...grantHead, 'Review'], r.grants.rows.map((g) => [...grantRow(g), reviewText(g)])), r.grants, 'grants')),
  ].join('\n\n') + '\n';
}
