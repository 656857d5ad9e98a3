// The webhook outbox (services/notify.ts): rows written with the change they
// report, then claimed by a worker with a lease and marked as they are sent.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, NotificationRow } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Queues one pending notification per url, due at `at`. */
export async function insertNotifications(db: Db, n: { event: string; body: string; at: Date }, urls: string[]): Promise<void> {
  await db
    .insertInto('notifications')
    .values(urls.map((url) => ({ event: n.event, url, body: n.body, status: 'pending' as const, next_attempt_at: n.at, created_at: n.at, last_error: null, delivered_at: null })))
    .execute();
}

/**
 * Takes up to `limit` pending notifications due at `at`, oldest first, and moves their next
 * attempt to `leaseUntil`: two instances never send the same one at once (skip locked).
 */
export async function claimDueNotifications(db: Db, at: Date, leaseUntil: Date, limit: number): Promise<NotificationRow[]> {
  const { rows } = await sql<NotificationRow>`
    update notifications set next_attempt_at = ${leaseUntil}
    where id in (select id from notifications where status = 'pending' and next_attempt_at <= ${at}
                 order by id limit ${limit} for update skip locked)
    returning *`.execute(db);
  return rows;
}

/** Marks a notification delivered at `at` after `attempts` attempts. */
export async function markDelivered(db: Db, id: string, attempts: number, at: Date): Promise<void> {
  await db.updateTable('notifications').set({ status: 'delivered', attempts, delivered_at: at, last_error: null }).where('id', '=', id).execute();
}

/** Records a failed attempt: retried at `retryAt`, or failed for good. */
export async function markAttemptFailed(db: Db, id: string, f: { attempts: number; error: string; final: boolean; retryAt: Date }): Promise<void> {
  await db
    .updateTable('notifications')
    .set({ status: f.final ? 'failed' : 'pending', attempts: f.attempts, last_error: f.error, next_attempt_at: f.retryAt })
    .where('id', '=', id)
    .execute();
}
