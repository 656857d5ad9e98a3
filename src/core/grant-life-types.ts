// The terms of a grant's life (see grant-life.ts): the state a transition
// reads, the events, the effects it decides and the refusals it gives.

import { actorName, type Actor } from './actor.js';
import type { SessionAuth } from './auth-method.js';
import { DomainError, type ErrorCode } from './errors.js';
import type { GrantFacts, Holder } from './grant.js';
import type { NotificationEvent } from './policy-types.js';
import type { RequestStatus } from './request-input.js';

/** Someone acting, as the rules see them. */
export interface Person {
  name: string;
  groups: readonly string[];
  isAdmin: boolean;
  isAuditor: boolean;
  /** Where they called from, recorded with what they did. */
  clientAddress: string | null;
  /** How their session was authenticated, recorded with their decisions. */
  auth?: SessionAuth;
}

/** A fresh second factor given for one decision. */
export interface StepUp {
  method: string;
  /** The passkey asserted (WebAuthn credential id, base64url), for method `webauthn`. */
  credential?: string;
  at: string;
  /** The action it was given for, e.g. `request.approve`. */
  purpose: string;
  /** The request it was given for. */
  target: string;
}

export interface RequestFacts {
  id: string;
  requester: string;
  role: string;
  /** Seconds asked for (for an extension: the seconds added). */
  duration: number;
  reason: string;
  ticket: string | null;
  breakGlass: boolean;
  status: RequestStatus;
  decision: { outcome: string; rule: string; reason: string };
  policyDigest: string;
  requiredApprovals: number;
  extendsGrant: string | null;
  createdAt: Date;
  expiresAt: Date;
  closedAt: Date | null;
  closedBy: string | null;
  closeReason: string | null;
  clientAddress: string | null;
}

export interface ApprovalFacts {
  approver: string;
  decision: 'approve' | 'deny';
  comment: string | null;
  at: Date;
  clientAddress: string | null;
}

export interface GrantState extends GrantFacts {
  id: string;
  relinquishedAt: Date | null;
  endedBy: string | null;
  endReason: string | null;
  reviewedBy: string | null;
  reviewedAt: Date | null;
  reviewComment: string | null;
}

/** What a transition reads, loaded and locked by the caller. */
export interface LifeState {
  /** The request acted on; absent when there is none (or none yet). */
  request?: RequestFacts;
  /** Its decisions so far. */
  approvals: readonly ApprovalFacts[];
  /** The grant acted on: the request's own, the one it extends, or the one named. */
  grant?: GrantState;
  /** The requester's (on approval) or holder's (on a recheck) account as it is now; absent: there is none. */
  account?: Holder;
}

export type LifeEvent =
  /** File a request; `input` as the person wrote it, `id` the new request's. */
  | { kind: 'create'; id: string; by: Person; input: Record<string, unknown> }
  /** Ask for more time on a grant of one's own (state.grant), as a new request `id`. */
  | { kind: 'extend'; id: string; grantId: string; by: Person; input: Record<string, unknown> }
  /** Decide request `id` (state.request; for an extension state.grant is the grant it extends). */
  | { kind: 'approve' | 'deny'; id: string; by: Person; comment: unknown; stepUp?: StepUp }
  | { kind: 'cancel'; id: string; by: Person }
  /** Close state.request if it is pending past its time to live. */
  | { kind: 'expire' }
  | { kind: 'relinquish'; grantId: string; by: Person }
  /** Acknowledge a break-glass grant after the fact. */
  | { kind: 'review'; grantId: string; by: Person; comment: unknown }
  /** End state.grant now if it is live (a revocation, its holder disabled, ...). */
  | { kind: 'end'; end: GrantEnding }
  /** End state.grant if its holder (state.account) may no longer hold it under `policy`. */
  | { kind: 'recheck' };

