import { sql, type Kysely } from 'kysely';

// What auditors read about the workflow (a request's reason, ticket, role and
// duration, its decision, the approvals and their comments, a grant's window
// and its review) made as tamper-evident as the logs:
//
// - Nobody without the power to turn triggers off (the service's role) can
//   rewrite it: approvals never change; a request changes once, when it is
//   closed, and only its closing columns; a grant's end only moves later, and
//   its relinquishment and review are written once. Nothing is deleted.
// - Every version of every row is copied into row_versions by a trigger that
//   runs with the owner's rights: the service's role may read that table but
//   never write it, so it cannot forge a version. The sealer chains
//   row_versions like the logs, and `audit verify` compares each row with its
//   chained history, so a rewrite by the owner (triggers off) is noticed too.
//
// A later migration that adds a column auditors read needs nothing more: new
// columns of requests and grants are immutable unless a guard below names them.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('row_versions')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tbl', 'text', (c) => c.notNull())
    // The row's primary key; approvals: request_id/approver.
    .addColumn('row_key', 'text', (c) => c.notNull())
    // baseline: the row as it was when this history began (rows older than this migration).
    .addColumn('op', 'text', (c) => c.notNull().check(sql`op in ('baseline', 'insert', 'update')`))
    // The writing transaction: changes a transaction makes to a row it wrote itself were never visible to anyone.
    .addColumn('xact', 'bigint', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('row_versions_row').on('row_versions').columns(['tbl', 'row_key', 'id']).execute();
  await sql`create trigger row_versions_append_only before update or delete on row_versions
    for each row execute function jit_ssh_append_only()`.execute(db);
  await sql`create trigger row_versions_no_truncate before truncate on row_versions
    for each statement execute function jit_ssh_append_only()`.execute(db);

  // A row as JSON, with times in UTC whatever the session's time zone: the trigger and verify must agree to the byte.
  await sql`create function jit_ssh_row_image(r anyelement) returns jsonb language sql stable
    set timezone to 'UTC' as $$ select to_jsonb(r) $$`.execute(db);

  await sql`create function jit_ssh_row_version() returns trigger language plpgsql security definer as $$
    declare
      img jsonb := jit_ssh_row_image(new);
      k text;
    begin
      -- Only for the tables below: not for a table of the same name someone made elsewhere.
      if tg_relid not in ('requests'::regclass, 'approvals'::regclass, 'grants'::regclass) then
        raise exception 'jit_ssh_row_version records requests, approvals and grants only' using errcode = 'insufficient_privilege';
      end if;
      select string_agg(img ->> a, '/' order by n) into k from unnest(tg_argv) with ordinality as u(a, n);
      insert into row_versions (tbl, row_key, op, xact, data) values (tg_table_name, k, lower(tg_op), txid_current(), img);
      return null;
    end $$`.execute(db);
  // Running with the owner's rights, it must not find other objects first on a path the caller controls.
  await sql`do $$ begin
    execute format('alter function jit_ssh_row_version() set search_path = %I, pg_temp', current_schema());
  end $$`.execute(db);
  // Nobody else may attach it to a table of their own (a temporary "requests") to write versions with its rights.
  await sql`revoke all on function jit_ssh_row_version() from public`.execute(db);

  // Whether this transaction wrote the row itself (then nobody else has seen it yet).
  await sql`create function jit_ssh_written_here(t text, k text) returns boolean language sql stable as $$
    select exists (select 1 from row_versions v where v.tbl = t and v.row_key = k and v.xact = txid_current()) $$`.execute(db);

  // The columns a change touched, other than `free` ones.
  await sql`create function jit_ssh_changed(old_row jsonb, new_row jsonb, free text[]) returns text language sql immutable as $$
    select string_agg(n.key, ', ' order by n.key) from jsonb_each(new_row) n
    where n.key <> all(free) and n.value is distinct from old_row -> n.key $$`.execute(db);

  await sql`create function jit_ssh_requests_guard() returns trigger language plpgsql as $$
    declare
      closing constant text[] := array['status', 'closed_at', 'closed_by', 'close_reason'];
      changed text;
    begin
      if tg_op = 'DELETE' then
        raise exception 'requests are never deleted (request %)', old.id using errcode = 'insufficient_privilege';
      end if;
      if new is not distinct from old then return new; end if;
      changed := jit_ssh_changed(to_jsonb(old), to_jsonb(new), closing);
      if changed is not null then
        raise exception 'request %: % cannot change once it is filed', old.id, changed using errcode = 'insufficient_privilege';
      end if;
      if old.status <> 'pending' and not jit_ssh_written_here('requests', old.id) then
        raise exception 'request % is already %: it cannot change', old.id, old.status using errcode = 'insufficient_privilege';
      end if;
      if new.status = 'pending' then
        raise exception 'request %: only closing it can change it', old.id using errcode = 'insufficient_privilege';
      end if;
      return new;
    end $$`.execute(db);

  await sql`create function jit_ssh_grants_guard() returns trigger language plpgsql as $$
    declare
      moving constant text[] := array['ends_at', 'relinquished_at', 'reviewed_by', 'reviewed_at', 'review_comment'];
      changed text;
    begin
      if tg_op = 'DELETE' then
        raise exception 'grants are never deleted (grant %)', old.id using errcode = 'insufficient_privilege';
      end if;
      changed := jit_ssh_changed(to_jsonb(old), to_jsonb(new), moving);
      if changed is not null then
        raise exception 'grant %: % cannot change', old.id, changed using errcode = 'insufficient_privilege';
      end if;
      if new.ends_at < old.ends_at then
        raise exception 'grant %: its end moves later, never earlier', old.id using errcode = 'insufficient_privilege';
      end if;
      if new.ends_at > old.ends_at and old.relinquished_at is not null then
        raise exception 'grant % was relinquished: it cannot be extended', old.id using errcode = 'insufficient_privilege';
      end if;
      if old.relinquished_at is not null and new.relinquished_at is distinct from old.relinquished_at then
        raise exception 'grant %: it is relinquished once, for good', old.id using errcode = 'insufficient_privilege';
      end if;
      if (new.reviewed_by, new.reviewed_at, new.review_comment) is distinct from (old.reviewed_by, old.reviewed_at, old.review_comment)
        and (old.reviewed_by is not null or old.reviewed_at is not null or old.review_comment is not null or new.reviewed_by is null or new.reviewed_at is null) then
        raise exception 'grant %: it is reviewed once, by someone, at a time', old.id using errcode = 'insufficient_privilege';
      end if;
      return new;
    end $$`.execute(db);

  const keys: Record<string, string[]> = { requests: ['id'], approvals: ['request_id', 'approver'], grants: ['id'] };
  for (const [table, key] of Object.entries(keys)) {
    const args = sql.raw(key.map((k) => `'${k}'`).join(', '));
    await sql`create trigger ${sql.raw(`${table}_version_insert`)} after insert on ${sql.table(table)}
      for each row execute function jit_ssh_row_version(${args})`.execute(db);
    await sql`create trigger ${sql.raw(`${table}_version_update`)} after update on ${sql.table(table)}
      for each row when (old.* is distinct from new.*) execute function jit_ssh_row_version(${args})`.execute(db);
    await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
      for each statement execute function jit_ssh_append_only()`.execute(db);
    // The history begins with the rows as they are.
    await sql`insert into row_versions (tbl, row_key, op, xact, data)
      select ${sql.lit(table)}, ${sql.raw(key.map((k) => `t.${k}`).join(` || '/' || `))}, 'baseline', txid_current(), jit_ssh_row_image(t)
      from ${sql.table(table)} t order by ${sql.raw(key.map((k) => `t.${k}`).join(', '))}`.execute(db);
  }
  // Guards run before the change; the version is written after it, only for what the guard let through.
  await sql`create trigger requests_guard before update or delete on requests
    for each row execute function jit_ssh_requests_guard()`.execute(db);
  await sql`create trigger grants_guard before update or delete on grants
    for each row execute function jit_ssh_grants_guard()`.execute(db);
  await sql`create trigger approvals_append_only before update or delete on approvals
    for each row execute function jit_ssh_append_only()`.execute(db);

  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      revoke update, delete on approvals from jit_ssh_service;
      revoke delete on requests, grants from jit_ssh_service;
      grant select on row_versions to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['requests', 'approvals', 'grants']) {
    for (const suffix of ['version_insert', 'version_update', 'no_truncate']) await sql`drop trigger ${sql.raw(`${table}_${suffix}`)} on ${sql.table(table)}`.execute(db);
  }
  await sql`drop trigger requests_guard on requests`.execute(db);
  await sql`drop trigger grants_guard on grants`.execute(db);
  await sql`drop trigger approvals_append_only on approvals`.execute(db);
  for (const f of ['jit_ssh_requests_guard()', 'jit_ssh_grants_guard()', 'jit_ssh_changed(jsonb, jsonb, text[])', 'jit_ssh_written_here(text, text)', 'jit_ssh_row_version()', 'jit_ssh_row_image(anyelement)']) {
    await sql`drop function ${sql.raw(f)}`.execute(db);
  }
  await db.schema.dropTable('row_versions').execute();
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant update, delete on approvals, requests, grants to jit_ssh_service;
    end if;
  end $$`.execute(db);
}
