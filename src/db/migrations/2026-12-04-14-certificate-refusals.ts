import { sql, type Kysely } from 'kysely';

// Certificates sshd refused, as its log tells (OpenSSH 10.1 and later log
// `Refusing certificate ID "…" serial=N signed by … CA …: REASON`): an
// expired or not-yet-valid certificate, one for another login name, or one
// with options this sshd cannot honour. Each refusal is kept once, known by
// certificate, host, reason and time; a line without a time stamp (sshd -E,
// journalctl -o cat) has none (`at` is null), so reading it again adds
// nothing, and such refusals of one certificate on one host for one reason
// are one row.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('certificate_refusals')
    .addColumn('serial', 'bigint', (c) => c.notNull().references('certificates.serial'))
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz')
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create unique index certificate_refusals_once on certificate_refusals (serial, host, reason, coalesce(at, '-infinity'::timestamptz))`.execute(db);
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert on certificate_refusals to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('certificate_refusals').execute();
}
