// The access workflow: requests, decisions, approvals, grants, extensions,
// relinquishment and break-glass reviews. Each state change happens in one
// transaction with its audit event and its notifications; rows are locked
// first so concurrent approvals, denials and cancellations of one request are
// applied one after the other and end in one consistent state.
//
// Requirements are checked when a request is filed and again when it is
// approved: a requester removed from a group in between gets nothing.

import type { Kysely, Transaction } from 'kysely';
import { formatDuration, LONGEST_GRANT, parseDuration } from '../core/duration.js';
import { DomainError } from '../core/errors.js';
import { canApprove, canBreakGlass, canRequest, decide, matchesSubjects } from '../core/decide.js';
import { extensionAsRequest, extensionRefusal, holdRefusal, isLive } from '../core/grant.js';
import type { AccessRequest, Decision, NotificationEvent, Policy, Requester, Role } from '../core/policy-types.js';
import { appendEvent } from '../db/audit-events.js';
import { isUniqueViolation } from '../db/errors.js';
import {
  approvalsFor,
  closeRequest,
  expirePending,
  findRequest,
  grantsFor,
  insertApproval,
  insertGrant,
  insertRequest,
  listRequests,
  liveGrantHolders,
  lockGrant,
  lockLiveGrants,
  lockRequest,
  updateGrant,
} from '../db/requests.js';
import type { ApprovalRow, Database, GrantRow, RequestRow, RequestStatus } from '../db/schema.js';
import { findUser } from '../db/users.js';
import type { Principal, StepUpProof } from './auth.js';
import { newId } from './ids.js';
import { enqueue } from './notify.js';
import { endGrants, grantFacts, type EndedGrants } from './grant-end.js';

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

export interface Caller {
  principal: Principal;
  clientAddress: string | null;
  /** A fresh TOTP code verified for this very decision (the web pages ask for one); recorded with it. */
  stepUp?: StepUpProof;
}

export interface RequestService {
  roles(who: Principal): RoleView[];
  create(caller: Caller, input: Record<string, unknown>, dryRun: boolean): Promise<RequestView | DryRunView>;
  list(who: Principal, filter: { status?: string; reviews?: boolean }): Promise<RequestView[]>;
  get(who: Principal, id: string): Promise<RequestView>;
  approve(caller: Caller, id: string, comment: unknown): Promise<RequestView>;
  deny(caller: Caller, id: string, comment: unknown): Promise<RequestView>;
  cancel(caller: Caller, id: string): Promise<RequestView>;
  extend(caller: Caller, grantId: string, input: Record<string, unknown>): Promise<RequestView>;
  /** Ends the caller's grant now and revokes its live certificates (listed in `revoked`). */
  relinquish(caller: Caller, grantId: string): Promise<RequestView & { revoked: string[] }>;
  acknowledge(caller: Caller, grantId: string, comment: unknown): Promise<RequestView>;
  /** Closes unanswered requests past their TTL; returns how many. */
  expireDue(): Promise<number>;
  /**
   * Ends every live grant whose holder may no longer hold it under the policy in
   * force (disabled, removed from the role's requesters or break-glass list, the
   * role gone), revoking its certificates. Run after a policy reload and periodically.
   */
  endIneligible(): Promise<EndedGrants>;
  /** Roles whose requests `who` may decide (as an approver named by the policy). */
  decidableRoles(who: Principal): string[];
  /** `requester`'s most recent requests that `who` may see, newest first: context for a decision. */
  history(who: Principal, requester: string, limit?: number): Promise<RequestView[]>;
}

export interface RequestDeps {
  db: Kysely<Database>;
  policy: () => Policy;
  now?: () => Date;
}

const STATUSES: RequestStatus[] = ['pending', 'approved', 'denied', 'cancelled', 'expired'];
const MAX_REASON = 1000;
const TICKET = /^[A-Za-z0-9][A-Za-z0-9._:#/+-]{0,127}$/;

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const requesterOf = (p: Principal): Requester => ({ name: p.username, groups: p.groups });

/** A failure that must still commit what the transaction changed (e.g. marking a request expired). */
class CommittedRefusal extends Error {
  constructor(readonly error: DomainError) {
    super(error.message);
  }
}

function optionalText(v: unknown, what: string, max: number): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > max || /[\x00-\x08\x0b-\x1f\x7f]/.test(v)) {
    throw new DomainError('invalid_input', `${what} must be text of at most ${max} characters`);
  }
  return v;
}

