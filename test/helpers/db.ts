// The databases tests run against: the embedded PGlite always, and a real
// PostgreSQL when TEST_DATABASE_URL (or DATABASE_URL) names one. Each test
// gets a fresh, migrated database of its own, dropped afterwards.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, openDatabase, type DbHandle } from '../../src/db/index.js';

export const POSTGRES_URL = process.env['TEST_DATABASE_URL'] || process.env['DATABASE_URL'] || null;

export interface Backend {
  name: 'embedded' | 'postgres';
  /** A new empty database (migrated unless told otherwise); closed and dropped by the caller's `cleanup`. */
  open(opts?: { migrate?: boolean }): Promise<TestDb>;
}

export interface TestDb extends DbHandle {
  /** The URL of this database (postgres only). */
  url: string | null;
  cleanup(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL! });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty PostgreSQL database and returns its URL and a function that drops it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `jit_ssh_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = new URL(POSTGRES_URL!);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined) };
}

const embedded: Backend = {
  name: 'embedded',
  async open(opts = {}) {
    const h = await openDatabase({ databaseUrl: null, dataDir: null });
    if (opts.migrate !== false) await migrate(h.db);
    return { ...h, url: null, cleanup: () => h.close() };
  },
};

const postgres: Backend = {
  name: 'postgres',
  async open(opts = {}) {
    const { url, drop } = await createPostgresDatabase();
    const h = await openDatabase({ databaseUrl: url, dataDir: null, poolSize: 8 });
    if (opts.migrate !== false) await migrate(h.db);
    return {
      ...h,
      url,
      cleanup: async () => {
        await h.close();
        await drop();
      },
    };
  },
};

/** The backends available here: embedded always, postgres when configured. */
export const BACKENDS: Backend[] = POSTGRES_URL ? [embedded, postgres] : [embedded];
