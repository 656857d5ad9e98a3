import { sql, type Kysely } from 'kysely';

// One row, like krl_state: the version of the CA key list /v1/ca.pub serves.
// It only ever increases, across restarts and across every instance on this
// database, so a server can refuse a list older than one it already holds
// (a replay of a list from the middle of a rotation). generated_at is when
// that version was first published.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ca_keys_state')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('generated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`do $$ begin
    if exists (select 1 from pg_roles where rolname = 'jit_ssh_service') then
      grant select, insert, update on ca_keys_state to jit_ssh_service;
    end if;
  end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ca_keys_state').execute();
}
