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

import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.js';

export interface WorkflowResult {
  ok: boolean;
  /** Rows checked, per table. */
  rows: { requests: number; approvals: number; grants: number; revocations: number };
  /** The first disagreement found, naming the row. */
  problem: string | null;
}

type Image = Record<string, unknown>;
interface Version {
  id: string;
  tbl: string;
  row_key: string;
  op: string;
  xact: string;
  data: Image;
}

const PAGE = 2000;
const FREE: Record<string, string[]> = {
  requests: ['status', 'closed_at', 'closed_by', 'close_reason'],
  approvals: [],
  grants: ['ends_at', 'relinquished_at', 'ended_at', 'ended_by', 'end_reason', 'reviewed_by', 'reviewed_at', 'review_comment'],
};
const KEY: Record<string, string> = { requests: `t.id`, approvals: `t.request_id || '/' || t.approver`, grants: `t.id` };

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
    const { rows } = await sql<Version>`
      select v.id::text as id, tbl, row_key, op, xact::text as xact, data from row_versions v
      where (tbl, row_key, v.id) > (${after[0]}, ${after[1]}, ${after[2]}::bigint)
      order by tbl, row_key, v.id limit ${PAGE}`.execute(db);
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
async function checkCurrent(db: Kysely<Database>, table: 'requests' | 'approvals' | 'grants'): Promise<string | null> {
  const { rows } = await sql<{ k: string; vid: string | null; cur: boolean; cols: string[] | null }>`
    with latest as (
      select distinct on (row_key) row_key, id, case when jsonb_typeof(data) = 'object' then data else jsonb_build_object('?', data) end as data
      from row_versions where tbl = ${table} order by row_key, id desc
    ), cur as (
      select ${sql.raw(KEY[table]!)} as row_key, jit_ssh_row_image(t) as data from ${sql.table(table)} t
    )
    select coalesce(c.row_key, l.row_key) as k, l.id::text as vid, c.data is not null as cur,
      array(select e.key from jsonb_each(l.data) e where e.value is distinct from c.data -> e.key order by e.key) as cols
    from cur c full join latest l on l.row_key = c.row_key
    where c.data is null or l.data is null or exists (select 1 from jsonb_each(l.data) e where e.value is distinct from c.data -> e.key)
    order by 1 limit 1`.execute(db);
  const r = rows[0];
  if (!r) return null;
  if (r.vid === null) return `${table} ${r.k} has no chained history (written with the recording trigger off)`;
  if (!r.cur) return `${table} ${r.k} was removed (its last chained version is row_versions ${r.vid})`;
  const cols = r.cols ?? [];
  return `${table} ${r.k}: ${cols.join(', ')} ${cols.length === 1 ? 'differs' : 'differ'} from its last chained version (row_versions ${r.vid})`;
}

