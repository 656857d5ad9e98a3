// Issuance end to end — POST /v1/certificates authenticated, policy-checked,
// signed, logged and chained, on `jit-ssh-ca serve` in its own process, from
// a load generator in another — against its floor: one durable insert of an
// issuance-shaped row into the same PostgreSQL at the same concurrency.
// Afterwards every certificate a client received must have exactly one row,
// and the chain must verify.

import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { sealStream, verifyStream } from '../../src/audit/chain.js';
import { migrate, openDatabase } from '../../src/db/index.js';
import type { Database } from '../../src/db/schema.js';
import { createIssuer, type IssueInput } from '../../src/services/issuance.js';
import { mintCertificate } from '../../src/ssh/certificate.js';
import { parseUserPublicKey } from '../../src/ssh/pubkey.js';
import { randomSerial } from '../../src/ssh/serial.js';
import { createKeySigner } from '../../src/ssh/signer.js';
import { measure, type Result } from './measure.js';
import { createBenchDatabase, enrolUsers, grant, login, ROOT, startBenchServer, type BenchServer } from './server.js';

const USER_LINE = (() => {
  const x = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const s = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([s(Buffer.from('ssh-ed25519')), s(x)]).toString('base64')} bench`;
})();

function issueInput(): IssueInput {
  const now = Date.now();
  return { username: 'bench', requestId: 'bench', role: 'bench', publicKey: USER_LINE, principals: ['deploy'], validAfter: new Date(now - 60_000), validBefore: new Date(now + 3_600_000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: '127.0.0.1' };
}

/** The issuance pipeline in-process on the embedded database (what `npm start` runs by default). */
export async function runEmbedded(tmp: string, seconds: number): Promise<Result[]> {
  process.stderr.write('issuance on the embedded database (in-process)\n');
  const h = await openDatabase({ databaseUrl: null, dataDir: path.join(tmp, 'embedded') });
  try {
    await migrate(h.db);
    const issuer = createIssuer({ db: h.db, signer: createKeySigner(generateKeyPairSync('ed25519').privateKey) });
    const out: Result[] = [];
    for (const c of [1, 16]) out.push(await measure('issue → log (embedded, in-process)', c, () => issuer.issue(issueInput()), seconds));
    return out;
  } finally {
    await h.close();
  }
}

/** One durable INSERT of an issuance-shaped row per operation: the floor issuance cannot beat. */
export async function rawInsert(db: Kysely<Database>, concurrency: number, seconds: number): Promise<Result> {
  // The same columns, constraints and indexes as the log itself: an insert into it is the floor.
  await sql`create table if not exists raw_insert (like certificates including all)`.execute(db);
  const signer = createKeySigner(generateKeyPairSync('ed25519').privateKey);
  const now = Math.floor(Date.now() / 1000);
  const cert = (await mintCertificate(signer, { publicKey: parseUserPublicKey(USER_LINE), serial: 2n, keyId: 'bench@jit-ssh req=bench serial=2', principals: ['deploy'], validAfter: now - 60, validBefore: now + 3600, extensions: ['permit-pty'], criticalOptions: {} })).text;
  return measure('raw durable insert (PostgreSQL)', concurrency, () =>
    sql`insert into raw_insert (serial, key_id, username, request_id, role, principals, valid_after, valid_before, extensions, critical_options, public_key_type, public_key_fingerprint, ca_key_fingerprint, certificate, client_address, issued_at)
        values (${randomSerial().toString()}, 'bench@jit-ssh req=01JBENCH serial=2', 'bench', '01JBENCH', 'bench', ${['deploy']}, now(), now() + interval '1 hour', ${['permit-pty']}, '{}', 'ssh-ed25519', 'SHA256:x', 'SHA256:y', ${cert}, '127.0.0.1', now())`.execute(db),
  seconds, 1);
}

export const ISSUE_HTTP = 'POST /v1/certificates (PostgreSQL)';
export const ISSUE_HTTP_ONE = 'POST /v1/certificates, one user one grant (http client)';
export const ISSUE_FETCH = 'POST /v1/certificates, 16 users (fetch client)';
export const ISSUE_FETCH_ONE = 'POST /v1/certificates, one user one grant (fetch client)';
export const CEILING = (client: 'http' | 'fetch') => `GET /healthz, HTTP ceiling (${client} client)`;
/** The same server run as JIT_SSH_WORKERS=2 (one supervisor, two workers on one port). */
export const TWO_WORKERS = (name: string) => `${name}, 2 workers`;

export interface LoadResult extends Result {
  received: number;
  keysReused: number;
  errorsBy: Record<string, number>;
}

export interface LoadOptions {
  client?: 'http' | 'fetch';
  route?: 'issue' | 'healthz';
}

/** Runs the load generator process against `server`, sampling the server's RSS and counting its CPU time. */
export async function httpLoad(server: BenchServer, sessions: Array<{ token: string; grant: string }>, concurrency: number, seconds: number, serialsFile: string | null, opts: LoadOptions = {}): Promise<LoadResult & { maxRssMiB: number; cpuMsPerOp: number }> {
  const route = opts.route ?? 'issue';
  const input = { url: server.url, sessions, concurrency, seconds, warmup: 1, serialsFile, client: opts.client ?? 'http', route, keys: route === 'issue' ? Math.min(200_000, Math.max(2000, Math.ceil(seconds * 6000))) : 0 };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/bench/load.ts')], { env: { ...process.env, BENCH_LOAD: JSON.stringify(input) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  let maxRssMiB = server.rssMiB();
  // The server's CPU over the generator's life (warm-up included), divided by every answer it got.
  const sampler = setInterval(() => (maxRssMiB = Math.max(maxRssMiB, server.rssMiB())), 100);
  const cpu0 = server.cpuSeconds();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  const cpu = server.cpuSeconds() - cpu0;
  if (code !== 0) throw new Error(`the load generator failed (${code}): ${out}`);
  const r = JSON.parse(out) as LoadResult & { answered: number };
  const cpuMsPerOp = r.answered > 0 ? (cpu * 1000) / r.answered : NaN;
  process.stderr.write(`  ${route === 'issue' ? 'POST /v1/certificates' : 'GET /healthz'} (${input.client}, ${sessions.length} session${sessions.length === 1 ? '' : 's'}) c=${concurrency}: ${r.perSecond.toFixed(0)}/s p99 ${r.p99ms.toFixed(2)} ms, ${r.errors} errors, server CPU ${cpuMsPerOp.toFixed(3)} ms/op, RSS ≤ ${maxRssMiB.toFixed(0)} MiB\n`);
  return { ...r, maxRssMiB, cpuMsPerOp };
}

/** Waits for the server's sealer to chain everything, then verifies the chain. */
export async function sealedAndVerified(db: Kysely<Database>): Promise<{ ok: boolean; sealed: number; sealSeconds: number; verifySeconds: number; problem: string | null }> {
  const t = performance.now();
  for (;;) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from certificates c where not exists (select 1 from chain_links l where l.stream = 'certificates' and l.record_key = c.serial::text)`.execute(db);
    if (rows[0]!.n === '0') break;
    // The running server seals every second; this process helps, as a second instance would.
    await sealStream(db, 'certificates', new Date());
  }
  const sealSeconds = (performance.now() - t) / 1000;
  const v0 = performance.now();
  const v = await verifyStream(db, 'certificates');
  return { ok: v.ok, sealed: v.sealed, sealSeconds, verifySeconds: (performance.now() - v0) / 1000, problem: v.problem?.detail ?? null };
}

