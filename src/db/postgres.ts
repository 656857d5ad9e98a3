// The connection to a real PostgreSQL, made to fail fast and recover by
// itself when the database goes away:
//   - every wait is bounded: connecting (or waiting for a free connection),
//     each statement, and the session set-up;
//   - a connection whose statement got no answer in time is thrown away, not
//     handed to the next request to queue behind a statement that may never end;
//   - connection failures reach the services as the domain's `unavailable`
//     (503 with Retry-After), never as an unknown error;
//   - commits are durable: a session never runs with synchronous_commit=off,
//     whatever the server's default, so a certificate is returned only after
//     its row is on disk ("no log row, no certificate" holds when PostgreSQL
//     crashes, too).

import { PostgresDialect, PostgresDriver, type DatabaseConnection, type Driver, type QueryResult, type CompiledQuery } from 'kysely';
import pg from 'pg';
import { asUnavailable } from './errors.js';

export const POOL_TIMEOUTS = {
  /** Connecting, or waiting for a connection when all are busy. */
  connectMs: 5_000,
  /** One statement, measured by the client: the server may be unreachable. */
  statementMs: 15_000,
  /** The session set-up run on each new connection. */
  setupMs: 5_000,
};

/**
 * Run on every new connection. It raises synchronous_commit only from `off`
 * (`local` and the remote levels of a replicated set-up are as durable or
 * more), and ends a session left idle inside a transaction (a hung or frozen
 * instance would otherwise hold its row and advisory locks for ever).
 */
export const SESSION_SETUP = `select set_config('synchronous_commit', 'on', false) where current_setting('synchronous_commit') = 'off';
select set_config('idle_in_transaction_session_timeout', '60s', false) where current_setting('idle_in_transaction_session_timeout') = '0'`;

/** node-postgres' own flag that the pool reads on release: false = drop this connection. */
type PoolClient = pg.PoolClient & { _queryable?: boolean };

/**
 * node-postgres answers a statement past `query_timeout` with an error but
 * leaves it running on the connection, which then goes back to the pool and
 * makes every later statement on it wait too (for ever, when the server is
 * gone without a reset). Marked not queryable, the pool closes it instead.
 */
function dropOnTimeout(client: PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      return (result as Promise<unknown>).catch((e: unknown) => {
        if (e instanceof Error && e.message === 'Query read timeout') client._queryable = false;
        throw e;
      });
    }
    return result;
  };
}

export function createPool(url: string, opts: { max?: number; onError?: (err: Error) => void; timeouts?: Partial<typeof POOL_TIMEOUTS> } = {}): pg.Pool {
  const t = { ...POOL_TIMEOUTS, ...opts.timeouts };
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 20,
    connectionTimeoutMillis: t.connectMs,
    query_timeout: t.statementMs,
    idleTimeoutMillis: 30_000,
    // A peer that vanished without a reset is noticed on idle connections too.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'jit-ssh',
    // Awaited by the pool before the connection is used; a failure fails the connect.
    onConnect: async (client: pg.ClientBase) => {
      // The pool listens for errors only on idle connections. One in use but between statements
      // (inside a transaction, or just handed out) that hears the server's FATAL goodbye would emit
      // 'error' to nobody, and an unheard 'error' ends the process. Its next statement fails instead.
      client.on('error', () => {});
      dropOnTimeout(client as PoolClient);
      await client.query({ text: SESSION_SETUP, query_timeout: t.setupMs } as pg.QueryConfig);
    },
  } as pg.PoolConfig);
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would kill the process.
  pool.on('error', (err) => opts.onError?.(err));
  return pool;
}

/** Statements that failed for want of the database throw the domain's `unavailable`. */
function guard(connection: DatabaseConnection): DatabaseConnection {
  if (guarded.has(connection)) return connection;
  const execute = connection.executeQuery.bind(connection);
  const stream = connection.streamQuery.bind(connection);
  Object.assign(connection, {
    async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
      try {
        return await execute<R>(q);
      } catch (e) {
        throw asUnavailable(e);
      }
    },
    async *streamQuery<R>(q: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
      try {
        yield* stream<R>(q, chunkSize);
      } catch (e) {
        throw asUnavailable(e);
      }
    },
  });
  guarded.add(connection);
  return connection;
}
const guarded = new WeakSet<DatabaseConnection>();

class GuardedPostgresDriver extends PostgresDriver implements Driver {
  override async acquireConnection(): Promise<DatabaseConnection> {
    try {
      return guard(await super.acquireConnection());
    } catch (e) {
      throw asUnavailable(e);
    }
  }
}

/** Kysely's PostgreSQL dialect over `pool`, with connection failures mapped to `unavailable`. */
export class GuardedPostgresDialect extends PostgresDialect {
  constructor(private readonly pool: pg.Pool) {
    super({ pool });
  }
  override createDriver(): Driver {
    return new GuardedPostgresDriver({ pool: this.pool });
  }
}
