// Ending grants before their window does. A certificate's window is its
// grant's, so a grant that ends early would leave its certificates logging in
// until their original end; ending a grant therefore revokes every live
// certificate issued for it (the KRL lists them from then on, and servers'
// refreshers and session guards pick that up), closes its pending extension
// requests, and records who ended it and why — all in the caller's
// transaction, so none of it happens without the rest.
//
// A certificate being written while its grant ends cannot slip through: the
// certificates table refuses a row whose grant has ended (a trigger that
// takes a share lock on the grant), and ending takes the grant's row lock
// first, so a certificate is either committed before the end (and revoked by
// it) or refused after it.

import type { Transaction } from 'kysely';
import { actorName } from '../core/actor.js';
import type { GrantFacts } from '../core/grant.js';
import { endReport, extensionCloseReason, revocationReason, type GrantEnding, type GrantState } from '../core/grant-life.js';
import { appendEvent } from '../db/audit-events.js';
import { closePendingExtensions, endGrantRow } from '../db/requests.js';
import { revokeLiveCertificates } from '../db/revocations.js';
import type { Database, GrantRow } from '../db/schema.js';

/** A grant row as the core's rules see it. */
export function grantFacts(g: GrantRow): GrantFacts {
  return { username: g.username, role: g.role, startsAt: g.starts_at, endsAt: g.ends_at, breakGlass: g.break_glass, endedAt: g.ended_at };
}

/** A grant row as the core's transitions see it. */
export function grantState(g: GrantRow): GrantState {
  return {
    ...grantFacts(g),
    id: g.id,
    relinquishedAt: g.relinquished_at,
    endedBy: g.ended_by,
    endReason: g.end_reason,
    reviewedBy: g.reviewed_by,
    reviewedAt: g.reviewed_at,
    reviewComment: g.review_comment,
  };
}

export interface EndedGrants {
  /** Ids of the grants that ended now. */
  ended_grants: string[];
  /** Serials of the certificates revoked with them. */
  revoked: string[];
}

export interface GrantEnd extends GrantEnding {
  at: Date;
}

/** Ends `grants` (locked by the caller, live); returns what ended and what was revoked. An ended grant is left as it is. */
export async function endGrants(trx: Transaction<Database>, grants: ReadonlyArray<Pick<GrantRow, 'id' | 'username' | 'role'>>, end: GrantEnd): Promise<EndedGrants> {
  const out: EndedGrants = { ended_grants: [], revoked: [] };
  const by = actorName(end.actor);
  for (const g of grants) {
    if (!(await endGrantRow(trx, g.id, { at: end.at, by, reason: end.reason, relinquished: end.relinquished === true }))) continue;
    const revoked = await revokeLiveCertificates(trx, { grantIds: [g.id] }, { reason: revocationReason(g.id, end), actor: by, at: end.at });
    const closed = await closePendingExtensions(trx, g.id, end.at, extensionCloseReason(end));
    for (const e of endReport(g, end, revoked, closed.map((r) => r.id))) await appendEvent(trx, { at: end.at, outcome: 'ok', ...e });
    out.ended_grants.push(g.id);
    out.revoked.push(...revoked);
  }
  return out;
}
