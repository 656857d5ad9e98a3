import { sql, type Kysely } from 'kysely';

// Passkeys and security keys (WebAuthn).
//
// webauthn_credentials: each user's registered authenticators: the credential
// id (base64url), its COSE public key, the signature counter last seen (a
// counter that does not grow, when counters are used, is a cloned or replayed
// authenticator and is refused), its transports, a name the person chose, and
// when it was made and last used. Deleted with the user.
//
// webauthn_challenges: ceremonies in flight. Each challenge is bound to the
// SHA-256 of the browser's session token (or of the pending sign-in's token),
// to a purpose and a target (a request id for a step-up), lives a few
// minutes, and is deleted when it is used: it serves once, whatever the answer.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webauthn_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('username', 'text', (c) => c.notNull().references('users.name').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    .addColumn('sign_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_used_at', 'timestamptz')
    .addCheckConstraint('webauthn_credentials_sign_count', sql`sign_count >= 0`)
    .execute();
  await db.schema.createIndex('webauthn_credentials_username').on('webauthn_credentials').column('username').execute();

  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('binding', 'bytea', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('register', 'login', 'step_up')`))
    .addColumn('target', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('challenge', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('webauthn_challenges_pk', ['binding', 'purpose', 'target'])
    .execute();
  await db.schema.createIndex('webauthn_challenges_expires_at').on('webauthn_challenges').column('expires_at').execute();
  // The service's least-privilege role (see 2026-11-22-04-audit) works these tables too.
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert, update, delete on webauthn_credentials, webauthn_challenges to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webauthn_challenges').execute();
  await db.schema.dropTable('webauthn_credentials').execute();
}