/** Rule 3 for requests: the filing event's fields, and the status the closing events give. */
async function checkRequests(db: Kysely<Database>): Promise<string | null> {
  // Fields the filing event carries; those marked optional only when it carries them.
  const { rows } = await sql<{ id: string; eid: string | null; action: string | null; field: string | null; status: string; expected: string }>`
    select * from (
      select r.id, r.status, e.id::text as eid, e.action,
        case
          when e.id is null then 'event'
          when e.action <> (case when r.extends_grant is null then 'request.create' else 'request.extend' end) then 'extends_grant'
          when e.actor is distinct from r.requester then 'requester'
          when e.at is distinct from r.created_at then 'created_at'
          when e.client_address is distinct from r.client_address then 'client_address'
          when e.details ->> 'role' is distinct from r.role then 'role'
          when e.details ->> 'duration_seconds' is distinct from r.duration_seconds::text then 'duration_seconds'
          when e.details ->> 'break_glass' is distinct from r.break_glass::text then 'break_glass'
          when e.details ->> 'ticket' is distinct from r.ticket then 'ticket'
          when e.details ->> 'rule' is distinct from r.decision_rule then 'decision_rule'
          when e.details ->> 'reason' is distinct from r.decision_reason then 'decision_reason'
          when e.details ->> 'policy_digest' is distinct from r.policy_digest then 'policy_digest'
          when e.details ? 'request_reason' and e.details ->> 'request_reason' is distinct from r.reason then 'reason'
          when e.details ? 'decision_outcome' and e.details ->> 'decision_outcome' is distinct from r.decision_outcome then 'decision_outcome'
          when e.details ? 'required_approvals' and e.details ->> 'required_approvals' is distinct from r.required_approvals::text then 'required_approvals'
          when e.details ? 'expires_at' and e.details ->> 'expires_at' is distinct from to_char(r.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') then 'expires_at'
          when e.details ? 'extends_grant' and e.details ->> 'extends_grant' is distinct from r.extends_grant then 'extends_grant'
        end as field,
        case when s.expired then 'expired' when s.cancelled then 'cancelled' when s.denied then 'denied' when s.approved then 'approved' else 'pending' end as expected
      from requests r
      left join lateral (
        select id, action, actor, at, client_address, details from audit_events
        where target = r.id and action in ('request.create', 'request.extend') order by id limit 1
      ) e on true
      left join lateral (
        select bool_or(action = 'request.expire') as expired, bool_or(action = 'request.cancel') as cancelled,
          bool_or(action = 'request.deny' or (action in ('request.create', 'request.extend') and details ->> 'outcome' = 'denied')) as denied,
          bool_or(action = 'request.approved' or (action in ('request.create', 'request.extend') and details ->> 'outcome' = 'approved')) as approved
        from audit_events where target = r.id and action like 'request.%'
      ) s on true
    ) x where field is not null or status <> expected
    order by id limit 1`.execute(db);
  const r = rows[0];
  if (!r) return null;
  if (r.field === 'event') return `requests ${r.id} has no request.create or request.extend event`;
  if (r.field) return `requests ${r.id}: ${r.field} does not match its ${r.action} event ${r.eid}`;
  return `requests ${r.id} is ${r.status}, but its events say ${r.expected}`;
}

