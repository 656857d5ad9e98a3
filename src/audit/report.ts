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
// The queries are in db/report-*.ts; this file assembles their answers, and
// report-csv.ts and report-markdown.ts write them out.

import type { Kysely, Transaction } from 'kysely';
import { DomainError } from '../core/errors.js';
import { asSessionAuth } from '../core/auth-method.js';
import { approversBy, autoApprovalRulesBy, countGrantsWithoutCertificate, countOpenReviews, grantTotalsBy, hasUsageData, selectGrantLines, type GrantKey, type GrantLine, type GrantSelection } from '../db/report-grants.js';
import { inReadOnlySnapshot } from '../db/report-period.js';
import { extensionApprovers, extensionsByGrant, periodTotals, policyChangesIn, repeatedRequests, revocationsIn } from '../db/report-queries.js';
import type { Database } from '../db/schema.js';
import { renderCsv } from './report-csv.js';
import { renderMarkdown } from './report-markdown.js';
import { LONGEST_GRANTS, MAX_GRANT_ROWS, MAX_LIST_ROWS, STANDING_ACCESS_MIN_DAYS, type AccessReport, type Bounded, type ExtensionSummary, type GrantTotals, type PolicyChange, type ReportGrant, type ReportPeriod, type ReportRevocation, type StandingAccessCandidate } from './report-types.js';

export * from './report-types.js';
export { approvalText, signInText } from './report-text.js';
export { CSV_COLUMNS } from './report-csv.js';

type Db = Transaction<Database>;

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);
const num = (v: unknown) => Math.round(Number(v ?? 0));

function bounded<T>(rows: T[], limit: number): Bounded<T> {
  return { rows: rows.slice(0, limit), limit, truncated: rows.length > limit };
}

/** How an approval was confirmed (its step-up), when it was: the method, and the passkey for `webauthn`. */
function stepUpOf(v: unknown): { step_up?: { method: string; credential?: string } } {
  if (!v || typeof v !== 'object' || typeof (v as { method?: unknown }).method !== 'string') return {};
  const o = v as { method: string; credential?: unknown };
  return { step_up: { method: o.method, ...(typeof o.credential === 'string' ? { credential: o.credential } : {}) } };
}

function toReportGrant(g: GrantLine): ReportGrant {
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
    sign_in: {
      requester: g.requester_auth ? asSessionAuth(g.requester_auth) : null,
      approvers: (g.approver_auth ?? []).map((a) => ({ approver: a.approver, auth: a.auth ? asSessionAuth(a.auth) : null, ...stepUpOf(a.step_up) })),
    },
    review: g.break_glass ? { status: g.reviewed_at ? 'acknowledged' : 'open', by: g.reviewed_by, at: iso(g.reviewed_at), comment: g.review_comment } : null,
  };
}

async function listGrants(db: Db, which: GrantSelection, limit: number): Promise<Bounded<ReportGrant>> {
  return bounded((await selectGrantLines(db, which, limit + 1)).map(toReportGrant), limit);
}

/** Per role or per user: totals by kind of approval, then the rules and approvers behind them. */
async function grantTotals(db: Db, p: ReportPeriod, by: GrantKey): Promise<Bounded<{ key: string } & GrantTotals>> {
  const page = bounded(await grantTotalsBy(db, p, by, MAX_LIST_ROWS + 1), MAX_LIST_ROWS);
  const keys = page.rows.map((r) => r.key);
  const rules = await autoApprovalRulesBy(db, p, by, keys);
  const approvers = await approversBy(db, p, by, keys);
  return {
    ...page,
    rows: page.rows.map((r) => ({
      key: r.key,
      grants: r.grants,
      granted_seconds: r.seconds,
      auto_approved: { grants: r.auto, granted_seconds: r.auto_seconds, rules: rules.filter((x) => x.key === r.key).map(({ rule, grants }) => ({ rule, grants })) },
      approved: { grants: r.approved, granted_seconds: r.approved_seconds, approvers: approvers.filter((x) => x.key === r.key).map(({ approver, grants }) => ({ approver, grants })) },
      break_glass: { grants: r.bg, granted_seconds: r.bg_seconds },
    })),
  };
}

