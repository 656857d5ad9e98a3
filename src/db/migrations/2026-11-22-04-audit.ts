import { sql, type Kysely } from 'kysely';

// The tamper-evident log. Certificates and audit events keep being written
// with one plain INSERT each (the issuance path stays as fast as the database);
// a sealer appends them, in order, to a hash chain per stream, and signs the
// chain head now and then. Revocations, usage seen in sshd logs and the KRL's
// version live here too.
export async function up(db: Kysely<any>): Promise<void> {
  // The order in which certificates were written (the chain follows it).
  await sql`alter table certificates add column seq bigint generated always as identity`.execute(db);
  await sql`create unique index certificates_seq on certificates (seq)`.execute(db);
  // The hash of the record as the issuer wrote it, so the sealer chains it without reading the
  // record back; verify still recomputes every hash from the record itself.
  await db.schema.alterTable('certificates').addColumn('record_hash', 'bytea').execute();

  await db.schema
    .createTable('chain_links')
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('position', 'bigint', (c) => c.notNull())
    .addColumn('record_key', 'text', (c) => c.notNull())
    // The record's own order (certificates.seq, audit_events.id): where the sealer resumes.
    .addColumn('record_seq', 'bigint', (c) => c.notNull())
    .addColumn('record_hash', 'bytea', (c) => c.notNull())
    .addColumn('chain_hash', 'bytea', (c) => c.notNull())
    .addColumn('sealed_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('chain_links_pkey', ['stream', 'position'])
    .addUniqueConstraint('chain_links_record', ['stream', 'record_key'])
    .execute();

  await db.schema
    .createTable('chain_checkpoints')
    .addColumn('stream', 'text', (c) => c.notNull())
    .addColumn('position', 'bigint', (c) => c.notNull())
    .addColumn('chain_hash', 'bytea', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('ca_fingerprint', 'text', (c) => c.notNull())
    // An SSHSIG (namespace jit-ssh-checkpoint) over the checkpoint's text.
    .addColumn('signature', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('chain_checkpoints_pkey', ['stream', 'position'])
    .execute();

  await db.schema
    .createTable('revocations')
    .addColumn('serial', 'bigint', (c) => c.primaryKey().references('certificates.serial'))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('revoked_by', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz', (c) => c.notNull())
    .addColumn('valid_before', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('revocations_valid_before').on('revocations').column('valid_before').execute();

  // One row: the KRL's version only ever increases.
  await db.schema
    .createTable('krl_state')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('generated_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('certificate_usage')
    .addColumn('serial', 'bigint', (c) => c.notNull().references('certificates.serial'))
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('source_address', 'text', (c) => c.notNull())
    .addColumn('login', 'text', (c) => c.notNull())
    .addColumn('first_seen', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seen', 'timestamptz', (c) => c.notNull())
    .addColumn('logins', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('certificate_usage_pkey', ['serial', 'host', 'source_address', 'login'])
    .execute();

  // Each certificate login seen in an sshd log, once: ingesting overlapping
  // logs (a cron job reading the last hour every 5 minutes) counts nothing twice.
  // A login is known by its certificate, host and client address and port
  // (not its time: sshd -E and journalctl -o cat lines carry none).
  await db.schema
    .createTable('certificate_logins')
    .addColumn('serial', 'bigint', (c) => c.notNull().references('certificates.serial'))
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('source_address', 'text', (c) => c.notNull())
    .addColumn('port', 'integer', (c) => c.notNull())
    .addColumn('login', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('certificate_logins_pkey', ['serial', 'host', 'source_address', 'port'])
    .execute();

  // The access review reads grants by the period they started in.
  await db.schema.createIndex('grants_starts_at').on('grants').column('starts_at').execute();

  for (const table of ['chain_links', 'chain_checkpoints', 'revocations']) {
    await sql`create trigger ${sql.raw(`${table}_append_only`)} before update or delete on ${sql.table(table)}
      for each row execute function jit_ssh_append_only()`.execute(db);
    await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
      for each statement execute function jit_ssh_append_only()`.execute(db);
  }
  await sql`create trigger certificates_append_only before update or delete on certificates
    for each row execute function jit_ssh_append_only()`.execute(db);
  await sql`create trigger certificates_no_truncate before truncate on certificates
    for each statement execute function jit_ssh_append_only()`.execute(db);

  // A least-privilege role for the service: it may add to the logs but never
  // change or remove what they hold. Operators make their login role a member
  // (GRANT jit_ssh_service TO jit_ssh_app) and run migrations as the owner.
  // Creating a role needs CREATEROLE; without it this step is skipped.
  await sql`do $$ begin
    if not exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      begin create role jit_ssh_service nologin;
      exception when insufficient_privilege or duplicate_object then null; end;
    end if;
  end $$`.execute(db);
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert on certificates, audit_events, chain_links, chain_checkpoints, revocations to jit_ssh_service;
      grant select, insert, update, delete on users, sessions, login_throttle, requests, approvals, grants, notifications, krl_state, certificate_usage, certificate_logins to jit_ssh_service;
      grant select on jit_ssh_migrations, jit_ssh_migrations_lock to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('grants_starts_at').execute();
  for (const t of ['certificate_logins', 'certificate_usage', 'krl_state', 'revocations', 'chain_checkpoints', 'chain_links']) await db.schema.dropTable(t).execute();
  await sql`drop trigger certificates_append_only on certificates`.execute(db);
  await sql`drop trigger certificates_no_truncate on certificates`.execute(db);
  await sql`alter table certificates drop column seq`.execute(db);
  await sql`alter table certificates drop column record_hash`.execute(db);
}
