import { sql, type Kysely } from 'kysely';

// The issuance log: one row per certificate that ever left the CA.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('certificates')
    .addColumn('serial', 'bigint', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('role', 'text')
    .addColumn('principals', sql`text[]`, (c) => c.notNull())
    .addColumn('valid_after', 'timestamptz', (c) => c.notNull())
    .addColumn('valid_before', 'timestamptz', (c) => c.notNull())
    .addColumn('extensions', sql`text[]`, (c) => c.notNull())
    .addColumn('critical_options', 'jsonb', (c) => c.notNull())
    .addColumn('public_key_type', 'text', (c) => c.notNull())
    .addColumn('public_key_fingerprint', 'text', (c) => c.notNull())
    .addColumn('ca_key_fingerprint', 'text', (c) => c.notNull())
    .addColumn('certificate', 'text', (c) => c.notNull())
    .addColumn('client_address', 'text')
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('certificates_serial_range', sql`serial >= 2`)
    .addCheckConstraint('certificates_validity', sql`valid_before > valid_after`)
    .addCheckConstraint('certificates_principals', sql`cardinality(principals) > 0`)
    .execute();
  // The auditors' questions: by user over time, by request, by time range, by
  // principal, by key.
  await db.schema.createIndex('certificates_username_issued_at').on('certificates').columns(['username', 'issued_at']).execute();
  await db.schema.createIndex('certificates_request_id').on('certificates').column('request_id').execute();
  await db.schema.createIndex('certificates_role_issued_at').on('certificates').columns(['role', 'issued_at']).execute();
  await db.schema.createIndex('certificates_issued_at').on('certificates').column('issued_at').execute();
  await db.schema.createIndex('certificates_principals').on('certificates').using('gin').column('principals').execute();
  await db.schema.createIndex('certificates_public_key_fingerprint').on('certificates').column('public_key_fingerprint').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('certificates').execute();
}