/** How a grant ends early. */
export interface GrantEnding {
  /** Who ended it, as the audit log names actors. */
  actor: Actor;
  reason: string;
  /** The reason recorded with each revoked certificate; default "grant ID ended: REASON". */
  revocationReason?: string;
  clientAddress?: string | null;
  /** The holder gave it up (recorded as relinquished, event `grant.relinquish`); otherwise `grant.end`. */
  relinquished?: boolean;
  /** Why, for the audit log: `relinquish`, `revoke`, `user.disable`, `ineligible`, ... */
  cause: string;
}

/** An audit event to append (at the transition's time, outcome ok). */
export interface AuditNote {
  actor: Actor;
  action: string;
  target: string;
  clientAddress: string | null;
  details: Record<string, unknown>;
}

/** A notification to queue for the webhooks subscribed to its event. */
export interface Notice {
  event: NotificationEvent;
  /** Who caused it (never among `notify`). */
  actor: string;
  /** People and groups who should hear of it, as `user:NAME` / `group:NAME`. */
  notify: string[];
  text: string;
  request: Record<string, unknown>;
}

/** What to apply, in order, at the transition's time. */
export type Effect =
  | { kind: 'file-request'; request: RequestFacts }
  | { kind: 'record-decision'; requestId: string; approval: ApprovalFacts }
  | { kind: 'close-request'; id: string; status: Exclude<RequestStatus, 'pending'>; by: string | null; reason: string | null }
  | { kind: 'create-grant'; grant: GrantState }
  | { kind: 'extend-grant'; id: string; endsAt: Date }
  | { kind: 'review-grant'; id: string; by: string; comment: string | null }
  /** End the grant: revoke its live certificates, close its pending extensions, log it. */
  | { kind: 'end-grant'; grant: { id: string; username: string; role: string }; end: GrantEnding }
  | { kind: 'audit'; event: AuditNote }
  | { kind: 'notify'; notice: Notice };

export interface Refusal {
  code: ErrorCode;
  message: string;
}

/** What a transition decided: its effects, and a refusal to report once they are applied. */
export interface Step {
  effects: Effect[];
  refusal?: Refusal;
}

export interface Outcome extends Step {
  /** The state once the effects are applied. */
  state: LifeState;
}

export const refuse = (code: ErrorCode, message: string, effects: Effect[] = []): Step => ({ effects, refusal: { code, message } });

/** A DomainError thrown by a pure check, as a refusal; anything else is a bug and is thrown on. */
export function refusalOf(e: unknown): Refusal {
  if (e instanceof DomainError) return { code: e.code, message: e.message };
  throw e;
}

/** The state after one effect. */
export function evolve(s: LifeState, e: Effect, now: Date): LifeState {
  const grant = s.grant;
  switch (e.kind) {
    case 'file-request':
      return { ...s, request: e.request };
    case 'record-decision':
      return { ...s, approvals: [...s.approvals, e.approval] };
    case 'close-request':
      return s.request?.id === e.id ? { ...s, request: { ...s.request, status: e.status, closedAt: now, closedBy: e.by, closeReason: e.reason } } : s;
    case 'create-grant':
      return { ...s, grant: e.grant };
    case 'extend-grant':
      return grant?.id === e.id ? { ...s, grant: { ...grant, endsAt: e.endsAt } } : s;
    case 'review-grant':
      return grant?.id === e.id ? { ...s, grant: { ...grant, reviewedBy: e.by, reviewedAt: now, reviewComment: e.comment } } : s;
    case 'end-grant':
      if (grant?.id !== e.grant.id) return s;
      return { ...s, grant: { ...grant, endedAt: now, endedBy: actorName(e.end.actor), endReason: e.end.reason, relinquishedAt: e.end.relinquished ? now : grant.relinquishedAt } };
    default:
      return s;
  }
}

/** Applies `step` to `state`: the outcome a transition reports. */
export function outcome(state: LifeState, step: Step, now: Date): Outcome {
  return { ...step, state: step.effects.reduce((s, e) => evolve(s, e, now), state) };
}

/** The time the effects happen, shifted by `seconds`. */
export const after = (at: Date, seconds: number) => new Date(at.getTime() + seconds * 1000);
