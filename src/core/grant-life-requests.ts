// A request's transitions: filing (a new grant or an extension), decisions,
// cancellation and expiry. Requirements are checked when a request is filed
// and again when it is approved: a requester removed from a group in between
// gets nothing. An extension is judged as a request for the grant's whole
// window, and judged again when it is approved, against the grant as it is
// then: extensions approved one after the other never add up past the cap.

import { formatDuration } from './duration.js';
import { canApprove, decide } from './decide.js';
import { extensionAsRequest, extensionRefusal, holdRefusal, isLive } from './grant.js';
import { after, refuse, refusalOf, type Effect, type GrantState, type LifeEvent, type LifeState, type Person, type RequestFacts, type Step } from './grant-life-types.js';
import type { AccessRequest, Decision, Policy, Role } from './policy-types.js';
import { checkComment, parseAccessInput } from './request-input.js';

type Of<K extends LifeEvent['kind']> = Extract<LifeEvent, { kind: K }>;

/** May `who` see request `r`? Its requester, anyone who may decide it, admins and auditors. */
export function mayView(policy: Policy, who: Omit<Person, 'clientAddress'>, r: { requester: string; role: string }): boolean {
  if (r.requester === who.name || who.isAdmin || who.isAuditor) return true;
  const role = policy.roles.get(r.role);
  return !!role && canApprove(role, who, r.requester);
}

/** Is `r` waiting for a decision past its time to live? */
export const isOverdue = (r: Pick<RequestFacts, 'status' | 'expiresAt'>, now: Date) => r.status === 'pending' && r.expiresAt <= now;

export const approverSubjects = (role: Role | undefined) => (role?.approval?.approvers ?? []).map((s) => `${s.kind}:${s.name}`);

/** An audit event by `by` (null: the service itself). */
export function audit(by: Person | null, action: string, target: string, details: Record<string, unknown> = {}): Effect {
  // Whoever acts, how they signed in goes with what they did.
  return { kind: 'audit', event: { actor: by?.name ?? 'jit-ssh', action, target, clientAddress: by?.clientAddress ?? null, details: by?.auth ? { ...details, auth: by.auth } : details } };
}

function notice(event: Extract<Effect, { kind: 'notify' }>['notice']['event'], actor: string, r: RequestFacts, notify: string[], text: string): Effect {
  const request = { id: r.id, requester: r.requester, role: r.role, duration: formatDuration(r.duration), reason: r.reason, ticket: r.ticket, break_glass: r.breakGlass, extends_grant: r.extendsGrant };
  return { kind: 'notify', notice: { event, actor, notify, text, request } };
}

/** What is reported of a request that expired unanswered (its closing aside). */
export function expiryReport(r: RequestFacts): Effect[] {
  return [audit(null, 'request.expire', r.id), notice('request.expired', 'jit-ssh', r, [`user:${r.requester}`], `${r.requester}'s request for ${r.role} (${r.id}) expired unanswered`)];
}

function expiry(r: RequestFacts): Effect[] {
  return [{ kind: 'close-request', id: r.id, status: 'expired', by: null, reason: 'no decision within the request TTL' }, ...expiryReport(r)];
}

/** The grant an approved request gives: a new one from now, or its grant's end moved later. */
function grantFor(r: RequestFacts, extended: GrantState | undefined, now: Date): Effect {
  if (r.extendsGrant) return { kind: 'extend-grant', id: extended!.id, endsAt: after(extended!.endsAt, r.duration) };
  const grant: GrantState = {
    id: r.id,
    username: r.requester,
    role: r.role,
    startsAt: now,
    endsAt: after(now, r.duration),
    breakGlass: r.breakGlass,
    endedAt: null,
    relinquishedAt: null,
    endedBy: null,
    endReason: null,
    reviewedBy: null,
    reviewedAt: null,
    reviewComment: null,
  };
  return { kind: 'create-grant', grant };
}