/** A decision's or a review's comment, or null; exported so a caller can check it before spending a step-up code on it. */
export function checkComment(v: unknown): string | null {
  return optionalText(v, 'comment', MAX_REASON);
}

function parseRequestedDuration(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const secs = typeof v === 'number' ? (Number.isSafeInteger(v) && v > 0 ? v : null) : typeof v === 'string' ? parseDuration(v) : null;
  if (secs === null) throw new DomainError('invalid_input', 'duration must be like 90s, 15m, 2h or 1h30m');
  if (secs > LONGEST_GRANT) throw new DomainError('invalid_input', `duration must be at most ${formatDuration(LONGEST_GRANT)}`);
  return secs;
}

function parseAccessInput(input: Record<string, unknown>, role: Role | undefined): AccessRequest & { ticket: string | null } {
  if (typeof input['role'] !== 'string' || input['role'].length === 0) throw new DomainError('invalid_input', 'role is required');
  // An unknown role is filed (and denied by policy), so it must be text the database can store.
  if (input['role'].length > 64 || /[\x00-\x1f\x7f]/.test(input['role'])) throw new DomainError('invalid_input', 'role must be the name of a role');
  const reason = optionalText(input['reason'], 'reason', MAX_REASON);
  if (reason === null) throw new DomainError('invalid_input', 'reason is required: say why you need access');
  const ticket = optionalText(input['ticket'], 'ticket', 128);
  if (ticket !== null && !TICKET.test(ticket)) throw new DomainError('invalid_input', 'ticket must be an identifier such as OPS-123');
  if (input['break_glass'] !== undefined && typeof input['break_glass'] !== 'boolean') throw new DomainError('invalid_input', 'break_glass must be true or false');
  return {
    role: input['role'],
    duration: parseRequestedDuration(input['duration'], role?.defaultDuration ?? 3600),
    reason,
    ticket,
    breakGlass: input['break_glass'] === true,
  };
}

