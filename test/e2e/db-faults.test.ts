// The database failing under load, on a private PostgreSQL cluster of the
// test's own (the machine's shared server is never touched): stopped, killed,
// frozen, and a commit whose answer is lost. Through each: logins and
// issuance answer 503 problem+json with Retry-After within a bound (no hanging
// request), nothing is issued while the database is away, no certificate
// reaches a client without its row in the log, /readyz says so, and the
// service recovers by itself when the database is back.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { STREAMS, verifyStream } from '../../src/audit/chain.js';
import { openDatabase } from '../../src/db/index.js';
import { enrol, fleet, login, request, totp, type Fleet, type FleetUser } from '../helpers/fleet.js';
import { issueWorker, send, serialOf, startLoad, waitFor, type LoadWorker, type Outcome } from '../helpers/load.js';
import { clusterUnavailableReason, startCluster, type PgCluster } from '../helpers/pg-cluster.js';
import { startPgProxy, type PgProxy } from '../helpers/pg-proxy.js';
import type { ServerProcess } from '../helpers/process.js';

/** The servers' request deadline in these tests (JIT_SSH_REQUEST_TIMEOUT). */
const DEADLINE_MS = 2_000;
/** No answer may take longer than this, whatever the fault: the deadline and the time to write the answer under load. */
const BOUND_MS = DEADLINE_MS + 1_500;
const ROUNDS = ['stop', 'kill', 'freeze', 'lost'] as const;

const skip = clusterUnavailableReason();

