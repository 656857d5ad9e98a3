// A grant's life as pure transitions: (state, event, policy, now) → the new
// state and the effects to apply. A request is filed (approved at once by an
// auto-approve rule or break-glass, pending, or denied), decided by approvers
// (approvals counted up to the role's number; approving needs a fresh second
// factor unless the policy says otherwise), cancelled by its requester or
// expired unanswered. Its grant is extended (judged against its whole window
// and the role's or break-glass cap), relinquished, reviewed after a
// break-glass, ended early (revoked, its holder disabled or no longer allowed);
// an end is final, and a closed request is never decided again.
//
// The services load and lock the state, call `transition`, and apply its
// effects in order in one transaction. A refusal comes back as data, with the
// effects that must still be applied before it is reported (a request found
// expired is marked expired; one whose requester is no longer eligible is
// denied); a refusal with no effects changes nothing.

import { DomainError } from './errors.js';
import { create, decideOn, extend, cancel, expire, stepUpMismatch } from './grant-life-requests.js';
import { end, recheck, relinquish, review } from './grant-life-grants.js';
import { outcome, refusalOf, type LifeEvent, type LifeState, type Outcome, type Refusal, type Step } from './grant-life-types.js';
import type { Policy } from './policy-types.js';
import { checkComment, parseAccessInput } from './request-input.js';

export * from './grant-life-types.js';
export { approverSubjects, expiryReport, isOverdue, mayView } from './grant-life-requests.js';
export { endReport, extensionCloseReason, revocationReason } from './grant-life-grants.js';

/**
 * The refusal `event` gets whatever the state: what was written is not
 * acceptable. The services ask before they open a transaction, so bad input
 * touches nothing; `transition` asks first too.
 */
export function precheck(event: LifeEvent, policy: Policy): Refusal | null {
  try {
    switch (event.kind) {
      case 'create':
        parseAccessInput(event.input, policy.roles.get(String(event.input['role'])));
        return null;
      case 'approve':
      case 'deny':
        checkComment(event.comment);
        return stepUpMismatch(event)?.refusal ?? null;
      case 'review':
        checkComment(event.comment);
        return null;
      default:
        return null;
    }
  } catch (e) {
    return refusalOf(e);
  }
}

function step(s: LifeState, e: LifeEvent, policy: Policy, now: Date): Step {
  switch (e.kind) {
    case 'create':
      return create(e, policy, now);
    case 'extend':
      return extend(s, e, policy, now);
    case 'approve':
    case 'deny':
      return decideOn(s, e, policy, now);
    case 'cancel':
      return cancel(s, e, policy, now);
    case 'expire':
      return expire(s, now);
    case 'relinquish':
      return relinquish(s, e, now);
    case 'review':
      return review(s, e, policy);
    case 'end':
      return end(s, e, now);
    case 'recheck':
      return recheck(s, policy, now);
  }
}

/** What `event` does to `state` under `policy` at `now`. */
export function transition(state: LifeState, event: LifeEvent, policy: Policy, now: Date): Outcome {
  const early = precheck(event, policy);
  return outcome(state, early ? { effects: [], refusal: early } : step(state, event, policy, now), now);
}

/** A refusal as the error the caller reports. */
export const refusalError = (r: Refusal) => new DomainError(r.code, r.message);
