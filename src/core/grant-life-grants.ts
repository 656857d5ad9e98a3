// A grant's own transitions once it exists: given up by its holder, reviewed
// after a break-glass, ended early (revoked, its holder disabled or no longer
// allowed to hold it). An end is final: an ended grant is never live again and
// nothing ends it twice. Its window running out needs no transition: `isLive`
// reads the clock.

import { canApprove } from './decide.js';
import { holdRefusal, isLive } from './grant.js';
import { audit } from './grant-life-requests.js';
import { refuse, type AuditNote, type Effect, type GrantEnding, type GrantState, type LifeEvent, type LifeState, type Step } from './grant-life-types.js';
import type { Policy } from './policy-types.js';
import { checkComment } from './request-input.js';

type Of<K extends LifeEvent['kind']> = Extract<LifeEvent, { kind: K }>;

const ending = (g: GrantState, end: GrantEnding): Effect => ({ kind: 'end-grant', grant: { id: g.id, username: g.username, role: g.role }, end });

export function relinquish(s: LifeState, e: Of<'relinquish'>, now: Date): Step {
  const g = s.grant;
  const me = e.by.name;
  if (!g || g.username !== me) return refuse('not_found', `no grant ${e.grantId} of yours`);
  if (!isLive(g, now)) return refuse('conflict', `grant ${e.grantId} has already ended`);
  return { effects: [ending(g, { actor: me, reason: `relinquished by ${me}`, clientAddress: e.by.clientAddress, relinquished: true, cause: 'relinquish' })] };
}

export function review(s: LifeState, e: Of<'review'>, policy: Policy): Step {
  const text = checkComment(e.comment);
  const g = s.grant;
  const me = e.by;
  if (!g || !g.breakGlass) return refuse('not_found', `no break-glass grant ${e.grantId}`);
  if (g.username === me.name) return refuse('forbidden', 'someone other than the holder must review a break-glass grant');
  const role = policy.roles.get(g.role);
  if (!me.isAdmin && !(role && canApprove(role, me, g.username))) return refuse('forbidden', `you may not review grants for ${g.role}`);
  if (g.reviewedAt) return refuse('conflict', `grant ${e.grantId} was already reviewed by ${g.reviewedBy}`);
  return { effects: [{ kind: 'review-grant', id: g.id, by: me.name, comment: text }, audit(me, 'grant.review', g.id, { comment: text })] };
}

export function end(s: LifeState, e: Of<'end'>, now: Date): Step {
  return { effects: s.grant && isLive(s.grant, now) ? [ending(s.grant, e.end)] : [] };
}

/** Ends the grant when its holder may no longer hold it under `policy` (disabled, out of the role's requesters or break-glass list, the role gone). */
export function recheck(s: LifeState, policy: Policy, now: Date): Step {
  const g = s.grant;
  if (!g || !isLive(g, now)) return { effects: [] };
  const why = holdRefusal(policy.roles.get(g.role), g.role, s.account, g.breakGlass);
  return { effects: why ? [ending(g, { actor: 'jit-ssh', reason: `${why} (policy ${policy.digest.slice(0, 12)})`, cause: 'ineligible' })] : [] };
}

/** The reason recorded with each certificate revoked by an end. */
export const revocationReason = (grantId: string, end: GrantEnding) => end.revocationReason ?? `grant ${grantId} ended: ${end.reason}`;

/** The reason recorded with each pending extension an end closes. */
export const extensionCloseReason = (end: GrantEnding) => `the grant ended: ${end.reason}`;

/**
 * What the audit log says of an end, once it is applied: the end itself, the
 * certificates it revoked (each revocation has its certificate.revoke event,
 * however it came about) and the pending extensions it closed.
 */
export function endReport(g: { id: string; username: string; role: string }, end: GrantEnding, revoked: readonly string[], closed: readonly string[]): AuditNote[] {
  const from = end.clientAddress ?? null;
  const out: AuditNote[] = [
    {
      actor: end.actor,
      action: end.relinquished ? 'grant.relinquish' : 'grant.end',
      target: g.id,
      clientAddress: from,
      details: { cause: end.cause, reason: end.reason, holder: g.username, role: g.role, revoked, ...(closed.length > 0 ? { closed_extensions: closed } : {}) },
    },
  ];
  if (revoked.length > 0) {
    out.push({ actor: end.actor, action: 'certificate.revoke', target: g.id, clientAddress: from, details: { reason: revocationReason(g.id, end), serials: revoked, grant: g.id } });
  }
  for (const id of closed) out.push({ actor: 'jit-ssh', action: 'request.cancel', target: id, clientAddress: null, details: { reason: `grant ${g.id} ended` } });
  return out;
}