/** Every serial received has exactly one row; returns the counts. */
export async function rowsForSerials(db: Kysely<Database>, serials: string[]): Promise<{ received: number; withRow: number; duplicates: number; rowsInLog: number }> {
  let withRow = 0;
  for (let i = 0; i < serials.length; i += 10_000) {
    const chunk = serials.slice(i, i + 10_000);
    const { rows } = await sql<{ n: string }>`select count(*) as n from certificates where serial = any(${chunk}::bigint[])`.execute(db);
    withRow += Number(rows[0]!.n);
  }
  const { rows } = await sql<{ n: string }>`select count(*) as n from certificates`.execute(db);
  return { received: serials.length, withRow, duplicates: serials.length - new Set(serials).size, rowsInLog: Number(rows[0]!.n) };
}

export async function setUpServer(pgUrl: string, tmp: string, name: string, users = 16, extraEnv: Record<string, string> = {}) {
  const bench = await createBenchDatabase(pgUrl, name);
  const dataDir = path.join(tmp, name);
  mkdirSync(dataDir, { recursive: true });
  const secretKey = Buffer.alloc(32, 7).toString('base64');
  const enrolled = await enrolUsers(bench.url, secretKey, Array.from({ length: users }, (_, i) => `bench${i}`), ['bench', 'auditors']);
  const server = await startBenchServer({ databaseUrl: bench.url, dataDir, secretKey, extraEnv });
  const sessions = [];
  for (const u of enrolled) {
    const token = await login(server.url, u);
    sessions.push({ token, grant: await grant(server.url, token) });
  }
  return { bench, server, sessions, dataDir };
}

