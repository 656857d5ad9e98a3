// What the API and the pages show of requests, grants and roles: rows as
// views, read in as few statements as possible.

import type { Kysely, Transaction } from 'kysely';
import { canBreakGlass, canRequest, needsApproval } from '../core/decide.js';
import { formatDuration } from '../core/duration.js';
import { isLive } from '../core/grant.js';
import type { Decision, Policy, Requester, Role } from '../core/policy-types.js';
import { approvalsFor, findGrants } from '../db/requests.js';
import type { ApprovalRow, Database, GrantRow, RequestRow, RequestStatus } from '../db/schema.js';
import { grantFacts } from './grant-end.js';

export interface RequestView {
  id: string;
  requester: string;
  role: string;
  principals: string[];
  duration: string;
  duration_seconds: number;
  reason: string;
  ticket: string | null;
  break_glass: boolean;
  status: RequestStatus;
  decision: { outcome: string; rule: string; reason: string; policy_digest: string };
  required_approvals: number;
  approvals: Array<{ approver: string; decision: 'approve' | 'deny'; comment: string | null; at: string }>;
  extends_grant: string | null;
  created_at: string;
  expires_at: string;
  closed_at: string | null;
  closed_by: string | null;
  close_reason: string | null;
  grant: GrantView | null;
}

export interface GrantView {
  id: string;
  starts_at: string;
  ends_at: string;
  relinquished_at: string | null;
  /** Set when the grant ended before its window did, with who ended it and why; its certificates were revoked then. */
  ended_at: string | null;
  ended_by: string | null;
  end_reason: string | null;
  break_glass: boolean;
  live: boolean;
  review: { status: 'open' | 'acknowledged'; by: string | null; at: string | null; comment: string | null } | null;
}

export interface RoleView {
  name: string;
  description: string;
  principals: string[];
  max_duration: string;
  default_duration: string;
  require_ticket: boolean;
  break_glass: boolean;
  needs_approval: boolean;
  /** `fido`: certificates of this role only for FIDO security keys (`jit-ssh cert --sk`); null = any key. */
  require_key: 'fido' | null;
}

export interface DryRunView {
  dry_run: true;
  role: string;
  duration: string;
  duration_seconds: number;
  status: Decision['outcome'];
  decision: { outcome: string; rule: string; reason: string; policy_digest: string };
  required_approvals: number;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function grantView(g: GrantRow | undefined, at: Date): GrantView | null {
  if (!g) return null;
  return {
    id: g.id,
    starts_at: g.starts_at.toISOString(),
    ends_at: g.ends_at.toISOString(),
    relinquished_at: iso(g.relinquished_at),
    ended_at: iso(g.ended_at),
    ended_by: g.ended_by,
    end_reason: g.end_reason,
    break_glass: g.break_glass,
    live: isLive(grantFacts(g), at),
    review: g.break_glass ? { status: g.reviewed_at ? 'acknowledged' : 'open', by: g.reviewed_by, at: iso(g.reviewed_at), comment: g.review_comment } : null,
  };
}

function view(policy: Policy, r: RequestRow, approvals: ApprovalRow[], grant: GrantRow | undefined, at: Date): RequestView {
  return {
    id: r.id,
    requester: r.requester,
    role: r.role,
    principals: policy.roles.get(r.role)?.principals ?? [],
    duration: formatDuration(r.duration_seconds),
    duration_seconds: r.duration_seconds,
    reason: r.reason,
    ticket: r.ticket,
    break_glass: r.break_glass,
    status: r.status,
    decision: { outcome: r.decision_outcome, rule: r.decision_rule, reason: r.decision_reason, policy_digest: r.policy_digest },
    required_approvals: r.required_approvals,
    approvals: approvals.filter((a) => a.request_id === r.id).map((a) => ({ approver: a.approver, decision: a.decision, comment: a.comment, at: a.at.toISOString() })),
    extends_grant: r.extends_grant,
    created_at: r.created_at.toISOString(),
    expires_at: r.expires_at.toISOString(),
    closed_at: iso(r.closed_at),
    closed_by: r.closed_by,
    close_reason: r.close_reason,
    grant: grantView(grant, at),
  };
}

/** Views of `rows` at `at`, with their decisions and grants (an extension shows the grant it extends). */
export async function requestViews(db: Kysely<Database> | Transaction<Database>, policy: Policy, rows: RequestRow[], at: Date): Promise<RequestView[]> {
  const approvals = await approvalsFor(db, rows.map((r) => r.id));
  const byId = await findGrants(db, rows.map((r) => r.extends_grant ?? r.id));
  return rows.map((r) => view(policy, r, approvals, byId.get(r.extends_grant ?? r.id), at));
}

/** The roles `me` may ask for, plainly or by break-glass. */
export function roleViews(policy: Policy, me: Requester): RoleView[] {
  return [...policy.roles.values()]
    .filter((role) => canRequest(role, me) || canBreakGlass(role, me))
    .map((role: Role) => ({
      name: role.name,
      description: role.description,
      principals: role.principals,
      max_duration: formatDuration(role.maxDuration),
      default_duration: formatDuration(role.defaultDuration),
      require_ticket: role.requireTicket,
      break_glass: canBreakGlass(role, me),
      needs_approval: needsApproval(role, me),
      require_key: role.requireKey,
    }));
}

export function dryRunView(policy: Policy, req: { role: string; duration: number }, decision: Decision): DryRunView {
  return {
    dry_run: true,
    role: req.role,
    duration: formatDuration(req.duration),
    duration_seconds: req.duration,
    status: decision.outcome,
    decision: { outcome: decision.outcome, rule: decision.rule, reason: decision.reason, policy_digest: policy.digest },
    required_approvals: decision.requiredApprovals,
  };
}