/** A request stored with its final status: an approved one that cannot be applied (`refused`) is denied from the start. */
function filing(policy: Policy, by: Person, id: string, req: AccessRequest, decision: Decision, extended: GrantState | undefined, refused: string | null, now: Date): Step {
  const status = refused ? 'denied' : decision.outcome;
  const open = status === 'pending';
  const r: RequestFacts = {
    id,
    requester: by.name,
    role: req.role,
    duration: req.duration,
    reason: req.reason,
    ticket: req.ticket,
    breakGlass: req.breakGlass,
    status,
    decision: { outcome: decision.outcome, rule: decision.rule, reason: decision.reason },
    policyDigest: policy.digest,
    requiredApprovals: decision.requiredApprovals,
    extendsGrant: extended?.id ?? null,
    createdAt: now,
    expiresAt: after(now, policy.defaults.requestTtl),
    closedAt: open ? null : now,
    closedBy: open ? null : 'policy',
    closeReason: open ? null : (refused ?? decision.reason),
    clientAddress: by.clientAddress,
  };
  const effects: Effect[] = [{ kind: 'file-request', request: r }];
  if (status === 'approved') effects.push(grantFor(r, extended, now));
  effects.push(
    audit(by, extended ? 'request.extend' : 'request.create', r.id, {
      role: req.role,
      duration_seconds: req.duration,
      break_glass: req.breakGlass,
      ticket: req.ticket,
      outcome: status,
      rule: decision.rule,
      reason: decision.reason,
      policy_digest: policy.digest,
      // Everything else an auditor reads of the request, so verify can hold the row to its event.
      request_reason: req.reason,
      decision_outcome: decision.outcome,
      required_approvals: decision.requiredApprovals,
      expires_at: r.expiresAt.toISOString(),
      extends_grant: r.extendsGrant,
    }),
  );
  const role = policy.roles.get(req.role);
  const what = `${by.name} asks for ${req.role} for ${formatDuration(req.duration)}${extended ? ` more (extending ${extended.id})` : ''}: ${req.reason}`;
  if (status === 'pending') {
    effects.push(notice('request.created', by.name, r, approverSubjects(role), `${what} — needs ${decision.requiredApprovals} approval(s) (request ${r.id})`));
  } else if (req.breakGlass && status === 'approved') {
    const all = [...approverSubjects(role), ...(role?.breakGlass?.groups ?? []).map((g) => `group:${g}`)];
    effects.push(notice('request.break_glass', by.name, r, [...new Set(all)], `BREAK-GLASS: ${what} — granted at once; review required (grant ${r.id})`));
  } else if (status === 'approved') {
    effects.push(notice(extended ? 'request.extended' : 'request.approved', by.name, r, [], `${what} — ${decision.reason}`));
  } else {
    effects.push(notice('request.denied', by.name, r, [], `${what} — denied: ${r.closeReason ?? decision.reason}`));
  }
  return { effects };
}

/** A role that takes requests only from sessions opened with a passkey: the refusal for anyone else. */
export function mfaRefusal(role: Role | undefined, by: Person): Step | null {
  if (role?.requireMfa !== 'webauthn' || by.auth?.webauthn) return null;
  return refuse('mfa_required', `requests for ${role.name} need a session opened with a passkey (policy require_mfa: webauthn): register one on your account page, then log in again on the web pages`);
}

export function create(e: Of<'create'>, policy: Policy, now: Date): Step {
  const req = parseAccessInput(e.input, policy.roles.get(String(e.input['role'])));
  const noMfa = mfaRefusal(policy.roles.get(req.role), e.by);
  if (noMfa) return noMfa;
  return filing(policy, e.by, e.id, req, decide(policy, e.by, req, now), undefined, null, now);
}

export function extend(s: LifeState, e: Of<'extend'>, policy: Policy, now: Date): Step {
  const g = s.grant;
  if (!g || g.username !== e.by.name) return refuse('not_found', `no grant ${e.grantId} of yours`);
  if (!isLive(g, now)) return refuse('conflict', `grant ${e.grantId} has ended; file a new request`);
  const noMfa = mfaRefusal(policy.roles.get(g.role), e.by);
  if (noMfa) return noMfa;
  let req: AccessRequest;
  try {
    req = parseAccessInput({ ...e.input, role: g.role, break_glass: g.breakGlass }, policy.roles.get(g.role));
  } catch (err) {
    return { effects: [], refusal: refusalOf(err) };
  }
  // A request for the whole window from the grant's start to its new end: extensions filed or
  // approved at the same time cannot add up past the role's maximum.
  const decision = decide(policy, e.by, extensionAsRequest(g, req), now);
  const refused = decision.outcome === 'approved' ? extensionRefusal(policy, g, req.duration, now) : null;
  return filing(policy, e.by, e.id, req, decision, g, refused, now);
}

/** The pending request `id` for a decision, or the refusal (marking it expired when its time to live has passed). */
function pending(s: LifeState, id: string, by: Person, policy: Policy, now: Date): RequestFacts | Step {
  const r = s.request;
  if (!r || !mayView(policy, by, r)) return refuse('not_found', `no request ${id}`);
  if (isOverdue(r, now)) return refuse('conflict', `request ${id} has expired`, expiry(r));
  if (r.status !== 'pending') return refuse('conflict', `request ${id} is already ${r.status}`);
  return r;
}

/** A step-up proof counts only for the request and verdict it was given for. */
export function stepUpMismatch(e: Of<'approve' | 'deny'>): Step | null {
  return e.stepUp && (e.stepUp.target !== e.id || e.stepUp.purpose !== `request.${e.kind}`) ? refuse('forbidden', 'the code was confirmed for another action') : null;
}