export function createRequestService(deps: RequestDeps): RequestService {
  const { db } = deps;
  const now = deps.now ?? (() => new Date());

  const approverSubjects = (role: Role | undefined) => (role?.approval?.approvers ?? []).map((s) => `${s.kind}:${s.name}`);

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

  function view(r: RequestRow, approvals: ApprovalRow[], grant: GrantRow | undefined, at: Date): RequestView {
    return {
      id: r.id,
      requester: r.requester,
      role: r.role,
      principals: deps.policy().roles.get(r.role)?.principals ?? [],
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

  async function views(rows: RequestRow[], trx: Kysely<Database> | Transaction<Database> = db): Promise<RequestView[]> {
    const at = now();
    const approvals = await approvalsFor(trx, rows.map((r) => r.id));
    const grants = await grantsFor(trx, rows.map((r) => r.extends_grant ?? r.id));
    const byId = new Map(grants.map((g) => [g.id, g]));
    return rows.map((r) => view(r, approvals, byId.get(r.extends_grant ?? r.id), at));
  }

  async function load(id: string, trx: Kysely<Database> | Transaction<Database> = db): Promise<RequestView> {
    const r = await findRequest(trx, id);
    if (!r) throw new DomainError('not_found', `no request ${id}`);
    return (await views([r], trx))[0]!;
  }

  /** May `who` see request `r`? Its requester, anyone who may decide it, admins and auditors. */
  function visible(who: Principal, r: RequestRow): boolean {
    if (r.requester === who.username || who.isAdmin || who.isAuditor) return true;
    const role = deps.policy().roles.get(r.role);
    return !!role && canApprove(role, requesterOf(who), r.requester);
  }

  /** Runs `fn` in a transaction; a CommittedRefusal commits, then fails the call. */
  async function tx<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    let refusal: DomainError | undefined;
    const result = await db.transaction().execute(async (trx) => {
      try {
        return await fn(trx);
      } catch (e) {
        if (e instanceof CommittedRefusal) {
          refusal = e.error;
          return undefined as T;
        }
        throw e;
      }
    });
    if (refusal) throw refusal;
    return result;
  }

  async function audit(trx: Transaction<Database>, at: Date, caller: Caller | null, action: string, target: string, details: Record<string, unknown> = {}) {
    await appendEvent(trx, { at, actor: caller?.principal.username ?? 'jit-ssh', action, target, outcome: 'ok', clientAddress: caller?.clientAddress ?? null, details });
  }

  async function notify(trx: Transaction<Database>, at: Date, event: NotificationEvent, actor: string, r: RequestRow, notifyWho: string[], text: string) {
    await enqueue(trx, deps.policy().webhooks, {
      event,
      actor,
      notify: notifyWho,
      text,
      request: { id: r.id, requester: r.requester, role: r.role, duration: formatDuration(r.duration_seconds), reason: r.reason, ticket: r.ticket, break_glass: r.break_glass, extends_grant: r.extends_grant },
    }, at);
  }

  /**
   * Creates the grant, or moves an extended grant's end. An extension is judged again here,
   * under the grant's lock, against the grant as it is now: others may have been approved since
   * it was filed, and together they must stay within the role's cap.
   */
  async function approvalRefusal(trx: Transaction<Database>, r: Pick<RequestRow, 'extends_grant' | 'duration_seconds'>, at: Date): Promise<string | null> {
    if (!r.extends_grant) return null;
    const g = await lockGrant(trx, r.extends_grant);
    return g ? extensionRefusal(deps.policy(), grantFacts(g), r.duration_seconds, at) : 'the grant has ended; file a new request';
  }

  /** Applies an approval `approvalRefusal` accepted in the same transaction. */
  async function applyApproval(trx: Transaction<Database>, r: RequestRow, at: Date): Promise<void> {
    if (r.extends_grant) {
      const g = (await lockGrant(trx, r.extends_grant))!;
      await updateGrant(trx, g.id, { ends_at: new Date(g.ends_at.getTime() + r.duration_seconds * 1000) });
    } else {
      await insertGrant(trx, { id: r.id, username: r.requester, role: r.role, starts_at: at, ends_at: new Date(at.getTime() + r.duration_seconds * 1000), break_glass: r.break_glass });
    }
  }

  /** What a filing is judged to be, decided inside its transaction (an extension: under the grant's lock). */
  type Judge = (trx: Transaction<Database>, at: Date) => Promise<{ req: AccessRequest & { ticket: string | null }; decision: Decision; extendsGrant: string | null }>;

  async function file(caller: Caller, judge: Judge): Promise<RequestView> {
    const policy = deps.policy();
    return tx(async (trx) => {
      const at = now();
      const { req, decision, extendsGrant } = await judge(trx, at);
      const role = policy.roles.get(req.role);
      // A request is stored with its final status: an approved one that cannot be applied is denied from the start.
      const refused = decision.outcome === 'approved' ? await approvalRefusal(trx, { extends_grant: extendsGrant, duration_seconds: req.duration }, at) : null;
      const status: RequestStatus = refused ? 'denied' : decision.outcome;
      const row: RequestRow = {
        id: newId(at),
        requester: caller.principal.username,
        role: req.role,
        duration_seconds: req.duration,
        reason: req.reason,
        ticket: req.ticket,
        break_glass: req.breakGlass,
        status,
        decision_outcome: decision.outcome,
        decision_rule: decision.rule,
        decision_reason: decision.reason,
        policy_digest: policy.digest,
        required_approvals: decision.requiredApprovals,
        extends_grant: extendsGrant,
        created_at: at,
        expires_at: new Date(at.getTime() + policy.defaults.requestTtl * 1000),
        closed_at: status === 'pending' ? null : at,
        closed_by: status === 'pending' ? null : 'policy',
        close_reason: status === 'pending' ? null : (refused ?? decision.reason),
        client_address: caller.clientAddress,
      };
      await insertRequest(trx, row);
      const who = caller.principal.username;
      const what = `${who} asks for ${req.role} for ${formatDuration(req.duration)}${extendsGrant ? ` more (extending ${extendsGrant})` : ''}: ${req.reason}`;
      if (status === 'approved') await applyApproval(trx, row, at);
      await audit(trx, at, caller, extendsGrant ? 'request.extend' : 'request.create', row.id, {
        role: req.role,
        duration_seconds: req.duration,
        break_glass: req.breakGlass,
        ticket: req.ticket,
        outcome: row.status,
        rule: decision.rule,
        reason: decision.reason,
        policy_digest: policy.digest,
        // Everything else an auditor reads of the request, so verify can hold the row to its event.
        request_reason: req.reason,
        decision_outcome: decision.outcome,
        required_approvals: decision.requiredApprovals,
        expires_at: row.expires_at.toISOString(),
        extends_grant: extendsGrant,
      });
      if (row.status === 'pending') {
        await notify(trx, at, 'request.created', who, row, approverSubjects(role), `${what} — needs ${decision.requiredApprovals} approval(s) (request ${row.id})`);
      } else if (req.breakGlass && row.status === 'approved') {
        const all = [...approverSubjects(role), ...(role?.breakGlass?.groups ?? []).map((g) => `group:${g}`)];
        await notify(trx, at, 'request.break_glass', who, row, [...new Set(all)], `BREAK-GLASS: ${what} — granted at once; review required (grant ${row.id})`);
      } else if (row.status === 'approved') {
        await notify(trx, at, extendsGrant ? 'request.extended' : 'request.approved', who, row, [], `${what} — ${decision.reason}`);
      } else {
        await notify(trx, at, 'request.denied', who, row, [], `${what} — denied: ${row.close_reason ?? decision.reason}`);
      }
      return load(row.id, trx);
    });
  }

  /** Locks a pending request for a decision, expiring it if its TTL has passed. */
  async function lockPending(trx: Transaction<Database>, caller: Caller, id: string, at: Date): Promise<RequestRow> {
    const r = await lockRequest(trx, id);
    if (!r || !visible(caller.principal, r)) throw new DomainError('not_found', `no request ${id}`);
    if (r.status === 'pending' && r.expires_at <= at) {
      await closeRequest(trx, r.id, 'expired', at, null, 'no decision within the request TTL');
      await audit(trx, at, null, 'request.expire', r.id);
      await notify(trx, at, 'request.expired', 'jit-ssh', r, [`user:${r.requester}`], `${r.requester}'s request for ${r.role} (${r.id}) expired unanswered`);
      throw new CommittedRefusal(new DomainError('conflict', `request ${id} has expired`));
    }
    if (r.status !== 'pending') throw new DomainError('conflict', `request ${id} is already ${r.status}`);
    return r;
  }

  async function decideOn(caller: Caller, id: string, comment: unknown, verdict: 'approve' | 'deny'): Promise<RequestView> {
    const text = checkComment(comment);
    // A step-up proof counts only for the request it was given for.
    if (caller.stepUp && (caller.stepUp.target !== id || caller.stepUp.purpose !== `request.${verdict}`)) {
      throw new DomainError('forbidden', 'the code was confirmed for another action');
    }
    const stepUp = caller.stepUp ? { step_up: { method: caller.stepUp.method, at: caller.stepUp.at } } : {};
    return tx(async (trx) => {
      const at = now();
      // Locks are taken grant first, then request, as ending a grant does (it closes the grant's
      // pending extensions): the other order deadlocks an approval against a grant ending.
      const extended = (await findRequest(trx, id))?.extends_grant;
      if (extended) await lockGrant(trx, extended);
      const r = await lockPending(trx, caller, id, at);
      const role = deps.policy().roles.get(r.role);
      const me = caller.principal.username;
      if (r.requester === me) throw new DomainError('forbidden', 'you cannot decide your own request');
      if (!role || !canApprove(role, requesterOf(caller.principal), r.requester)) throw new DomainError('forbidden', `you may not decide requests for ${r.role}`);
      // An approval grants access: with a stolen session alone it must not, so policy asks for a fresh code bound to this request.
      if (verdict === 'approve' && role.approval?.stepUp !== 'optional' && !caller.stepUp) {
        throw new DomainError('step_up_required', `approving a request for ${r.role} needs a fresh code from your authenticator, given for this request: send "totp" with the approval`);
      }
      try {
        await insertApproval(trx, { request_id: r.id, approver: me, decision: verdict, comment: text, at, client_address: caller.clientAddress });
      } catch (e) {
        if (isUniqueViolation(e, 'approvals_pkey')) throw new DomainError('conflict', `you have already decided request ${id}`);
        throw e;
      }
      await audit(trx, at, caller, verdict === 'approve' ? 'request.approve' : 'request.deny', r.id, { comment: text, ...stepUp });
      if (verdict === 'deny') {
        await closeRequest(trx, r.id, 'denied', at, me, text ?? `denied by ${me}`);
        await notify(trx, at, 'request.denied', me, r, [`user:${r.requester}`], `${me} denied ${r.requester}'s request for ${r.role} (${r.id})${text ? `: ${text}` : ''}`);
        return load(r.id, trx);
      }
      // Approval time re-check: the requester must still be someone who may ask.
      const requester = await findUser(trx, r.requester);
      const stillAllowed = requester?.enabled && (r.break_glass ? canBreakGlass(role, requester) : canRequest(role, { name: requester.name, groups: requester.groups }));
      if (!stillAllowed) {
        await closeRequest(trx, r.id, 'denied', at, 'policy', `${r.requester} no longer may request ${r.role}`);
        await audit(trx, at, null, 'request.deny', r.id, { reason: 'requester no longer eligible' });
        throw new CommittedRefusal(new DomainError('conflict', `${r.requester} no longer may request ${r.role}; the request was denied`));
      }
      const approvals = (await approvalsFor(trx, [r.id])).filter((a) => a.decision === 'approve').length;
      if (approvals >= r.required_approvals) {
        const refused = await approvalRefusal(trx, r, at);
        if (!refused) await applyApproval(trx, r, at);
        await closeRequest(trx, r.id, refused ? 'denied' : 'approved', at, refused ? 'policy' : me, refused ?? `approved by ${me}`);
        await audit(trx, at, caller, refused ? 'request.deny' : 'request.approved', r.id, refused ? { reason: refused } : { approvals });
        const event = refused ? 'request.denied' : r.extends_grant ? 'request.extended' : 'request.approved';
        await notify(trx, at, event, me, r, [`user:${r.requester}`], `${me} approved ${r.requester}'s request for ${r.role} for ${formatDuration(r.duration_seconds)} (${r.id})${refused ? ` but ${refused}` : ''}`);
        if (refused) throw new CommittedRefusal(new DomainError('conflict', `request ${r.id} was denied: ${refused}`));
      }
      return load(r.id, trx);
    });
  }

  /** The caller's own grant, locked, or not found. */
  async function ownGrant(trx: Transaction<Database>, caller: Caller, grantId: string): Promise<GrantRow> {
    const g = await lockGrant(trx, grantId);
    if (!g || g.username !== caller.principal.username) throw new DomainError('not_found', `no grant ${grantId} of yours`);
    return g;
  }

  return {
    roles(who) {
      const me = requesterOf(who);
      return [...deps.policy().roles.values()]
        .filter((role) => canRequest(role, me) || canBreakGlass(role, me))
        .map((role) => ({
          name: role.name,
          description: role.description,
          principals: role.principals,
          max_duration: formatDuration(role.maxDuration),
          default_duration: formatDuration(role.defaultDuration),
          require_ticket: role.requireTicket,
          break_glass: canBreakGlass(role, me),
          needs_approval: !role.autoApprove.some((rule) => (rule.groups.length === 0 && rule.users.length === 0) || rule.groups.some((g) => me.groups.includes(g)) || rule.users.includes(me.name)),
        }));
    },

    async create(caller, input, dryRun) {
      const policy = deps.policy();
      const role = policy.roles.get(String(input['role']));
      const req = parseAccessInput(input, role);
      const decision = decide(policy, requesterOf(caller.principal), req, now());
      if (dryRun) {
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
      return file(caller, async () => ({ req, decision, extendsGrant: null }));
    },

    async list(who, filter) {
      if (filter.status !== undefined && !STATUSES.includes(filter.status as RequestStatus)) {
        throw new DomainError('invalid_input', `status must be one of ${STATUSES.join(', ')}`);
      }
      const me = requesterOf(who);
      const decidable = [...deps.policy().roles.values()].filter((role) => role.approval && matchesSubjects(role.approval.approvers, me)).map((r) => r.name);
      const rows = await listRequests(db, { requester: who.username, roles: decidable, status: filter.status as RequestStatus | undefined, all: who.isAdmin || who.isAuditor });
      let out = await views(rows.filter((r) => visible(who, r)));
      if (filter.reviews) out = out.filter((v) => v.grant?.review?.status === 'open' && v.requester !== who.username);
      return out;
    },

    async get(who, id) {
      const r = await findRequest(db, id);
      if (!r || !visible(who, r)) throw new DomainError('not_found', `no request ${id}`);
      return (await views([r]))[0]!;
    },

    approve: (caller, id, comment) => decideOn(caller, id, comment, 'approve'),
    deny: (caller, id, comment) => decideOn(caller, id, comment, 'deny'),

    async cancel(caller, id) {
      return tx(async (trx) => {
        const at = now();
        const r = await lockPending(trx, caller, id, at);
        if (r.requester !== caller.principal.username) throw new DomainError('forbidden', 'only the requester can cancel a request');
        await closeRequest(trx, r.id, 'cancelled', at, caller.principal.username, 'cancelled by the requester');
        await audit(trx, at, caller, 'request.cancel', r.id);
        const role = deps.policy().roles.get(r.role);
        await notify(trx, at, 'request.cancelled', r.requester, r, approverSubjects(role), `${r.requester} cancelled the request for ${r.role} (${r.id})`);
        return load(r.id, trx);
      });
    },

    async extend(caller, grantId, input) {
      return file(caller, async (trx, at) => {
        const g = await ownGrant(trx, caller, grantId);
        if (!isLive(grantFacts(g), at)) throw new DomainError('conflict', `grant ${grantId} has ended; file a new request`);
        const policy = deps.policy();
        const role = policy.roles.get(g.role);
        const req = parseAccessInput({ ...input, role: g.role, break_glass: g.break_glass }, role);
        // Judged under the grant's lock as a request for the whole window from its start to the new
        // end: extensions filed or approved at the same time cannot add up past the role's maximum.
        return { req, decision: decide(policy, requesterOf(caller.principal), extensionAsRequest(grantFacts(g), req), at), extendsGrant: g.id };
      });
    },

    async relinquish(caller, grantId) {
      return tx(async (trx) => {
        const at = now();
        const g = await ownGrant(trx, caller, grantId);
        if (!isLive(grantFacts(g), at)) throw new DomainError('conflict', `grant ${grantId} has already ended`);
        const me = caller.principal.username;
        const { revoked } = await endGrants(trx, [g], { at, actor: me, reason: `relinquished by ${me}`, clientAddress: caller.clientAddress, relinquished: true, cause: 'relinquish' });
        return { ...(await load(g.id, trx)), revoked };
      });
    },

    async acknowledge(caller, grantId, comment) {
      const text = checkComment(comment);
      return tx(async (trx) => {
        const at = now();
        const g = await lockGrant(trx, grantId);
        const role = g && deps.policy().roles.get(g.role);
        const me = caller.principal;
        if (!g || !g.break_glass) throw new DomainError('not_found', `no break-glass grant ${grantId}`);
        if (g.username === me.username) throw new DomainError('forbidden', 'someone other than the holder must review a break-glass grant');
        if (!me.isAdmin && !(role && canApprove(role, requesterOf(me), g.username))) throw new DomainError('forbidden', `you may not review grants for ${g.role}`);
        if (g.reviewed_at) throw new DomainError('conflict', `grant ${grantId} was already reviewed by ${g.reviewed_by}`);
        await updateGrant(trx, g.id, { reviewed_by: me.username, reviewed_at: at, review_comment: text });
        await audit(trx, at, caller, 'grant.review', g.id, { comment: text });
        return load(g.id, trx);
      });
    },

    decidableRoles(who) {
      const me = requesterOf(who);
      return [...deps.policy().roles.values()].filter((role) => role.approval && matchesSubjects(role.approval.approvers, me)).map((r) => r.name);
    },

    async history(who, requester, limit = 10) {
      const rows = await listRequests(db, { requester, limit: Math.min(Math.max(limit, 1), 100) });
      return views(rows.filter((r) => visible(who, r)));
    },

    async endIneligible() {
      const at = now();
      const policy = deps.policy();
      const holder = (g: { username: string; enabled: boolean | null; groups: readonly string[] | null }) => (g.enabled === null ? undefined : { name: g.username, groups: g.groups ?? [], enabled: g.enabled });
      const suspects = (await liveGrantHolders(db, at)).filter((g) => holdRefusal(policy.roles.get(g.role), g.role, holder(g), g.break_glass) !== null);
      if (suspects.length === 0) return { ended_grants: [], revoked: [] };
      return tx(async (trx) => {
        const out: EndedGrants = { ended_grants: [], revoked: [] };
        // Judged again under the lock, with the holder as they are now.
        for (const g of await lockLiveGrants(trx, at, { ids: suspects.map((x) => x.id) })) {
          const u = await findUser(trx, g.username);
          const why = holdRefusal(policy.roles.get(g.role), g.role, u && { name: u.name, groups: u.groups, enabled: u.enabled }, g.break_glass);
          if (!why) continue;
          const ended = await endGrants(trx, [g], { at, actor: 'jit-ssh', reason: `${why} (policy ${policy.digest.slice(0, 12)})`, cause: 'ineligible' });
          out.ended_grants.push(...ended.ended_grants);
          out.revoked.push(...ended.revoked);
        }
        return out;
      });
    },

    async expireDue() {
      return tx(async (trx) => {
        const at = now();
        const expired = await expirePending(trx, at);
        for (const r of expired) {
          await audit(trx, at, null, 'request.expire', r.id);
          await notify(trx, at, 'request.expired', 'jit-ssh', r, [`user:${r.requester}`], `${r.requester}'s request for ${r.role} (${r.id}) expired unanswered`);
        }
        return expired.length;
      });
    },
  };
}
