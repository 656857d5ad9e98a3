// Requests, approvals and grants. Functions that change a request take a
// transaction and lock the row first, so concurrent approvals, denials and
// cancellations of one request are applied one after the other.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { ApprovalRow, Database, GrantRow, RequestRow, RequestStatus } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type NewRequest = Omit<RequestRow, 'closed_at' | 'closed_by' | 'close_reason'> & Partial<Pick<RequestRow, 'closed_at' | 'closed_by' | 'close_reason'>>;

export async function insertRequest(db: Db, r: NewRequest): Promise<void> {
  await db.insertInto('requests').values(r).execute();
}

export async function findRequest(db: Db, id: string): Promise<RequestRow | undefined> {
  return db.selectFrom('requests').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Reads and locks a request for the rest of the transaction. */
export async function lockRequest(trx: Transaction<Database>, id: string): Promise<RequestRow | undefined> {
  return trx.selectFrom('requests').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function closeRequest(db: Db, id: string, status: RequestStatus, at: Date, by: string | null, reason: string | null): Promise<void> {
  await db.updateTable('requests').set({ status, closed_at: at, closed_by: by, close_reason: reason }).where('id', '=', id).execute();
}

export interface RequestFilter {
  /** Requests filed by this user... */
  requester?: string;
  /** ...or for these roles (those the caller may decide). */
  roles?: string[];
  status?: RequestStatus;
  limit?: number;
  all?: boolean;
}

export async function listRequests(db: Db, f: RequestFilter): Promise<RequestRow[]> {
  let q = db.selectFrom('requests').selectAll();
  if (!f.all) {
    q = q.where((eb) => {
      const ors = [];
      if (f.requester) ors.push(eb('requester', '=', f.requester));
      if (f.roles && f.roles.length > 0) ors.push(eb('role', 'in', f.roles));
      return ors.length > 0 ? eb.or(ors) : sql<boolean>`false`;
    });
  }
  if (f.status) q = q.where('status', '=', f.status);
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit ?? 200).execute();
}

export async function insertApproval(db: Db, a: ApprovalRow): Promise<void> {
  await db.insertInto('approvals').values(a).execute();
}

export async function approvalsFor(db: Db, ids: string[]): Promise<ApprovalRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('approvals').selectAll().where('request_id', 'in', ids).orderBy('at').execute();
}

export async function insertGrant(db: Db, g: Omit<GrantRow, 'relinquished_at' | 'ended_at' | 'ended_by' | 'end_reason' | 'reviewed_by' | 'reviewed_at' | 'review_comment'>): Promise<void> {
  await db.insertInto('grants').values(g).execute();
}

/** Grants by id, one statement for many. */
export async function findGrants(db: Db, ids: string[]): Promise<Map<string, GrantRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('grants').selectAll().where('id', 'in', ids).execute();
  return new Map(rows.map((g) => [g.id, g]));
}

export async function lockGrant(trx: Transaction<Database>, id: string): Promise<GrantRow | undefined> {
  return trx.selectFrom('grants').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function updateGrant(db: Db, id: string, patch: Partial<Pick<GrantRow, 'ends_at' | 'reviewed_by' | 'reviewed_at' | 'review_comment'>>): Promise<void> {
  await db.updateTable('grants').set(patch).where('id', '=', id).execute();
}

/** Records that a grant ended early; only a grant not ended yet is changed (an end is final). */
export async function endGrantRow(trx: Transaction<Database>, id: string, end: { at: Date; by: string; reason: string; relinquished: boolean }): Promise<boolean> {
  const r = await trx
    .updateTable('grants')
    .set({ ended_at: end.at, ended_by: end.by, end_reason: end.reason, ...(end.relinquished ? { relinquished_at: end.at } : {}) })
    .where('id', '=', id)
    .where('ended_at', 'is', null)
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

// "Live" below is core/grant.ts's isLive in SQL: not ended, and `at` before its end.

/**
 * Grants still live at `at`, locked for the rest of the transaction, in id order
 * (so two transactions locking several grants cannot deadlock): all of them,
 * or one user's.
 */
export async function lockLiveGrants(trx: Transaction<Database>, at: Date, f: { username?: string; ids?: string[] } = {}): Promise<GrantRow[]> {
  let q = trx.selectFrom('grants').selectAll().where('ended_at', 'is', null).where('ends_at', '>', at);
  if (f.username !== undefined) q = q.where('username', '=', f.username);
  if (f.ids !== undefined) {
    if (f.ids.length === 0) return [];
    q = q.where('id', 'in', f.ids);
  }
  return q.orderBy('id').forUpdate().execute();
}

/** Live grants with their holders' current groups and state, for the eligibility sweep (no lock: it locks what it ends). */
export async function liveGrantHolders(db: Db, at: Date): Promise<Array<GrantRow & { enabled: boolean | null; groups: string[] | null }>> {
  return db
    .selectFrom('grants as g')
    .leftJoin('users as u', 'u.name', 'g.username')
    .selectAll('g')
    .select(['u.enabled', 'u.groups'])
    .where('g.ended_at', 'is', null)
    .where('g.ends_at', '>', at)
    .orderBy('g.id')
    .execute();
}

/** Closes the pending extension requests of a grant that ended; returns them. */
export async function closePendingExtensions(trx: Transaction<Database>, grantId: string, at: Date, reason: string): Promise<RequestRow[]> {
  return trx
    .updateTable('requests')
    .set({ status: 'cancelled', closed_at: at, closed_by: 'jit-ssh', close_reason: reason })
    .where('extends_grant', '=', grantId)
    .where('status', '=', 'pending')
    .returningAll()
    .execute();
}

/** Marks pending requests past their TTL as expired (core/grant-life-requests.ts's isOverdue in SQL); returns them. */
export async function expirePending(trx: Transaction<Database>, now: Date): Promise<RequestRow[]> {
  return trx
    .updateTable('requests')
    .set({ status: 'expired', closed_at: now, close_reason: 'no decision within the request TTL' })
    .where('status', '=', 'pending')
    .where('expires_at', '<=', now)
    .returningAll()
    .execute();
}