export async function runIssuance(pgUrl: string, tmp: string, seconds: number): Promise<{ results: Result[]; notes: string[] }> {
  process.stderr.write('issuance on PostgreSQL: raw durable insert, then POST /v1/certificates from a separate process\n');
  const results: Result[] = [];
  const notes: string[] = [];
  const { bench, server, sessions, dataDir } = await setUpServer(pgUrl, tmp, `jit_ssh_bench_${process.pid}`);
  const h = await openDatabase({ databaseUrl: bench.url, dataDir: null, poolSize: 64 });
  try {
    for (const c of [1, 16, 64]) results.push(await rawInsert(h.db, c, seconds));
    await sql`drop table raw_insert`.execute(h.db);
    const serialFiles: string[] = [];
    // The HTTP ceiling: each client against a route doing no work, on the same server.
    for (const client of ['http', 'fetch'] as const) {
      const r = await httpLoad(server, sessions, 64, seconds, null, { client, route: 'healthz' });
      results.push({ name: CEILING(client), concurrency: 64, ops: r.ops, perSecond: r.perSecond, p50ms: r.p50ms, p95ms: r.p95ms, p99ms: r.p99ms, errors: r.errors, extra: { server_cpu_ms_per_op: r.cpuMsPerOp } });
    }
    const runs: Array<{ name: string; client: 'http' | 'fetch'; sessions: typeof sessions; levels: number[] }> = [
      { name: ISSUE_HTTP, client: 'http', sessions, levels: [1, 16, 64] },
      { name: ISSUE_HTTP_ONE, client: 'http', sessions: sessions.slice(0, 1), levels: [64] },
      { name: ISSUE_FETCH, client: 'fetch', sessions, levels: [64] },
      { name: ISSUE_FETCH_ONE, client: 'fetch', sessions: sessions.slice(0, 1), levels: [64] },
    ];
    for (const run of runs) {
      for (const c of run.levels) {
        const file = path.join(dataDir, `serials-${serialFiles.length}.txt`);
        serialFiles.push(file);
        const r = await httpLoad(server, run.sessions, c, seconds, file, { client: run.client });
        results.push({ name: run.name, concurrency: c, ops: r.ops, perSecond: r.perSecond, p50ms: r.p50ms, p95ms: r.p95ms, p99ms: r.p99ms, errors: r.errors, extra: { server_rss_mib: r.maxRssMiB, server_cpu_ms_per_cert: r.cpuMsPerOp } });
        if ((r.errors ?? 0) > 0) notes.push(`${run.name} c=${c}: errors ${JSON.stringify(r.errorsBy)}`);
        if (r.keysReused > 0) notes.push(`${run.name} c=${c}: the load generator ran out of fresh keys ${r.keysReused} time(s)`);
      }
    }
    // 1 worker against 2 on the same database: the fetch client's ceiling and its single-grant issuance.
    mkdirSync(path.join(dataDir, 'two-workers'), { recursive: true });
    const two = await startBenchServer({ databaseUrl: bench.url, dataDir: path.join(dataDir, 'two-workers'), secretKey: server.secretKey, extraEnv: { JIT_SSH_WORKERS: '2' } });
    try {
      const ceiling = await httpLoad(two, sessions, 64, seconds, null, { client: 'fetch', route: 'healthz' });
      results.push({ name: TWO_WORKERS(CEILING('fetch')), concurrency: 64, ops: ceiling.ops, perSecond: ceiling.perSecond, p50ms: ceiling.p50ms, p95ms: ceiling.p95ms, p99ms: ceiling.p99ms, errors: ceiling.errors, extra: { server_cpu_ms_per_op: ceiling.cpuMsPerOp } });
      const file = path.join(dataDir, `serials-${serialFiles.length}.txt`);
      serialFiles.push(file);
      const r = await httpLoad(two, sessions.slice(0, 1), 64, seconds, file, { client: 'fetch' });
      results.push({ name: TWO_WORKERS(ISSUE_FETCH_ONE), concurrency: 64, ops: r.ops, perSecond: r.perSecond, p50ms: r.p50ms, p95ms: r.p95ms, p99ms: r.p99ms, errors: r.errors, extra: { server_rss_mib: r.maxRssMiB, server_cpu_ms_per_cert: r.cpuMsPerOp } });
      if ((r.errors ?? 0) > 0) notes.push(`${TWO_WORKERS(ISSUE_FETCH_ONE)}: errors ${JSON.stringify(r.errorsBy)}`);
    } finally {
      await two.stop();
    }
    const serials = serialFiles.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean));
    const rows = await rowsForSerials(h.db, serials);
    notes.push(`every certificate received has its row: ${rows.withRow === rows.received && rows.duplicates === 0 ? 'yes' : 'NO'} (${rows.received} received, ${rows.withRow} with a row, ${rows.duplicates} duplicate serials, ${rows.rowsInLog} rows in the log)`);
    const v = await sealedAndVerified(h.db);
    notes.push(`chain after the load: ${v.ok ? 'verifies' : `BROKEN: ${v.problem}`} (${v.sealed} records; sealer caught up ${v.sealSeconds.toFixed(1)} s after the load; verify took ${v.verifySeconds.toFixed(2)} s)`);
  } finally {
    await h.close();
    await server.stop();
    await bench.drop();
  }
  return { results, notes };
}
