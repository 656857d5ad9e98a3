// The queries behind audit/workflow.ts: the workflow tables (requests,
// approvals, grants, revocations) read beside their chained history
// (row_versions) and the audit events that recorded each move. Each check is
// one statement returning the first disagreement, or a page in key order.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** One version of a workflow row as row_versions recorded it. */
export interface RowVersion {
  id: string;
  tbl: string;
  row_key: string;
  op: string;
  xact: string;
  data: Record<string, unknown>;
}

export type WorkflowTable = 'requests' | 'approvals' | 'grants';

const KEY: Record<WorkflowTable, string> = { requests: `t.id`, approvals: `t.request_id || '/' || t.approver`, grants: `t.id` };

/** How many rows each workflow table holds. */
export async function workflowCounts(db: Db): Promise<{ requests: number; approvals: number; grants: number; revocations: number }> {
  const { rows } = await sql<{ requests: string; approvals: string; grants: string; revocations: string }>`
    select (select count(*) from requests)::text as requests, (select count(*) from approvals)::text as approvals,
      (select count(*) from grants)::text as grants, (select count(*) from revocations)::text as revocations`.execute(db);
  const c = rows[0]!;
  return { requests: Number(c.requests), approvals: Number(c.approvals), grants: Number(c.grants), revocations: Number(c.revocations) };
}

/** Up to `limit` row versions after `after` (table, row key, version id), in that order. */
export async function rowVersionsAfter(db: Db, after: [string, string, string], limit: number): Promise<RowVersion[]> {
  const { rows } = await sql<RowVersion>`
    select v.id::text as id, tbl, row_key, op, xact::text as xact, data from row_versions v
    where (tbl, row_key, v.id) > (${after[0]}, ${after[1]}, ${after[2]}::bigint)
    order by tbl, row_key, v.id limit ${limit}`.execute(db);
  return rows;
}

/** The first row of `table` that is not its last chained version (missing on either side, or a column differs), or undefined. */
export async function firstStaleRow(db: Db, table: WorkflowTable): Promise<{ k: string; vid: string | null; cur: boolean; cols: string[] | null } | undefined> {
  const { rows } = await sql<{ k: string; vid: string | null; cur: boolean; cols: string[] | null }>`
    with latest as (
      select distinct on (row_key) row_key, id, case when jsonb_typeof(data) = 'object' then data else jsonb_build_object('?', data) end as data
      from row_versions where tbl = ${table} order by row_key, id desc
    ), cur as (
      select ${sql.raw(KEY[table])} as row_key, jit_ssh_row_image(t) as data from ${sql.table(table)} t
    )
    select coalesce(c.row_key, l.row_key) as k, l.id::text as vid, c.data is not null as cur,
      array(select e.key from jsonb_each(l.data) e where e.value is distinct from c.data -> e.key order by e.key) as cols
    from cur c full join latest l on l.row_key = c.row_key
    where c.data is null or l.data is null or exists (select 1 from jsonb_each(l.data) e where e.value is distinct from c.data -> e.key)
    order by 1 limit 1`.execute(db);
  return rows[0];
}

/**
 * The first request whose filing event disagrees with it (`field` names the column, or
 * 'event' when there is none), or whose status is not the one its events give (`expected`).
 */
export async function firstRequestMismatch(db: Db): Promise<{ id: string; eid: string | null; action: string | null; field: string | null; status: string; expected: string } | undefined> {
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
  return rows[0];
}

/**
 * The first grant that disagrees with its request: `problem` names what ('no request', 'no grant',
 * 'not approved', a column), or is null when only its end differs from the request and its approved extensions.
 */
export async function firstGrantMismatch(db: Db): Promise<{ id: string; problem: string | null; ends: Date | null; expected: Date | null; status: string | null } | undefined> {
  const { rows } = await sql<{ id: string; problem: string | null; ends: Date | null; expected: Date | null; status: string | null }>`
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
  return rows[0];
}

/** The first approval without its event, or with a field (`field`) its event does not match. */
export async function firstApprovalMismatch(db: Db): Promise<{ k: string; eid: string | null; action: string; field: string } | undefined> {
  const { rows } = await sql<{ k: string; eid: string | null; action: string; field: string }>`
    select * from (
      select a.request_id || '/' || a.approver as k, e.id::text as eid, case a.decision when 'approve' then 'request.approve' else 'request.deny' end as action,
        case when e.id is null then 'event' when e.at is distinct from a.at then 'at' when e.details ->> 'comment' is distinct from a.comment then 'comment'
          when e.client_address is distinct from a.client_address then 'client_address' end as field
      from approvals a left join lateral (
        select id, at, details, client_address from audit_events
        where target = a.request_id and actor = a.approver and action = case a.decision when 'approve' then 'request.approve' else 'request.deny' end order by id limit 1
      ) e on true
    ) x where field is not null order by k limit 1`.execute(db);
  return rows[0];
}

/** The first grant whose review, relinquishment or early end disagrees with its events, and how. */
export async function firstGrantEventMismatch(db: Db): Promise<{ id: string; problem: string } | undefined> {
  const { rows } = await sql<{ id: string; problem: string }>`
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
  return rows[0];
}

/** The first revocation without its certificate.revoke event (or event serial without revocation), or a field that differs. */
export async function firstRevocationMismatch(db: Db): Promise<{ serial: string; eid: string | null; problem: string } | undefined> {
  const { rows } = await sql<{ serial: string; eid: string | null; problem: string }>`
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
  return rows[0];
}
