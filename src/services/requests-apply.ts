// Applying what the core decided: each effect of a transition becomes its
// write, in the order given, in the caller's transaction. Rows are turned into
// the core's terms here and back.

import type { Kysely, Transaction } from 'kysely';
import { DomainError } from '../core/errors.js';
import { refusalError, type ApprovalFacts, type Effect, type Outcome, type RequestFacts } from '../core/grant-life.js';
import type { WebhookTarget } from '../core/policy-types.js';
import { appendEvent } from '../db/audit-events.js';
import { isUniqueViolation } from '../db/errors.js';
import { closeRequest, insertApproval, insertGrant, insertRequest, updateGrant } from '../db/requests.js';
import type { ApprovalRow, Database, RequestRow } from '../db/schema.js';
import { endGrants, type EndedGrants } from './grant-end.js';
import { enqueue } from './notify.js';

export function requestFacts(r: RequestRow): RequestFacts {
  return {
    id: r.id,
    requester: r.requester,
    role: r.role,
    duration: r.duration_seconds,
    reason: r.reason,
    ticket: r.ticket,
    breakGlass: r.break_glass,
    status: r.status,
    decision: { outcome: r.decision_outcome, rule: r.decision_rule, reason: r.decision_reason },
    policyDigest: r.policy_digest,
    requiredApprovals: r.required_approvals,
    extendsGrant: r.extends_grant,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    closedAt: r.closed_at,
    closedBy: r.closed_by,
    closeReason: r.close_reason,
    clientAddress: r.client_address,
  };
}

function requestRow(r: RequestFacts): RequestRow {
  return {
    id: r.id,
    requester: r.requester,
    role: r.role,
    duration_seconds: r.duration,
    reason: r.reason,
    ticket: r.ticket,
    break_glass: r.breakGlass,
    status: r.status,
    decision_outcome: r.decision.outcome,
    decision_rule: r.decision.rule,
    decision_reason: r.decision.reason,
    policy_digest: r.policyDigest,
    required_approvals: r.requiredApprovals,
    extends_grant: r.extendsGrant,
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    closed_at: r.closedAt,
    closed_by: r.closedBy,
    close_reason: r.closeReason,
    client_address: r.clientAddress,
  };
}

export const approvalFacts = (a: ApprovalRow): ApprovalFacts => ({ approver: a.approver, decision: a.decision, comment: a.comment, at: a.at, clientAddress: a.client_address });

/** Applies `effects` at `at` in order; returns the grants ended and certificates revoked on the way. */
export async function applyEffects(trx: Transaction<Database>, webhooks: readonly WebhookTarget[], effects: readonly Effect[], at: Date): Promise<EndedGrants> {
  const out: EndedGrants = { ended_grants: [], revoked: [] };
  for (const e of effects) {
    switch (e.kind) {
      case 'file-request':
        await insertRequest(trx, requestRow(e.request));
        break;
      case 'record-decision': {
        const a = e.approval;
        try {
          await insertApproval(trx, { request_id: e.requestId, approver: a.approver, decision: a.decision, comment: a.comment, at: a.at, client_address: a.clientAddress });
        } catch (err) {
          // The request's lock makes the core's own check enough; the key stays the last word.
          if (isUniqueViolation(err, 'approvals_pkey')) throw new DomainError('conflict', `you have already decided request ${e.requestId}`);
          throw err;
        }
        break;
      }
      case 'close-request':
        await closeRequest(trx, e.id, e.status, at, e.by, e.reason);
        break;
      case 'create-grant': {
        const g = e.grant;
        await insertGrant(trx, { id: g.id, username: g.username, role: g.role, starts_at: g.startsAt, ends_at: g.endsAt, break_glass: g.breakGlass });
        break;
      }
      case 'extend-grant':
        await updateGrant(trx, e.id, { ends_at: e.endsAt });
        break;
      case 'review-grant':
        await updateGrant(trx, e.id, { reviewed_by: e.by, reviewed_at: at, review_comment: e.comment });
        break;
      case 'end-grant': {
        const ended = await endGrants(trx, [e.grant], { ...e.end, at });
        out.ended_grants.push(...ended.ended_grants);
        out.revoked.push(...ended.revoked);
        break;
      }
      case 'audit':
        await appendEvent(trx, { at, outcome: 'ok', ...e.event });
        break;
      case 'notify':
        await enqueue(trx, webhooks, e.notice, at);
        break;
    }
  }
  return out;
}

/** A refusal whose effects must still be committed before the call fails. */
class CommittedRefusal extends Error {
  constructor(readonly error: DomainError) {
    super(error.message);
  }
}

/**
 * Runs `fn` in a transaction at one instant. `fn` loads and locks, calls the core, and hands the
 * outcome to `settle`, which applies its effects and, on a refusal, fails the call after the
 * transaction commits them (nothing to commit: it simply fails).
 */
export async function inTransaction<T>(
  db: Kysely<Database>,
  now: () => Date,
  webhooks: () => readonly WebhookTarget[],
  fn: (trx: Transaction<Database>, at: Date, settle: (out: Outcome) => Promise<EndedGrants>) => Promise<T>,
): Promise<T> {
  let refusal: DomainError | undefined;
  const result = await db.transaction().execute(async (trx) => {
    const at = now();
    const settle = async (out: Outcome) => {
      const applied = await applyEffects(trx, webhooks(), out.effects, at);
      if (out.refusal) throw out.effects.length > 0 ? new CommittedRefusal(refusalError(out.refusal)) : refusalError(out.refusal);
      return applied;
    };
    try {
      return await fn(trx, at, settle);
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
