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
