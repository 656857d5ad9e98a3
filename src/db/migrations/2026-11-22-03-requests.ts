import { sql, type Kysely } from 'kysely';

// Access requests, the approvals given on them, the grants they produce, and
// the outbox of notifications to deliver.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('requester', 'text', (c) => c.notNull().references('users.name'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('duration_seconds', 'integer', (c) => c.notNull().check(sql`duration_seconds > 0`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('ticket', 'text')
    .addColumn('break_glass', 'boolean', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'approved', 'denied', 'cancelled', 'expired')`))
    // What policy said at filing time, and why: an auditor must see why something was auto-approved.
    .addColumn('decision_outcome', 'text', (c) => c.notNull())
    .addColumn('decision_rule', 'text', (c) => c.notNull())
    .addColumn('decision_reason', 'text', (c) => c.notNull())
    .addColumn('policy_digest', 'text', (c) => c.notNull())
    .addColumn('required_approvals', 'integer', (c) => c.notNull())
    // Set when this request asks to extend an existing grant (the grant's id).
    .addColumn('extends_grant', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('closed_at', 'timestamptz')
    .addColumn('closed_by', 'text')
    .addColumn('close_reason', 'text')
    .addColumn('client_address', 'text')
    .execute();
  await db.schema.createIndex('requests_requester_created').on('requests').columns(['requester', 'created_at']).execute();
  await db.schema.createIndex('requests_status_role').on('requests').columns(['status', 'role']).execute();
  await db.schema.createIndex('requests_pending_expiry').on('requests').column('expires_at').where(sql.ref('status'), '=', 'pending').execute();
  await db.schema.createIndex('requests_extends_grant').on('requests').column('extends_grant').execute();

  await db.schema
    .createTable('approvals')
    .addColumn('request_id', 'text', (c) => c.notNull().references('requests.id'))
    .addColumn('approver', 'text', (c) => c.notNull())
    .addColumn('decision', 'text', (c) => c.notNull().check(sql`decision in ('approve', 'deny')`))
    .addColumn('comment', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('client_address', 'text')
    // An approver decides a request once.
    .addPrimaryKeyConstraint('approvals_pkey', ['request_id', 'approver'])
    .execute();

  await db.schema
    .createTable('grants')
    // The id of the request that created the grant; certificates' key IDs name it.
    .addColumn('id', 'text', (c) => c.primaryKey().references('requests.id'))
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('starts_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ends_at', 'timestamptz', (c) => c.notNull())
    .addColumn('break_glass', 'boolean', (c) => c.notNull())
    .addColumn('relinquished_at', 'timestamptz')
    // Break-glass grants stay under review until someone other than the holder acknowledges them.
    .addColumn('reviewed_by', 'text')
    .addColumn('reviewed_at', 'timestamptz')
    .addColumn('review_comment', 'text')
    .addCheckConstraint('grants_window', sql`ends_at > starts_at`)
    .execute();
  await db.schema.createIndex('grants_username_ends').on('grants').columns(['username', 'ends_at']).execute();
  await db.schema.createIndex('grants_open_reviews').on('grants').column('starts_at').where(sql<boolean>`break_glass and reviewed_at is null`).execute();

  await db.schema
    .createTable('notifications')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('delivered_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('notifications_due').on('notifications').column('next_attempt_at').where(sql.ref('status'), '=', 'pending').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('notifications').execute();
  await db.schema.dropTable('grants').execute();
  await db.schema.dropTable('approvals').execute();
  await db.schema.dropTable('requests').execute();
}
