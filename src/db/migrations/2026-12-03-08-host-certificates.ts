import { sql, type Kysely } from 'kysely';

// Host certificates share the issuance log with user certificates (one chain,
// one audit): `kind` tells them apart. Rows written before it are all user
// certificates, and their chained hashes leave `kind` out (audit/chain.ts),
// so logs written before this migration still verify.
//
// host_enrollments: one-time enrollment tokens for servers, stored as SHA-256
// hashes only. A token is spent by one conditional UPDATE (used_at is null and
// not expired), so two instances cannot both accept it. Enrolling sets the
// renewal credential (also a hash), good while the host's certificates are.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('certificates')
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('user'))
    .execute();
  await sql`alter table certificates add constraint certificates_kind check (kind in ('user', 'host'))`.execute(db);
  await db.schema.createIndex('certificates_kind_issued_at').on('certificates').columns(['kind', 'issued_at']).execute();
  await db.schema
    .createTable('host_enrollments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('names', sql`text[]`, (c) => c.notNull())
    .addColumn('token_hash', 'bytea', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('used_from', 'text')
    .addColumn('renewal_hash', 'bytea', (c) => c.unique())
    .addColumn('renew_until', 'timestamptz')
    .addColumn('renewed_at', 'timestamptz')
    .addCheckConstraint('host_enrollments_names', sql`cardinality(names) > 0`)
    .execute();
  // The service's least-privilege role (see 2026-11-22-04-audit) works these tables too.
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert, update on host_enrollments to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('host_enrollments').execute();
  await db.schema.dropIndex('certificates_kind_issued_at').execute();
  await db.schema.alterTable('certificates').dropColumn('kind').execute();
}
