// Does the CA stay as fast as its history grows? With 0, 100k and 1M
// certificates already in the log: issuance p99 over HTTP, the auditors'
// indexed queries, and `audit verify` (time linear in rows, memory flat).

import { spawn } from 'node:child_process';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { sealStream } from '../../src/audit/chain.js';
import { queryCertificates } from '../../src/audit/queries.js';
import { openDatabase } from '../../src/db/index.js';
import type { Database } from '../../src/db/schema.js';
import { httpLoad, setUpServer } from './issuance.js';
import { repeat, type Result } from './measure.js';
import { ROOT } from './server.js';

/** Adds `n` issuance-shaped rows, spread over the last 90 days, 1000 users, random serials. */
async function seed(db: Kysely<Database>, n: number): Promise<void> {
  const cert = `ssh-ed25519-cert-v01@openssh.com ${'A'.repeat(560)} seed`;
  for (let done = 0; done < n; done += 100_000) {
    const k = Math.min(100_000, n - done);
    await sql`insert into certificates (serial, key_id, username, request_id, role, principals, valid_after, valid_before, extensions, critical_options, public_key_type, public_key_fingerprint, ca_key_fingerprint, certificate, client_address, issued_at)
      select s, 'user' || (g % 1000) || '@jit-ssh req=seed serial=' || s, 'user' || (g % 1000), 'seed' || (g % 200000), 'bench', array['deploy'],
             t - interval '1 minute', t + interval '2 hours', array['permit-pty'], '{}'::jsonb, 'ssh-ed25519', 'SHA256:seed', 'SHA256:seedca', ${cert}, '10.0.0.1', t
      from (select g, greatest(2, floor(random() * 9.2e18))::bigint as s, now() - random() * interval '90 days' as t from generate_series(1, ${k}) g) x
      on conflict do nothing`.execute(db);
  }
  await sql`analyze certificates`.execute(db);
}

/** Runs verify in a child process and samples its resident memory. */
function verifyInChild(dbUrl: string): Promise<{ seconds: number; sealed: number; ok: boolean; maxRssMiB: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/bench/verify-child.ts')], { env: { ...process.env, BENCH_DB: dbUrl }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let max = 0;
  child.stdout.on('data', (d) => (out += d));
  const sample = setInterval(async () => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(await (await import('node:fs/promises')).readFile(`/proc/${child.pid}/status`, 'utf8'));
      if (m) max = Math.max(max, Number(m[1]) / 1024);
    } catch {
      // exited
    }
  }, 50);
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      clearInterval(sample);
      if (code !== 0) reject(new Error(`verify failed: ${out}`));
      else resolve({ ...JSON.parse(out), maxRssMiB: max });
    }),
  );
}

export async function runGrowth(pgUrl: string, tmp: string, sizes: number[], seconds: number): Promise<{ results: Result[]; notes: string[] }> {
  process.stderr.write('growth: issuance, auditor queries and verify with history in the log\n');
  const results: Result[] = [];
  const notes: string[] = [];
  const { bench, server, sessions } = await setUpServer(pgUrl, tmp, `jit_ssh_bench_growth_${process.pid}`);
  const h = await openDatabase({ databaseUrl: bench.url, dataDir: null, poolSize: 4 });
  try {
    let rows = 0;
    for (const size of [0, ...sizes]) {
      if (size > rows) {
        const t = performance.now();
        await seed(h.db, size - rows);
        const seeded = (performance.now() - t) / 1000;
        const s0 = performance.now();
        let sealed = 0;
        for (let n; (n = await sealStream(h.db, 'certificates', new Date(), 5000)) > 0; ) sealed += n;
        const sealSeconds = (performance.now() - s0) / 1000;
        notes.push(`growth to ${size} rows: seeded in ${seeded.toFixed(0)} s; sealed ${sealed} records at ${(sealed / sealSeconds).toFixed(0)}/s`);
        rows = size;
      }
      const label = `${size.toLocaleString('en')} rows`;
      const r = await httpLoad(server, sessions, 16, seconds, null);
      results.push({ name: `POST /v1/certificates c=16, ${label} in the log`, concurrency: 16, ops: r.ops, perSecond: r.perSecond, p50ms: r.p50ms, p95ms: r.p95ms, p99ms: r.p99ms, errors: r.errors, extra: { server_rss_mib: r.maxRssMiB } });
      const { rows: one } = await sql<{ serial: string }>`select serial::text from certificates order by seq desc offset 1000 limit 1`.execute(h.db);
      const serial = one[0]?.serial ?? '2';
      const mid = new Date(Date.now() - 45 * 86_400_000);
      const queries: Array<[string, Parameters<typeof queryCertificates>[1]]> = [
        ['by user', { user: 'user42', limit: 100 }],
        ['by serial', { serial }],
        ['by time range (1 h, 90 days back half way)', { since: mid, until: new Date(mid.getTime() + 3_600_000), limit: 100 }],
        ['by user and time range (7 days)', { user: 'user42', since: new Date(Date.now() - 7 * 86_400_000), limit: 100 }],
      ];
      for (const [what, f] of queries) results.push(await repeat(`query ${what}, ${label}`, 50, () => queryCertificates(h.db, f)));
      if (size > 0) {
        const v = await verifyInChild(bench.url);
        results.push({ name: `audit verify (certificates), ${label}`, concurrency: 1, ops: v.sealed, perSecond: v.sealed / v.seconds, p50ms: v.seconds * 1000, p95ms: v.seconds * 1000, p99ms: v.seconds * 1000, extra: { seconds: v.seconds, max_rss_mib: v.maxRssMiB, ok: String(v.ok) } });
        process.stderr.write(`  audit verify ${label}: ${v.seconds.toFixed(1)} s, ${v.maxRssMiB.toFixed(0)} MiB, ${v.ok ? 'ok' : 'FAILED'}\n`);
      }
    }
  } finally {
    await h.close();
    await server.stop();
    await bench.drop();
  }
  return { results, notes };
}
