import { sql, type Kysely } from 'kysely';

// How each session was authenticated (password + TOTP, an identity provider,
// a passkey): shown to auditors beside what the session did. Sessions made
// before this column existed were all password + TOTP.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('auth', 'jsonb', (c) => c.notNull().defaultTo(sql`'{"method":"password+totp"}'::jsonb`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('auth').execute();
}
