// What someone with the database owner's (or a superuser's) power does to
// history: statements run with every trigger off, append-only ones included.

import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/schema.js';

export async function tamper(db: Kysely<Database>, statements: Array<ReturnType<typeof sql>>): Promise<void> {
  await db.connection().execute(async (c) => {
    await sql`set session_replication_role = replica`.execute(c);
    try {
      for (const statement of statements) await statement.execute(c);
    } finally {
      await sql`set session_replication_role = origin`.execute(c);
    }
  });
}

/** `url` with every connection made as the service's least-privilege role. */
export function asServiceRole(url: string): string {
  const u = new URL(url);
  u.searchParams.set('options', '-c role=jit_ssh_service');
  return u.toString();
}
