// Opening the database: a real PostgreSQL when a URL is given, the embedded
// PGlite in the data directory otherwise. Above the dialect there is one code
// path: the same Kysely<Database>, the same migrations, the same queries.

import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { Kysely, Migrator, sql } from 'kysely';
import { migrationProvider } from './migrations/index.js';
import { PGliteDialect } from './pglite-dialect.js';
import { createPool, GuardedPostgresDialect } from './postgres.js';
import type { Database } from './schema.js';

export type { Database } from './schema.js';

export interface DbHandle {
  db: Kysely<Database>;
  kind: 'postgres' | 'embedded';
  /** Resolves when the database answers a trivial query within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  databaseUrl: string | null;
  /** Where the embedded database lives (`dataDir/db`); `null` keeps it in memory (tests). */
  dataDir: string | null;
  /** Connections to PostgreSQL; the embedded database has one. */
  poolSize?: number;
  onPoolError?: (err: Error) => void;
}

export class DatabaseLockedError extends Error {
  override name = 'DatabaseLockedError';
}

const INT8 = 20;

/**
 * The embedded database may be opened by one process only (PGlite has no
 * inter-process locking of its own); a pid file in the data directory says who.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'db.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await h.writeFile(`${process.pid}\n`);
      await h.close();
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DatabaseLockedError(`the embedded database in ${dir} is in use by process ${pid} (is jit-ssh-ca serve running?)`);
      }
      await fs.rm(file, { force: true }); // left behind by a process that died
    }
  }
  throw new DatabaseLockedError(`cannot lock the embedded database in ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function openEmbedded(dataDir: string | null): Promise<{ db: Kysely<Database>; unlock: () => Promise<void> }> {
  const { PGlite } = await import('@electric-sql/pglite');
  // PostgreSQL bigint as a string, as node-postgres returns it: serials exceed 2^53.
  const parsers = { [INT8]: (v: string) => v };
  if (dataDir === null) {
    const pglite = await PGlite.create({ parsers });
    return { db: new Kysely<Database>({ dialect: new PGliteDialect(pglite) }), unlock: async () => {} };
  }
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create({ dataDir: path.join(dataDir, 'db'), parsers });
    return { db: new Kysely<Database>({ dialect: new PGliteDialect(pglite) }), unlock };
  } catch (e) {
    await unlock();
    throw e;
  }
}

function openPostgres(url: string, opts: OpenOptions): Kysely<Database> {
  // Bounded waits, connections dropped when they stop answering, failures as `unavailable` (see postgres.ts).
  const pool = createPool(url, { max: opts.poolSize ?? 20, onError: opts.onPoolError });
  return new Kysely<Database>({ dialect: new GuardedPostgresDialect(pool) });
}

export async function openDatabase(opts: OpenOptions): Promise<DbHandle> {
  let db: Kysely<Database>;
  let unlock = async () => {};
  const kind = opts.databaseUrl ? 'postgres' : 'embedded';
  if (opts.databaseUrl) {
    db = openPostgres(opts.databaseUrl, opts);
  } else {
    ({ db, unlock } = await openEmbedded(opts.dataDir === null ? null : opts.dataDir));
  }
  let closed = false;
  return {
    db,
    kind,
    async ping(timeoutMs = 2_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([sql`select 1`.execute(db), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.destroy();
      } finally {
        await unlock();
      }
    },
  };
}

/** Brings the schema up to date; returns the names of the migrations it applied. */
export async function migrate(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider, migrationTableName: 'jit_ssh_migrations', migrationLockTableName: 'jit_ssh_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