async function breakGlass(db: Db, p: ReportPeriod): Promise<AccessReport['break_glass']> {
  const uses = await listGrants(db, { kind: 'started', period: p, only: 'break_glass' }, MAX_LIST_ROWS);
  const open = await countOpenReviews(db, p);
  const earlier = await listGrants(db, { kind: 'open_reviews_before', before: p.since }, MAX_LIST_ROWS);
  return { uses, open_reviews: open, open_from_earlier: earlier };
}

async function extensions(db: Db, p: ReportPeriod): Promise<Bounded<ExtensionSummary>> {
  const page = bounded(await extensionsByGrant(db, p, MAX_LIST_ROWS + 1), MAX_LIST_ROWS);
  const approvers = await extensionApprovers(db, p, page.rows.map((r) => r.grant_id));
  return {
    ...page,
    rows: page.rows.map((r) => ({
      grant_id: r.grant_id,
      user: r.requester,
      role: r.role,
      requests: r.requests,
      approved: r.approved,
      added_seconds: r.added_seconds,
      approvers: approvers.filter((a) => a.grant_id === r.grant_id).map((a) => a.approver),
    })),
  };
}

async function neverUsed(db: Db, p: ReportPeriod): Promise<AccessReport['never_used']> {
  const usage = await hasUsageData(db);
  const grants = await listGrants(db, { kind: 'started', period: p, only: 'never_used' }, MAX_LIST_ROWS);
  return { usage_data: usage, grants, without_certificate: await countGrantsWithoutCertificate(db, p) };
}

async function standingAccess(db: Db, p: ReportPeriod): Promise<Bounded<StandingAccessCandidate>> {
  // Every request counts, granted or not: asking daily is the signal, whatever the answer.
  const rows = await repeatedRequests(db, p, STANDING_ACCESS_MIN_DAYS, MAX_LIST_ROWS + 1);
  return bounded(
    rows.map((r) => ({ user: r.requester, role: r.role, days: r.days, requests: r.requests, first_at: iso(r.first_at)!, last_at: iso(r.last_at)! })),
    MAX_LIST_ROWS,
  );
}

async function policyChanges(db: Db, p: ReportPeriod): Promise<Bounded<PolicyChange>> {
  const rows = await policyChangesIn(db, p, MAX_LIST_ROWS + 1);
  return bounded(
    rows.map((e) => ({ at: iso(e.at)!, actor: e.actor, digest: e.digest, roles: e.roles === null || Number.isNaN(Number(e.roles)) ? null : Number(e.roles), target: e.target })),
    MAX_LIST_ROWS,
  );
}

async function revocations(db: Db, p: ReportPeriod): Promise<Bounded<ReportRevocation>> {
  const rows = await revocationsIn(db, p, MAX_LIST_ROWS + 1);
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
  return inReadOnlySnapshot(db, (trx) => build(trx, period));
}

async function build(db: Db, period: ReportPeriod): Promise<AccessReport> {
  const { since, until } = period;
  const generatedAt = new Date();
  const byRole = await grantTotals(db, period, 'role');
  const byUser = await grantTotals(db, period, 'username');
  return {
    period: { since: since.toISOString(), until: until.toISOString() },
    generated_at: generatedAt.toISOString(),
    totals: await periodTotals(db, period),
    grants_by_role: { ...byRole, rows: byRole.rows.map(({ key, ...t }) => ({ role: key, ...t })) },
    grants_by_user: { ...byUser, rows: byUser.rows.map(({ key, ...t }) => ({ user: key, ...t })) },
    break_glass: await breakGlass(db, period),
    longest_grants: await listGrants(db, { kind: 'longest', period }, LONGEST_GRANTS),
    extensions: await extensions(db, period),
    never_used: await neverUsed(db, period),
    standing_access: { min_days: STANDING_ACCESS_MIN_DAYS, candidates: await standingAccess(db, period) },
    policy_changes: await policyChanges(db, period),
    revocations: await revocations(db, period),
    grants: await listGrants(db, { kind: 'started', period }, MAX_GRANT_ROWS),
  };
}

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
