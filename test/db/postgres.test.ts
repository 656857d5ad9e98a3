// The PostgreSQL connection under faults that can be made without stopping a
// server: a session ended by the server while in use, a statement that never
// answers, a database whose default is synchronous_commit=off. Each runs on a
// database of its own on the shared server (TEST_DATABASE_URL).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { UnavailableError } from '../../src/core/errors.js';
import { asUnavailable, isDatabaseUnavailable, isUniqueViolation } from '../../src/db/errors.js';
import { createPool, GuardedPostgresDialect } from '../../src/db/postgres.js';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';

describe('connection failures are told apart from a statement\'s own errors', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['ok-refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), true],
    ['ok-reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ['ok-both-families-refused', new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], ''), true],
    ['ok-admin-shutdown', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    ['ok-crash-shutdown', Object.assign(new Error('terminating connection because of crash of another server process'), { code: '57P02' }), true],
    ['ok-starting-up', Object.assign(new Error('the database system is starting up'), { code: '57P03' }), true],
    ['ok-connection-exception-class', Object.assign(new Error('x'), { code: '08006' }), true],
    ['ok-too-many-connections', Object.assign(new Error('sorry, too many clients already'), { code: '53300' }), true],
    ['ok-statement-timeout', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), true],
    ['ok-terminated', new Error('Connection terminated unexpectedly'), true],
    ['ok-connect-timeout', new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') }), true],
    ['ok-pool-wait-timeout', new Error('timeout exceeded when trying to connect'), true],
    ['ok-read-timeout', new Error('Query read timeout'), true],
    ['ok-dead-client', new Error('Client has encountered a connection error and is not queryable'), true],
    ['ok-in-cause', new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }), true],
    ['fail-unique-violation', Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }), false],
    ['fail-syntax', Object.assign(new Error('syntax error at or near'), { code: '42601' }), false],
    ['fail-check', Object.assign(new Error('new row violates check constraint'), { code: '23514' }), false],
    ['fail-plain-error', new Error('something else'), false],
    ['fail-not-an-error', 'ECONNREFUSED', false],
  ];
  for (const [name, err, expected] of cases) {
    test(name, () => {
      assert.equal(isDatabaseUnavailable(err), expected);
      const mapped = asUnavailable(err);
      if (expected) {
        assert.ok(mapped instanceof UnavailableError);
        assert.equal(mapped.code, 'unavailable');
        assert.equal(mapped.cause, err, 'the original error stays reachable for the log');
      } else {
        assert.equal(mapped, err, 'a statement\'s own error passes unchanged');
      }
    });
  }
});

describe('the PostgreSQL pool under faults (postgres)', { skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL' }, () => {
  async function withDb(fn: (url: string) => Promise<void>) {
    const { url, drop } = await createPostgresDatabase();
    try {
      await fn(url);
    } finally {
      await drop();
    }
  }
  async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  test('ok: a connection the server ends while it is in use (between statements of a transaction) fails that transaction as unavailable, and the process lives on', async () => {
    await withDb(async (url) => {
      const db = new Kysely<any>({ dialect: new GuardedPostgresDialect(createPool(url, { max: 2 })) });
      try {
        const err = await db
          .transaction()
          .execute(async (trx) => {
            const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
            const pid = rows[0]!.pid;
            // The server says FATAL to a connection the pool has lent out and nobody is reading from:
            // node-postgres emits 'error' on it, which would end the process if nobody listened.
            await admin(url, (c) => c.query('select pg_terminate_backend($1)', [pid]));
            await admin(url, async (c) => {
              for (let i = 0; i < 200 && (await c.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount! > 0; i++) await new Promise((r) => setTimeout(r, 10));
            });
            await sql`select 1`.execute(trx);
          })
          .then(
            () => null,
            (e: unknown) => e,
          );
        assert.ok(err instanceof UnavailableError, `expected unavailable, got ${String(err)}`);
        assert.equal((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]!.one, 1, 'the pool makes a new connection by itself');
      } finally {
        await db.destroy();
      }
    });
  });

  test('ok: a statement past its time limit fails as unavailable and its connection is dropped, so the next statement does not queue behind it', async () => {
    await withDb(async (url) => {
      const db = new Kysely<any>({ dialect: new GuardedPostgresDialect(createPool(url, { max: 1, timeouts: { statementMs: 300 } })) });
      try {
        const t0 = Date.now();
        await assert.rejects(sql`select pg_sleep(20)`.execute(db), (e: unknown) => e instanceof UnavailableError);
        assert.ok(Date.now() - t0 < 5_000);
        // One connection only: reused, it would answer after the sleep, past this statement's own limit.
        const t1 = Date.now();
        assert.equal((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]!.one, 1);
        assert.ok(Date.now() - t1 < 3_000, `the next statement took ${Date.now() - t1} ms`);
      } finally {
        await db.destroy();
      }
    });
  });

  test('ok: sessions never run with synchronous_commit=off, whatever the database\'s default; stronger settings stay', async () => {
    await withDb(async (url) => {
      const name = new URL(url).pathname.slice(1);
      const setting = async () => {
        const db = new Kysely<any>({ dialect: new GuardedPostgresDialect(createPool(url, { max: 1 })) });
        try {
          const { rows } = await sql<{ s: string; idle: string }>`select current_setting('synchronous_commit') as s, current_setting('idle_in_transaction_session_timeout') as idle`.execute(db);
          return rows[0]!;
        } finally {
          await db.destroy();
        }
      };
      await admin(url, (c) => c.query(`alter database ${name} set synchronous_commit = off`));
      assert.equal((await setting()).s, 'on');
      assert.equal((await setting()).idle, '1min', 'a hung instance cannot hold locks for ever');
      await admin(url, (c) => c.query(`alter database ${name} set synchronous_commit = remote_apply`));
      assert.equal((await setting()).s, 'remote_apply');
      await admin(url, (c) => c.query(`alter database ${name} set idle_in_transaction_session_timeout = '5s'`));
      assert.equal((await setting()).idle, '5s', 'an operator\'s own limit stays');
    });
  });

  test('ok: a statement\'s own error passes unchanged (a duplicate key is still a duplicate key)', async () => {
    await withDb(async (url) => {
      const db = new Kysely<any>({ dialect: new GuardedPostgresDialect(createPool(url, { max: 1 })) });
      try {
        await sql`create table t (k int primary key)`.execute(db);
        await sql`insert into t values (1)`.execute(db);
        await assert.rejects(sql`insert into t values (1)`.execute(db), (e: unknown) => isUniqueViolation(e, 't_pkey') && !(e instanceof UnavailableError));
      } finally {
        await db.destroy();
      }
    });
  });

  test('ok: an unreachable server is unavailable at once, not after a hang', async () => {
    const db = new Kysely<any>({ dialect: new GuardedPostgresDialect(createPool('postgres://postgres@127.0.0.1:1/none', { max: 1 })) });
    try {
      const t0 = Date.now();
      await assert.rejects(sql`select 1`.execute(db), (e: unknown) => e instanceof UnavailableError);
      assert.ok(Date.now() - t0 < 5_000);
    } finally {
      await db.destroy();
    }
  });
});
