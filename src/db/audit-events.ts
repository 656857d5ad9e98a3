// The audit event log: every login, logout and administrative change. Rows
// are only ever appended (the table refuses UPDATE, DELETE and TRUNCATE).

import type { Kysely, Transaction } from 'kysely';
import { actorLabel, actorName, type Actor } from '../core/actor.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface AuditEvent {
  at: Date;
  /**
   * Who did it: a user name, `os:NAME` (or `uid:N`) for the local admin, or `anonymous`.
   * A label the caller gave itself is stored beside it as `details.actor_label`.
   */
  actor: Actor;
  /** What happened, dotted: `login.ok`, `login.failed`, `user.add`, ... */
  action: string;
  target: string | null;
  outcome: 'ok' | 'failed' | 'refused';
  clientAddress: string | null;
  details?: Record<string, unknown>;
}

export async function appendEvent(db: Db, e: AuditEvent): Promise<void> {
  const label = actorLabel(e.actor);
  await db
    .insertInto('audit_events')
    .values({
      at: e.at,
      actor: actorName(e.actor),
      action: e.action,
      target: e.target,
      outcome: e.outcome,
      client_address: e.clientAddress,
      details: JSON.stringify({ ...e.details, ...(label === undefined ? {} : { actor_label: label }) }),
    })
    .execute();
}
