import { sql, type Kysely } from 'kysely';

// Sign-in through identity providers (OpenID Connect).
//
// oidc_identities: which user an issuer's subject is. The key is (issuer,
// subject), never a name: a second issuer with the same user name makes a
// user of its own. It keeps the groups the provider last sent and when, so
// issuance and approvals can refuse groups older than the allowed age.
//
// oidc_flows: sign-ins in flight, each under the SHA-256 of its one-time
// handle (the OAuth state, the helper's one-time code, the device handle),
// short-lived and deleted when used.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oidc_identities')
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull().unique().references('users.name').onDelete('cascade'))
    .addColumn('issuer_id', 'text', (c) => c.notNull())
    .addColumn('idp_groups', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('groups_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('oidc_identities_pk', ['issuer', 'subject'])
    .execute();

  await db.schema
    .createTable('oidc_flows')
    .addColumn('key_hash', 'bytea', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('auth', 'code', 'device')`))
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oidc_flows_expires_at').on('oidc_flows').column('expires_at').execute();
  // The service's least-privilege role (see 2026-11-22-04-audit) works these tables too.
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert, update, delete on oidc_identities, oidc_flows to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('oidc_flows').execute();
  await db.schema.dropTable('oidc_identities').execute();
}
