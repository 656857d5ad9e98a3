// The access review's shape (see report.ts): what each section holds, and the
// caps on its lists.

import type { SessionAuth } from '../core/auth-method.js';
import type { Period } from '../db/report-period.js';
import type { PeriodTotals } from '../db/report-queries.js';

/** One period [since, until). */
export type ReportPeriod = Period;

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
  /** How the requester (at filing) and each approver (at deciding) had signed in; null where no record says (older events). */
  sign_in: { requester: SessionAuth | null; approvers: Array<{ approver: string; auth: SessionAuth | null; step_up?: { method: string; credential?: string } }> };
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
  totals: PeriodTotals;
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
