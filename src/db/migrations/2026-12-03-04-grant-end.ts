import { sql, type Kysely } from 'kysely';

// A grant can end before its window does: relinquished by its holder, its
// request revoked, its holder disabled or no longer allowed to ask for the
// role. The end is recorded once, with who and why, and certificates issued
// for the grant are revoked with it.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('grants')
    .addColumn('ended_at', 'timestamptz')
    .addColumn('ended_by', 'text')
    .addColumn('end_reason', 'text')
    .execute();
  // The guard on grants lets the end be written once, with who and why, and nothing move after it.
  await sql`create or replace function jit_ssh_grants_guard() returns trigger language plpgsql as $$
    declare
      moving constant text[] := array['ends_at', 'relinquished_at', 'ended_at', 'ended_by', 'end_reason', 'reviewed_by', 'reviewed_at', 'review_comment'];
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
      if new.ends_at > old.ends_at and (old.relinquished_at is not null or old.ended_at is not null) then
        raise exception 'grant % has ended: it cannot be extended', old.id using errcode = 'insufficient_privilege';
      end if;
      if old.relinquished_at is not null and new.relinquished_at is distinct from old.relinquished_at then
        raise exception 'grant %: it is relinquished once, for good', old.id using errcode = 'insufficient_privilege';
      end if;
      if (new.ended_at, new.ended_by, new.end_reason) is distinct from (old.ended_at, old.ended_by, old.end_reason)
        and (old.ended_at is not null or old.ended_by is not null or old.end_reason is not null or new.ended_at is null or new.ended_by is null or new.end_reason is null) then
        raise exception 'grant %: it ends once, by someone, for a reason', old.id using errcode = 'insufficient_privilege';
      end if;
      if new.relinquished_at is distinct from old.relinquished_at and new.relinquished_at is distinct from new.ended_at then
        raise exception 'grant %: relinquishing it ends it', old.id using errcode = 'insufficient_privilege';
      end if;
      if (new.reviewed_by, new.reviewed_at, new.review_comment) is distinct from (old.reviewed_by, old.reviewed_at, old.review_comment)
        and (old.reviewed_by is not null or old.reviewed_at is not null or old.review_comment is not null or new.reviewed_by is null or new.reviewed_at is null) then
        raise exception 'grant %: it is reviewed once, by someone, at a time', old.id using errcode = 'insufficient_privilege';
      end if;
      return new;
    end $$`.execute(db);
  await sql`update grants set ended_at = relinquished_at, ended_by = username, end_reason = 'relinquished by ' || username where relinquished_at is not null`.execute(db);
  // The live grants: what the eligibility sweep reads.
  // No certificate for a grant that has ended, whichever way it is written. The share lock
  // waits for a transaction ending the grant (which locks the row first) and then sees the
  // end; a transaction ending it later waits for this row's commit and then revokes it.
  await sql`create function jit_ssh_certificate_grant_live() returns trigger language plpgsql as $$
    declare ended timestamptz;
    begin
      if new.request_id is not null then
        select g.ended_at into ended from grants g where g.id = new.request_id for key share;
        if ended is not null then
          raise exception 'grant % has ended', new.request_id using errcode = 'check_violation', constraint = 'certificates_grant_live';
        end if;
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger certificates_grant_live before insert on certificates
    for each row execute function jit_ssh_certificate_grant_live()`.execute(db);
  await db.schema.createIndex('grants_live').on('grants').column('ends_at').where(sql.ref('ended_at'), 'is', null).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger certificates_grant_live on certificates`.execute(db);
  await sql`drop function jit_ssh_certificate_grant_live()`.execute(db);
  await db.schema.dropIndex('grants_live').execute();
  await db.schema.alterTable('grants').dropColumn('ended_at').dropColumn('ended_by').dropColumn('end_reason').execute();
}
