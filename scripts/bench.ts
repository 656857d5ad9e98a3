// Benchmarks, printed as one table with ratios against baselines measured in
// the same run, and written as JSON to bench-results/. Usage:
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
// Without a PostgreSQL only the signing baselines, the embedded database and
// login run. Settings (environment):
//   BENCH_SECONDS   seconds per throughput measurement (default 5)
//   BENCH_SECTIONS  comma list of: baselines, embedded, issuance, login, shell, growth (default all)
//   BENCH_GROWTH    log sizes for the growth section (default 100000,1000000)
// See docs/benchmarks.md for what each number means and the targets.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBaselines } from './bench/baselines.js';
import { runGrowth } from './bench/growth.js';
import { CEILING, ISSUE_FETCH, ISSUE_FETCH_ONE, ISSUE_HTTP, ISSUE_HTTP_ONE, runEmbedded, runIssuance, TWO_WORKERS } from './bench/issuance.js';
import { runLogin } from './bench/login.js';
import type { Result } from './bench/measure.js';
import { runShell } from './bench/shell.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const PG_URL = process.env['DATABASE_URL'] || process.env['TEST_DATABASE_URL'] || null;
const SECTIONS = new Set((process.env['BENCH_SECTIONS'] ?? 'baselines,embedded,issuance,login,shell,growth').split(','));
const GROWTH = (process.env['BENCH_GROWTH'] ?? '100000,1000000').split(',').map(Number);

const results: Result[] = [];
const notes: string[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-bench-'));
const need = (what: string) => {
  if (PG_URL) return true;
  notes.push(`${what}: skipped (set DATABASE_URL to a PostgreSQL)`);
  return false;
};

try {
  if (SECTIONS.has('baselines')) results.push(...(await runBaselines(tmp, SECONDS)));
  if (SECTIONS.has('embedded')) results.push(...(await runEmbedded(tmp, SECONDS)));
  if (SECTIONS.has('issuance') && need('issuance')) {
    const r = await runIssuance(PG_URL!, tmp, SECONDS);
    results.push(...r.results);
    notes.push(...r.notes);
  }
  if (SECTIONS.has('login')) results.push(...(await runLogin(SECONDS)));
  if (SECTIONS.has('shell') && need('time to shell')) {
    const r = await runShell(PG_URL!, tmp);
    results.push(...r.results);
    notes.push(...r.notes);
  }
  if (SECTIONS.has('growth') && need('growth')) {
    const r = await runGrowth(PG_URL!, tmp, GROWTH, SECONDS);
    results.push(...r.results);
    notes.push(...r.notes);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const fmt = (n: number | undefined, d = 2) => (n === undefined ? '' : n.toFixed(d));
const extra = (r: Result) => Object.entries(r.extra ?? {}).map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 10) / 10 : v}`).join(' ');
console.log('| benchmark | conc. | ops/s | p50 ms | p95 ms | p99 ms | errors | notes |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) console.log(`| ${r.name} | ${r.concurrency} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50ms)} | ${fmt(r.p95ms)} | ${fmt(r.p99ms)} | ${r.errors ?? ''} | ${extra(r)} |`);

const find = (name: string, c?: number) => results.find((r) => r.name === name && (c === undefined || r.concurrency === c));
const ratio = (label: string, a: Result | undefined, b: Result | undefined, target?: string) => {
  if (a && b) console.log(`  ${label.padEnd(58)} ${(a.perSecond / b.perSecond).toFixed(2)}${target ? `   (target ${target})` : ''}`);
};
console.log('\nratios (same run):');
ratio('mintCertificate / sshpk.createCertificate', find('mintCertificate (ed25519 CA)'), find('sshpk.createCertificate (ed25519 CA)'), '≥ 30');
ratio('mintCertificate / ssh-keygen -s', find('mintCertificate (ed25519 CA)'), find('ssh-keygen -s per certificate'), '≥ 30');
ratio('HTTP issuance c=64 / sshpk.createCertificate', find('POST /v1/certificates (PostgreSQL)', 64), find('sshpk.createCertificate (ed25519 CA)'), '≥ 30');
ratio('HTTP issuance c=64 / ssh-keygen -s', find('POST /v1/certificates (PostgreSQL)', 64), find('ssh-keygen -s per certificate'), '≥ 30');
for (const c of [1, 16, 64]) ratio(`HTTP issuance / raw durable insert, c=${c}`, find('POST /v1/certificates (PostgreSQL)', c), find('raw durable insert (PostgreSQL)', c), c === 64 ? '≥ 0.50' : undefined);
// Against an outside client too: issuance at 64 connections over min(raw durable insert, that client's HTTP ceiling).
const raw64 = find('raw durable insert (PostgreSQL)', 64);
for (const [name, client, target] of [[ISSUE_HTTP, 'http', '≥ 0.60'], [ISSUE_HTTP_ONE, 'http', '≥ 0.60'], [ISSUE_FETCH, 'fetch', '≥ 0.50'], [ISSUE_FETCH_ONE, 'fetch', '≥ 0.50']] as const) {
  const issue = find(name, 64);
  const ceiling = find(CEILING(client));
  if (!issue || !ceiling || !raw64) continue;
  const floor = raw64.perSecond <= ceiling.perSecond ? raw64 : ceiling;
  ratio(`${name.replace('POST /v1/certificates', 'issuance')} / min(raw insert, ceiling)`, issue, floor, target);
  console.log(`  ${`  p99 / the ${client} ceiling's p99`.padEnd(58)} ${(issue.p99ms / ceiling.p99ms).toFixed(2)}   (target ≤ 2)`);
  const cpu = issue.extra?.['server_cpu_ms_per_cert'];
  if (typeof cpu === 'number') console.log(`  ${'  server CPU ms per certificate'.padEnd(58)} ${cpu.toFixed(3)}   (target ≤ 0.25)`);
}
// Both cores: the same single-grant fetch load on JIT_SSH_WORKERS=2 against one worker.
ratio('2 workers / 1 worker, issuance one grant (fetch client)', find(TWO_WORKERS(ISSUE_FETCH_ONE), 64), find(ISSUE_FETCH_ONE, 64));
ratio('2 workers / 1 worker, HTTP ceiling (fetch client)', find(TWO_WORKERS(CEILING('fetch'))), find(CEILING('fetch')));
ratio('mintCertificate / raw ed25519 sign', find('mintCertificate (ed25519 CA)'), find('node:crypto ed25519 sign (raw)'));
if (notes.length) console.log('\n' + notes.map((n) => `  ${n}`).join('\n'));

mkdirSync('bench-results', { recursive: true });
const out = path.join('bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, cpus: os.cpus().length, node: process.version, results, notes }, null, 2));
console.log(`\nwritten to ${out}`);
