// The workflow tables an auditor reads (requests, approvals, grants,
// revocations), checked against what the chain holds about them:
//   1. each row's history in row_versions (chained) makes only the moves the
//      workflow makes: approvals never change, a request changes once, when it
//      is closed, a grant's end only moves later, its review is written once;
//   2. each row is its last chained version (nothing changed, removed or
//      added with the recording trigger off);
//   3. each request agrees with the audit event that filed it, and its status
//      with the events that closed it; each grant with its request and the
//      extensions approved on it; each approval, review, relinquishment and
//      revocation with its event.
// Every check is one pass in key order, a page at a time or one statement
// returning the first disagreement: time linear in rows, memory constant.
// The statements are in db/workflow-checks.ts; the rules and their wording here.

import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import {
  firstApprovalMismatch, firstGrantEventMismatch, firstGrantMismatch, firstRequestMismatch, firstRevocationMismatch, firstStaleRow, rowVersionsAfter, workflowCounts,
  type RowVersion, type WorkflowTable,
} from '../db/workflow-checks.js';

export interface WorkflowResult {
  ok: boolean;
  /** Rows checked, per table. */
  rows: { requests: number; approvals: number; grants: number; revocations: number };
  /** The first disagreement found, naming the row. */
  problem: string | null;
}

type Image = Record<string, unknown>;
type Version = RowVersion;

const PAGE = 2000;
const FREE: Record<string, string[]> = {
  requests: ['status', 'closed_at', 'closed_by', 'close_reason'],
  approvals: [],
  grants: ['ends_at', 'relinquished_at', 'ended_at', 'ended_by', 'end_reason', 'reviewed_by', 'reviewed_at', 'review_comment'],
};

/** A version's data as an object (anything else, which only a forger writes, differs from every row). */
const object = (x: unknown): Image => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Image) : { '?': x });

/** Columns of `next` (other than `free` ones) whose value is not the one in `prev`. */
function changed(prev: Image, next: Image, free: string[]): string[] {
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  return [...keys].filter((k) => !free.includes(k) && JSON.stringify(prev[k] ?? null) !== JSON.stringify(next[k] ?? null)).sort();
}

/** What is wrong with the move from `prev` to `v` of one row, by the rules the database enforces on the service. */
export function moveProblem(prev: Version, v: Version): string | null {
  const name = `${v.tbl} ${v.row_key}`;
  const where = `(row_versions ${v.id})`;
  if (v.op !== 'update') return `${name} was written again ${where}`;
  if (v.tbl === 'approvals') return `${name} changed ${where}: an approval never changes`;
  const fixed = changed(object(prev.data), object(v.data), FREE[v.tbl]!);
  if (fixed.length > 0) return `${name}: ${fixed.join(', ')} changed after it was ${v.tbl === 'requests' ? 'filed' : 'granted'} ${where}`;
  const [p, n] = [object(prev.data), object(v.data)];
  if (v.tbl === 'requests') {
    // A transaction's own row is not history until it commits (a request filed approved, then denied in the same transaction).
    if (p['status'] !== 'pending' && prev.xact !== v.xact) return `${name} changed after it was closed as ${String(p['status'])} ${where}`;
    if (n['status'] === 'pending') return `${name} changed but stayed pending ${where}`;
    return null;
  }
  if (Date.parse(String(n['ends_at'])) < Date.parse(String(p['ends_at']))) return `${name}: its end moved earlier ${where}`;
  if (n['ends_at'] !== p['ends_at'] && (p['relinquished_at'] ?? null) !== null) return `${name} was extended after it was relinquished ${where}`;
  if (n['ends_at'] !== p['ends_at'] && (p['ended_at'] ?? null) !== null) return `${name} was extended after it ended ${where}`;
  if ((p['relinquished_at'] ?? null) !== null && n['relinquished_at'] !== p['relinquished_at']) return `${name}: its relinquishment changed ${where}`;
  const end = ['ended_at', 'ended_by', 'end_reason'];
  const endChanged = end.some((k) => JSON.stringify(p[k] ?? null) !== JSON.stringify(n[k] ?? null));
  if (endChanged && (end.some((k) => (p[k] ?? null) !== null) || end.some((k) => (n[k] ?? null) === null))) return `${name}: its end changed ${where}`;
  const review = ['reviewed_by', 'reviewed_at', 'review_comment'];
  const reviewChanged = review.some((k) => JSON.stringify(p[k] ?? null) !== JSON.stringify(n[k] ?? null));
  if (reviewChanged && (review.some((k) => (p[k] ?? null) !== null) || (n['reviewed_by'] ?? null) === null || (n['reviewed_at'] ?? null) === null)) {
    return `${name}: its review changed ${where}`;
  }
  return null;
}