/** Rule 3 for grants: one per approved request, its holder, role and window those of the request and its approved extensions. */
async function checkGrants(db: Kysely<Database>): Promise<string | null> {
  const { rows } = await sql<{ id: string; problem: string; ends: Date | null; expected: Date | null; status: string | null }>`
    select * from (
      select coalesce(r.id, g.id) as id, r.status, g.ends_at as ends,
        g.starts_at + make_interval(secs => r.duration_seconds + coalesce((select sum(x.duration_seconds) from requests x where x.extends_grant = r.id and x.status = 'approved'), 0)) as expected,
        case
          when r.id is null then 'no request'
          when g.id is null then case when r.status = 'approved' then 'no grant' end
          when r.status <> 'approved' then 'not approved'
          when g.username <> r.requester then 'username'
          when g.role <> r.role then 'role'
          when g.break_glass <> r.break_glass then 'break_glass'
          when g.starts_at is distinct from r.closed_at then 'starts_at'
        end as problem
      from (select * from requests where extends_grant is null) r full join grants g on g.id = r.id
    ) x where problem is not null or ends <> expected
    order by id limit 1`.execute(db);
  const r = rows[0];
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
  const { rows: a } = await sql<{ k: string; eid: string | null; action: string; field: string }>`
    select * from (
      select a.request_id || '/' || a.approver as k, e.id::text as eid, case a.decision when 'approve' then 'request.approve' else 'request.deny' end as action,
        case when e.id is null then 'event' when e.at is distinct from a.at then 'at' when e.details ->> 'comment' is distinct from a.comment then 'comment'
          when e.client_address is distinct from a.client_address then 'client_address' end as field
      from approvals a left join lateral (
        select id, at, details, client_address from audit_events
        where target = a.request_id and actor = a.approver and action = case a.decision when 'approve' then 'request.approve' else 'request.deny' end order by id limit 1
      ) e on true
    ) x where field is not null order by k limit 1`.execute(db);
  if (a[0]) return a[0].field === 'event' ? `approvals ${a[0].k} has no ${a[0].action} event` : `approvals ${a[0].k}: ${a[0].field} does not match its ${a[0].action} event ${a[0].eid}`;

  const { rows: g } = await sql<{ id: string; problem: string }>`
    select * from (
      select g.id, case
          when (g.reviewed_at is null) <> (v.id is null) then case when v.id is null then 'is reviewed but has no grant.review event' else 'has a grant.review event but no review' end
          when v.id is not null and (v.actor is distinct from g.reviewed_by or v.at is distinct from g.reviewed_at or v.details ->> 'comment' is distinct from g.review_comment)
            then 'review does not match its grant.review event ' || v.id
          when (g.relinquished_at is null) <> (l.id is null) then case when l.id is null then 'is relinquished but has no grant.relinquish event' else 'has a grant.relinquish event but was not relinquished' end
          when l.id is not null and (l.actor is distinct from g.username or l.at is distinct from g.relinquished_at) then 'relinquishment does not match its grant.relinquish event ' || l.id
          when (g.ended_at is null) <> (n.id is null) then case when n.id is null then 'ended early but has no grant.end or grant.relinquish event' else 'has a grant.end event but did not end' end
          when n.id is not null and (n.actor is distinct from g.ended_by or n.at is distinct from g.ended_at or (n.action = 'grant.end' and n.details ->> 'reason' is distinct from g.end_reason))
            then 'end does not match its ' || n.action || ' event ' || n.id
        end as problem
      from grants g
      left join lateral (select id, actor, at, details from audit_events where target = g.id and action = 'grant.review' order by id limit 1) v on true
      left join lateral (select id, actor, at from audit_events where target = g.id and action = 'grant.relinquish' order by id limit 1) l on true
      left join lateral (select id, action, actor, at, details from audit_events where target = g.id and action in ('grant.end', 'grant.relinquish') order by id limit 1) n on true
    ) x where problem is not null order by id limit 1`.execute(db);
  if (g[0]) return `grants ${g[0].id}${g[0].problem.startsWith('is ') || g[0].problem.startsWith('has ') ? ' ' : ': '}${g[0].problem}`;

  const { rows: v } = await sql<{ serial: string; eid: string | null; problem: string }>`
    select * from (
      select coalesce(v.serial::text, e.serial) as serial, e.id::text as eid, case
          when v.serial is null then 'no revocation'
          when e.id is null then 'no event'
          when e.details ->> 'reason' is distinct from v.reason then 'reason'
          when e.actor is distinct from v.revoked_by then 'revoked_by'
          when e.at is distinct from v.revoked_at then 'revoked_at'
          when c.valid_before is distinct from v.valid_before then 'valid_before'
        end as problem
      from revocations v
      full join (select x.id, x.actor, x.at, x.details, s.serial from audit_events x cross join lateral jsonb_array_elements_text(case when jsonb_typeof(x.details -> 'serials') = 'array' then x.details -> 'serials' else '[]' end) s(serial)
        where x.action = 'certificate.revoke') e on e.serial = v.serial::text
      left join certificates c on c.serial = v.serial
    ) x where problem is not null order by serial limit 1`.execute(db);
  const r = v[0];
  if (!r) return null;
  if (r.problem === 'no revocation') return `certificate.revoke event ${r.eid} lists serial ${r.serial}, which has no revocation`;
  if (r.problem === 'no event') return `revocations ${r.serial}: no certificate.revoke event lists it`;
  return r.problem === 'valid_before' ? `revocations ${r.serial}: valid_before does not match certificate ${r.serial}` : `revocations ${r.serial}: ${r.problem} does not match its certificate.revoke event ${r.eid}`;
}

export async function verifyWorkflow(db: Kysely<Database>): Promise<WorkflowResult> {
  const { rows } = await sql<{ requests: string; approvals: string; grants: string; revocations: string }>`
    select (select count(*) from requests)::text as requests, (select count(*) from approvals)::text as approvals,
      (select count(*) from grants)::text as grants, (select count(*) from revocations)::text as revocations`.execute(db);
  const counts = rows[0]!;
  const result: WorkflowResult = { ok: true, rows: { requests: Number(counts.requests), approvals: Number(counts.approvals), grants: Number(counts.grants), revocations: Number(counts.revocations) }, problem: null };
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
