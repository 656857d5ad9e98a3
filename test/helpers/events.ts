// Reading the audit events back in tests (the service itself only appends them
// and searches them through audit/queries.ts).

import type { Kysely, Transaction } from 'kysely';
import type { AuditEventRow, Database } from '../../src/db/schema.js';

/** The events matching `filter`, oldest first (at most `limit`, default 1000). */
export async function listEvents(db: Kysely<Database> | Transaction<Database>, filter: { action?: string; target?: string; actor?: string; limit?: number } = {}): Promise<AuditEventRow[]> {
  let q = db.selectFrom('audit_events').selectAll();
  if (filter.action) q = q.where('action', '=', filter.action);
  if (filter.target) q = q.where('target', '=', filter.target);
  if (filter.actor) q = q.where('actor', '=', filter.actor);
  return q.orderBy('id').limit(filter.limit ?? 1000).execute();
}