describe('database faults under load (a private PostgreSQL cluster)', { skip: skip ?? false }, () => {
  let cluster: PgCluster;
  let proxy: PgProxy;
  let dir: string;
  let f: Fleet;
  /** Connected straight to the cluster; through the proxy that loses commit answers. */
  let direct: ServerProcess;
  let proxied: ServerProcess;
  const users: Record<string, FleetUser> = {};
  const sessions: Record<string, { token: string; grant: string }> = {};
  const db = () => cluster.urlFor('jit');

  async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: db() });
    await c.connect();
    try {
      return (await c.query<T>(text, values)).rows;
    } finally {
      await c.end();
    }
  }

  before(async () => {
    // synchronous_commit=off as the server's default and a lazy WAL writer: a commit is acknowledged
    // before it is durable, and a killed server forgets it, unless the service insists on durable commits.
    cluster = await startCluster({ synchronous_commit: 'off', wal_writer_delay: '10s' });
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('create database jit');
    await admin.end();
    proxy = await startPgProxy({ host: '127.0.0.1', port: cluster.port });
    dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-faults-'));
    f = fleet(dir, db(), { JIT_SSH_REQUEST_TIMEOUT: `${DEADLINE_MS / 1000}s` });
    Object.assign(users, await enrol(db(), f.secretKey, [...ROUNDS.map((r) => ({ name: `u-${r}`, groups: ['load'] })), { name: 'auditor', groups: ['auditors'] }]));
    direct = await f.start(0);
    proxied = await f.start(1, { DATABASE_URL: proxy.urlFor('jit') });
    for (const r of ROUNDS) {
      const token = await login(direct.url, users[`u-${r}`]!);
      sessions[r] = { token, grant: (await request(direct.url, token, 'load', '8h')).id };
    }
  });

  after(async () => {
    for (const s of [direct, proxied]) if (s && s.child.exitCode === null) await s.stop('SIGKILL');
    await proxy?.close();
    cluster?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Failed logins of names nobody has (401 while the database answers): logins exercise the database too. */
  const loginWorker = (): LoadWorker => ({
    op: 'login',
    server: 0,
    call: (url, agent) => send(agent, url, 'POST', '/v1/auth/login', { username: `nobody-${randomBytes(4).toString('hex')}`, password: 'not the password at all', totp: '000000' }),
  });

  const readyz = async (url: string) => (await send(undefined, url, 'GET', '/readyz')).status;

  interface Round {
    outcomes: Outcome[];
    /** ms into the load: the fault is complete (the server stopped, killed, frozen), and the database back. */
    down: number;
    restored: number;
    recoveryMs: number;
  }

  /** Load on `server` for round `r`; `fault` breaks the database, `repair` mends it. */
  async function round(server: ServerProcess, r: (typeof ROUNDS)[number], fault: () => void, repair: () => void): Promise<Round> {
    const s = sessions[r]!;
    const load = startLoad([server.url], [...Array.from({ length: 8 }, () => issueWorker(0, s.token, s.grant)), loginWorker(), loginWorker()]);
    try {
      await load.until((o) => o.status === 201, 20);
      fault();
      const down = load.elapsed();
      await waitFor('/readyz to say 503', async () => (await readyz(server.url)) === 503, 15_000);
      await load.until((o) => o.op === 'issue' && o.status === 503 && o.sent > down, 8, 15_000);
      await load.until((o) => o.op === 'login' && o.status === 503 && o.sent > down, 2, 15_000);
      repair();
      const restored = load.elapsed();
      await load.until((o) => o.op === 'issue' && o.status === 201 && o.sent >= restored, 10, 30_000);
      await waitFor('/readyz to say 200', async () => (await readyz(server.url)) === 200, 15_000);
      const outcomes = await load.stop();
      const firstOk = Math.min(...outcomes.filter((o) => o.op === 'issue' && o.status === 201 && o.sent >= restored).map((o) => o.done));
      return { outcomes, down, restored, recoveryMs: firstOk - restored };
    } finally {
      await load.stop();
    }
  }

  /** What every round must show, whatever the fault. */
  async function check(r: (typeof ROUNDS)[number], res: Round) {
    const { outcomes, down, restored } = res;
    for (const o of outcomes) {
      const ok = o.op === 'issue' ? 201 : 401;
      assert.ok(o.status === ok || o.status === 503, `${o.op} answered ${o.status} ${o.error ?? o.body.slice(0, 200)}`);
      if (o.status === 503) {
        assert.equal(o.contentType, 'application/problem+json');
        assert.ok(o.retryAfter && Number(o.retryAfter) > 0, 'a 503 says when to retry');
        const body = JSON.parse(o.body);
        assert.equal(body.status, 503);
        assert.equal(body.code, 'unavailable');
      }
    }
    const slowest = Math.max(...outcomes.map((o) => o.done - o.sent));
    assert.ok(slowest < BOUND_MS, `an answer took ${Math.round(slowest)} ms (bound ${BOUND_MS} ms)`);
    const during = outcomes.filter((o) => o.sent >= down && o.done < restored);
    assert.ok(during.length > 0);
    assert.deepEqual(during.filter((o) => o.status !== 503).map((o) => `${o.op} ${o.status}`), [], 'while the database is away every answer is 503: nothing is issued');
    // No certificate without its row: every serial a client received is in the log, once.
    const received = outcomes.map(serialOf).filter((x): x is string => x !== null);
    assert.equal(new Set(received).size, received.length, 'no serial was handed out twice');
    const rows = new Set((await query<{ serial: string }>('select serial::text as serial from certificates where request_id = $1', [sessions[r]!.grant])).map((x) => x.serial));
    assert.deepEqual(received.filter((sn) => !rows.has(sn)), [], 'certificates received without their row in the log');
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[`${o.op} ${o.status}`] = (tally[`${o.op} ${o.status}`] ?? 0) + 1;
    // What the report quotes: the slowest answer and how long recovery took.
    console.log(`# ${r}: answers ${JSON.stringify(tally)}; slowest ${Math.round(slowest)} ms; first certificate ${Math.round(res.recoveryMs)} ms after the database was back; ${received.length} received, ${rows.size} logged`);
    return { received, rows };
  }

  test('fail-closed: PostgreSQL stopped (fast shutdown) mid-load; back again, the service recovers without a restart', async () => {
    const res = await round(direct, 'stop', () => cluster.stop('fast'), () => cluster.start());
    await check('stop', res);
    assert.ok(res.recoveryMs < 10_000);
    // A real login works again, on the code of the next time-step (this user's current one is spent).
    await login(direct.url, users['u-stop']!, totp(users['u-stop']!.secret, 1));
  });

  test('fail-closed: PostgreSQL killed (SIGKILL, no shutdown) mid-load with synchronous_commit=off as its default: no acknowledged certificate is lost in its crash', async () => {
    assert.equal((await query<{ synchronous_commit: string }>('show synchronous_commit'))[0]!.synchronous_commit, 'off', 'the server default the service must not rely on');
    const res = await round(direct, 'kill', () => cluster.kill(), () => cluster.start());
    const { received } = await check('kill', res);
    assert.ok(received.length > 0);
    assert.ok(res.recoveryMs < 10_000);
  });

  test('fail-closed: PostgreSQL frozen (SIGSTOP: connections open, nothing answers) mid-load: answered 503 at the request deadline, not after the driver\'s timeouts', async () => {
    const res = await round(direct, 'freeze', () => cluster.freeze(), () => cluster.thaw());
    await check('freeze', res);
    const during = res.outcomes.filter((o) => o.sent >= res.down && o.done < res.restored);
    assert.ok(during.some((o) => o.done - o.sent >= DEADLINE_MS - 100), 'some requests waited for their deadline (the freeze was real)');
    assert.ok(res.recoveryMs < 10_000);
  });

  test('fail-closed: a certificate\'s row commits but the answer is lost with the connection: that certificate is never returned; the request is answered 503', async () => {
    const s = sessions['lost']!;
    const load = startLoad([proxied.url], Array.from({ length: 8 }, () => issueWorker(0, s.token, s.grant)));
    let outcomes: Outcome[];
    try {
      await load.until((o) => o.status === 201, 20);
      await proxy.loseCommitAnswers('insert into "certificates"', 1);
      const cut = load.elapsed();
      await load.until((o) => o.status === 201 && o.sent > cut, 20);
    } finally {
      outcomes = await load.stop();
    }
    for (const o of outcomes) assert.ok(o.status === 201 || (o.status === 503 && o.contentType === 'application/problem+json'), `answered ${o.status} ${o.body.slice(0, 200)}`);
    const received = new Set(outcomes.map(serialOf).filter((x): x is string => x !== null));
    const rows = (await query<{ serial: string }>('select serial::text as serial from certificates where request_id = $1', [s.grant])).map((x) => x.serial);
    const rowSet = new Set(rows);
    assert.deepEqual([...received].filter((sn) => !rowSet.has(sn)), [], 'certificates received without their row');
    const unreturned = rows.filter((sn) => !received.has(sn));
    assert.ok(unreturned.length >= 1, 'the lost answer belonged to a committed row');
    assert.ok(outcomes.filter((o) => o.status === 503).length >= unreturned.length, 'each certificate whose commit went unanswered was refused, not re-sent');
    console.log(`# lost commit answer: ${unreturned.length} committed rows never returned, ${outcomes.filter((o) => o.status === 503).length} answered 503, ${received.size} received`);
  });

  test('ok: after every outage the sealers resumed: each logged record is on the chain, and the chain verifies', async () => {
    const h = await openDatabase({ databaseUrl: db(), dataDir: null, poolSize: 2 });
    try {
      for (const stream of STREAMS) {
        await waitFor(`every ${stream} record sealed`, async () => (await verifyStream(h.db, stream)).unsealed === 0, 20_000, 200);
        const v = await verifyStream(h.db, stream);
        assert.equal(v.ok, true, JSON.stringify(v.problem));
        assert.ok(v.sealed > 0);
      }
    } finally {
      await h.close();
    }
    assert.equal((await send(undefined, direct.url, 'GET', '/readyz')).status, 200);
  });
});