export function decideOn(s: LifeState, e: Of<'approve' | 'deny'>, policy: Policy, now: Date): Step {
  const text = checkComment(e.comment);
  const r = pending(s, e.id, e.by, policy, now);
  if ('effects' in r) return r;
  const role = policy.roles.get(r.role);
  const me = e.by.name;
  if (r.requester === me) return refuse('forbidden', 'you cannot decide your own request');
  if (!role || !canApprove(role, e.by, r.requester)) return refuse('forbidden', `you may not decide requests for ${r.role}`);
  // An approval grants access: with a stolen session alone it must not, so policy asks for a fresh code bound to this request.
  if (e.kind === 'approve' && role.approval?.stepUp !== 'optional' && !e.stepUp) {
    return policy.mfa.approval === 'webauthn'
      ? refuse('step_up_required', `approving a request for ${r.role} needs your passkey, confirmed for this request on the web pages`)
      : refuse('step_up_required', `approving a request for ${r.role} needs a fresh code from your authenticator, given for this request: send "totp" with the approval`);
  }
  // Where policy asks for a passkey, a code is not enough: codes can be phished, a passkey answers only this site.
  if (e.kind === 'approve' && e.stepUp && policy.mfa.approval === 'webauthn' && e.stepUp.method !== 'webauthn') {
    return refuse('mfa_required', `approving a request for ${r.role} needs your passkey (policy mfa: webauthn), confirmed for this request on the web pages; an authenticator code is not enough`);
  }
  if (s.approvals.some((a) => a.approver === me)) return refuse('conflict', `you have already decided request ${e.id}`);
  const stepUp = e.stepUp ? { step_up: { method: e.stepUp.method, at: e.stepUp.at, ...(e.stepUp.credential ? { credential: e.stepUp.credential } : {}) } } : {};
  const effects: Effect[] = [
    { kind: 'record-decision', requestId: r.id, approval: { approver: me, decision: e.kind, comment: text, at: now, clientAddress: e.by.clientAddress } },
    audit(e.by, e.kind === 'approve' ? 'request.approve' : 'request.deny', r.id, { comment: text, ...stepUp }),
  ];
  if (e.kind === 'deny') {
    effects.push(
      { kind: 'close-request', id: r.id, status: 'denied', by: me, reason: text ?? `denied by ${me}` },
      notice('request.denied', me, r, [`user:${r.requester}`], `${me} denied ${r.requester}'s request for ${r.role} (${r.id})${text ? `: ${text}` : ''}`),
    );
    return { effects };
  }
  // Approval time re-check: the requester must still be someone who may ask.
  if (holdRefusal(role, r.role, s.account, r.breakGlass)) {
    effects.push({ kind: 'close-request', id: r.id, status: 'denied', by: 'policy', reason: `${r.requester} no longer may request ${r.role}` }, audit(null, 'request.deny', r.id, { reason: 'requester no longer eligible' }));
    return refuse('conflict', `${r.requester} no longer may request ${r.role}; the request was denied`, effects);
  }
  const approvals = s.approvals.filter((a) => a.decision === 'approve').length + 1;
  if (approvals < r.requiredApprovals) return { effects };
  const extended = r.extendsGrant ? (s.grant?.id === r.extendsGrant ? s.grant : undefined) : undefined;
  const refused = r.extendsGrant ? (extended ? extensionRefusal(policy, extended, r.duration, now) : 'the grant has ended; file a new request') : null;
  if (!refused) effects.push(grantFor(r, extended, now));
  effects.push(
    { kind: 'close-request', id: r.id, status: refused ? 'denied' : 'approved', by: refused ? 'policy' : me, reason: refused ?? `approved by ${me}` },
    audit(e.by, refused ? 'request.deny' : 'request.approved', r.id, refused ? { reason: refused } : { approvals }),
    notice(refused ? 'request.denied' : r.extendsGrant ? 'request.extended' : 'request.approved', me, r, [`user:${r.requester}`], `${me} approved ${r.requester}'s request for ${r.role} for ${formatDuration(r.duration)} (${r.id})${refused ? ` but ${refused}` : ''}`),
  );
  return refused ? refuse('conflict', `request ${r.id} was denied: ${refused}`, effects) : { effects };
}

export function cancel(s: LifeState, e: Of<'cancel'>, policy: Policy, now: Date): Step {
  const r = pending(s, e.id, e.by, policy, now);
  if ('effects' in r) return r;
  if (r.requester !== e.by.name) return refuse('forbidden', 'only the requester can cancel a request');
  return {
    effects: [
      { kind: 'close-request', id: r.id, status: 'cancelled', by: e.by.name, reason: 'cancelled by the requester' },
      audit(e.by, 'request.cancel', r.id),
      notice('request.cancelled', r.requester, r, approverSubjects(policy.roles.get(r.role)), `${r.requester} cancelled the request for ${r.role} (${r.id})`),
    ],
  };
}

export function expire(s: LifeState, now: Date): Step {
  return { effects: s.request && isOverdue(s.request, now) ? expiry(s.request) : [] };
}