/** Rule 1, walking row_versions in (table, row, version) order. */
async function checkHistories(db: Kysely<Database>): Promise<string | null> {
  let after: [string, string, string] = ['', '', '0'];
  let prev: Version | null = null;
  for (;;) {
    const rows = await rowVersionsAfter(db, after, PAGE);
    if (rows.length === 0) return null;
    for (const v of rows) {
      const first = !prev || prev.tbl !== v.tbl || prev.row_key !== v.row_key;
      if (first && v.op === 'update') return `${v.tbl} ${v.row_key}: its history begins with a change (row_versions ${v.id}): earlier versions are missing`;
      if (!first) {
        const problem = moveProblem(prev!, v);
        if (problem) return problem;
      }
      prev = v;
    }
    const last = rows.at(-1)!;
    after = [last.tbl, last.row_key, last.id];
  }
}

/** Rule 2: one statement per table, the first row that is not its last chained version. */
async function checkCurrent(db: Kysely<Database>, table: WorkflowTable): Promise<string | null> {
  const r = await firstStaleRow(db, table);
  if (!r) return null;
  if (r.vid === null) return `${table} ${r.k} has no chained history (written with the recording trigger off)`;
  if (!r.cur) return `${table} ${r.k} was removed (its last chained version is row_versions ${r.vid})`;
  const cols = r.cols ?? [];
  return `${table} ${r.k}: ${cols.join(', ')} ${cols.length === 1 ? 'differs' : 'differ'} from its last chained version (row_versions ${r.vid})`;
}

/** Rule 3 for requests: the filing event's fields, and the status the closing events give. */
async function checkRequests(db: Kysely<Database>): Promise<string | null> {
  const r = await firstRequestMismatch(db);
  if (!r) return null;
  if (r.field === 'event') return `requests ${r.id} has no request.create or request.extend event`;
  if (r.field) return `requests ${r.id}: ${r.field} does not match its ${r.action} event ${r.eid}`;
  return `requests ${r.id} is ${r.status}, but its events say ${r.expected}`;
}

/** Rule 3 for grants: one per approved request, its holder, role and window those of the request and its approved extensions. */
async function checkGrants(db: Kysely<Database>): Promise<string | null> {
  const r = await firstGrantMismatch(db);
  if (!r) return null;
  switch (r.problem) {
    case 'no request':
      return `grants ${r.id} has no request`;
    case 'no grant':
      return `requests ${r.id} is approved but has no grant`;
    case 'not approved':
      return `grants ${r.id} exists, but request ${r.id} is ${r.status}`;
    case null:
      return `grants ${r.id}: ends at ${r.ends!.toISOString()}, but its request and approved extensions end it at ${r.expected!.toISOString()}`;
    default:
      return `grants ${r.id}: ${r.problem} does not match its request`;
  }
}

/** Rule 3 for approvals, reviews, relinquishments and revocations: each with the event that recorded it. */
async function checkDecisions(db: Kysely<Database>): Promise<string | null> {
  const a = await firstApprovalMismatch(db);
  if (a) return a.field === 'event' ? `approvals ${a.k} has no ${a.action} event` : `approvals ${a.k}: ${a.field} does not match its ${a.action} event ${a.eid}`;

  const g = await firstGrantEventMismatch(db);
  if (g) return `grants ${g.id}${g.problem.startsWith('is ') || g.problem.startsWith('has ') ? ' ' : ': '}${g.problem}`;

  const r = await firstRevocationMismatch(db);
  if (!r) return null;
  if (r.problem === 'no revocation') return `certificate.revoke event ${r.eid} lists serial ${r.serial}, which has no revocation`;
  if (r.problem === 'no event') return `revocations ${r.serial}: no certificate.revoke event lists it`;
  return r.problem === 'valid_before' ? `revocations ${r.serial}: valid_before does not match certificate ${r.serial}` : `revocations ${r.serial}: ${r.problem} does not match its certificate.revoke event ${r.eid}`;
}

export async function verifyWorkflow(db: Kysely<Database>): Promise<WorkflowResult> {
  const result: WorkflowResult = { ok: true, rows: await workflowCounts(db), problem: null };
  const checks = [
    () => checkHistories(db),
    () => checkCurrent(db, 'requests'),
    () => checkCurrent(db, 'approvals'),
    () => checkCurrent(db, 'grants'),
    () => checkRequests(db),
    () => checkGrants(db),
    () => checkDecisions(db),
  ];
  for (const check of checks) {
    const problem = await check();
    if (problem) return { ...result, ok: false, problem };
  }
  return result;
}
