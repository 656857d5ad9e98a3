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
import { actorName, type Actor } from '../core/actor.js';
import type { GrantFacts } from '../core/grant.js';
import { appendEvent } from '../db/audit-events.js';
import { closePendingExtensions, endGrantRow } from '../db/requests.js';
import { revokeLiveCertificates } from '../db/revocations.js';
import type { Database, GrantRow } from '../db/schema.js';

/** A grant row as the core's rules see it. */
export function grantFacts(g: GrantRow): GrantFacts {
  return { username: g.username, role: g.role, startsAt: g.starts_at, endsAt: g.ends_at, breakGlass: g.break_glass, endedAt: g.ended_at };
}

export interface EndedGrants {
  /** Ids of the grants that ended now. */
  ended_grants: string[];
  /** Serials of the certificates revoked with them. */
  revoked: string[];
}

export interface GrantEnd {
  at: Date;
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

/** Ends `grants` (locked by the caller, live); returns what ended and what was revoked. */
export async function endGrants(trx: Transaction<Database>, grants: readonly GrantRow[], end: GrantEnd): Promise<EndedGrants> {
  const out: EndedGrants = { ended_grants: [], revoked: [] };
  for (const g of grants) {
    if (!(await endGrantRow(trx, g.id, { at: end.at, by: actorName(end.actor), reason: end.reason, relinquished: end.relinquished === true }))) continue;
    const revocationReason = end.revocationReason ?? `grant ${g.id} ended: ${end.reason}`;
    const revoked = await revokeLiveCertificates(trx, { grantIds: [g.id] }, { reason: revocationReason, actor: actorName(end.actor), at: end.at });
    const closed = await closePendingExtensions(trx, g.id, end.at, `the grant ended: ${end.reason}`);
    await appendEvent(trx, {
      at: end.at,
      actor: end.actor,
      action: end.relinquished ? 'grant.relinquish' : 'grant.end',
      target: g.id,
      outcome: 'ok',
      clientAddress: end.clientAddress ?? null,
      details: { cause: end.cause, reason: end.reason, holder: g.username, role: g.role, revoked, ...(closed.length > 0 ? { closed_extensions: closed.map((r) => r.id) } : {}) },
    });
    // Each revocation has its certificate.revoke event, however it came about.
    if (revoked.length > 0) {
      await appendEvent(trx, { at: end.at, actor: end.actor, action: 'certificate.revoke', target: g.id, outcome: 'ok', clientAddress: end.clientAddress ?? null, details: { reason: revocationReason, serials: revoked, grant: g.id } });
    }
    for (const r of closed) {
      await appendEvent(trx, { at: end.at, actor: 'jit-ssh', action: 'request.cancel', target: r.id, outcome: 'ok', clientAddress: null, details: { reason: `grant ${g.id} ended` } });
    }
    out.ended_grants.push(g.id);
    out.revoked.push(...revoked);
  }
  return out;
}
