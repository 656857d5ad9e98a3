// Benchmarks, printed as one table with ratios against baselines measured in
// the same run, and written as JSON to bench-results/. Usage:
//   npm run bench                 signing baselines and issuance on the embedded database
//   DATABASE_URL=postgres://... npm run bench   also issuance on PostgreSQL vs a raw durable insert
// Optional: BENCH_SECONDS (default 3) per measurement.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { generate } from 'otplib';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import sshpk from 'sshpk';
import { createIssuer, type IssueInput } from '../src/services/issuer.js';
import { createSecretBox } from '../src/auth/secret-box.js';
import { createAuthService } from '../src/services/auth.js';
import { createUserAdmin } from '../src/services/users.js';
import { migrate, openDatabase, type DbHandle } from '../src/db/index.js';
import { mintCertificate } from '../src/ssh/certificate.js';
import { parseUserPublicKey } from '../src/ssh/pubkey.js';
import { randomSerial } from '../src/ssh/serial.js';
import { createKeySigner } from '../src/ssh/signer.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const PG_URL = process.env['DATABASE_URL'] || process.env['TEST_DATABASE_URL'] || null;

interface Result {
  name: string;
  concurrency: number;
  ops: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
}

const results: Result[] = [];

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}

/** Runs `op` from `concurrency` loops for `seconds`; records throughput and latency. */
async function measure(name: string, concurrency: number, op: () => unknown | Promise<unknown>, seconds = SECONDS): Promise<Result> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op();
        lat.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const r = { name, concurrency, ops: lat.length, perSecond: lat.length / elapsed, p50ms: quantile(lat, 0.5), p99ms: quantile(lat, 0.99) };
  results.push(r);
  process.stderr.write(`  ${name} c=${concurrency}: ${r.perSecond.toFixed(0)}/s\n`);
  return r;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-bench-'));
const caKey = generateKeyPairSync('ed25519').privateKey;
const signer = createKeySigner(caKey);
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'user')]);
const userLine = readFileSync(path.join(tmp, 'user.pub'), 'utf8').trim();
const userKey = parseUserPublicKey(userLine);
const now = Math.floor(Date.now() / 1000);
const spec = () => ({
  publicKey: userKey,
  serial: randomSerial(),
  keyId: 'bench@jit-ssh req=bench serial=0',
  principals: ['deploy'],
  validAfter: now - 60,
  validBefore: now + 3600,
  extensions: ['permit-pty'],
  criticalOptions: {},
});

process.stderr.write('signing baselines\n');
const msg = Buffer.alloc(300, 7);
const raw = await measure('node:crypto ed25519 sign (raw)', 1, () => sign(null, msg, caKey));
const mint = await measure('mintCertificate (ed25519 CA)', 16, () => mintCertificate(signer, spec()));

const sshpkCa = sshpk.parsePrivateKey(
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'ca')]) && readFileSync(path.join(tmp, 'ca')),
  'ssh',
);
const sshpkUser = sshpk.parseKey(userLine, 'ssh');
const sshpkRes = await measure('sshpk.createCertificate (ed25519 CA)', 1, () =>
  sshpk.createCertificate(sshpk.identityForUser('deploy'), sshpkUser, sshpk.identityForUser('ca'), sshpkCa, { lifetime: 3600 }),
  Math.min(SECONDS, 2),
);

const keygenRes = await measure('ssh-keygen -s per certificate', 1, () =>
  execFileSync('ssh-keygen', ['-q', '-s', path.join(tmp, 'ca'), '-I', 'bench', '-n', 'deploy', '-V', '-1m:+1h', '-z', '1234', path.join(tmp, 'user.pub')], { stdio: 'ignore' }),
  Math.min(SECONDS, 2),
);

const input = (): IssueInput => ({
  username: 'bench',
  requestId: 'bench',
  role: 'bench',
  publicKey: userLine,
  principals: ['deploy'],
  validAfter: new Date((now - 60) * 1000),
  validBefore: new Date((now + 3600) * 1000),
  extensions: ['permit-pty'],
  criticalOptions: {},
  clientAddress: '127.0.0.1',
});

async function issuanceBench(label: string, h: DbHandle, concurrencies: number[]) {
  await migrate(h.db);
  const issuer = createIssuer({ db: h.db, signer });
  for (const c of concurrencies) await measure(`issue → log (${label})`, c, () => issuer.issue(input()));
}

process.stderr.write('issuance on the embedded database\n');
const embedded = await openDatabase({ databaseUrl: null, dataDir: path.join(tmp, 'data') });
await issuanceBench('embedded', embedded, [1, 16]);
await embedded.close();

let rawInsert: Result[] = [];
if (PG_URL) {
  process.stderr.write('issuance on PostgreSQL\n');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const dbName = `jit_ssh_bench_${process.pid}`;
  await admin.query(`create database ${dbName}`);
  const url = new URL(PG_URL);
  url.pathname = `/${dbName}`;
  try {
    const h = await openDatabase({ databaseUrl: url.toString(), dataDir: null, poolSize: 64 });
    await migrate(h.db);
    // The floor: one durable insert of an issuance-shaped row per certificate.
    await sql`create table raw_insert (like certificates including all)`.execute(h.db);
    const cert = (await mintCertificate(signer, spec())).text;
    for (const c of [1, 16, 64]) {
      rawInsert.push(
        await measure('raw durable insert (PostgreSQL)', c, () =>
          sql`insert into raw_insert (serial, key_id, username, request_id, role, principals, valid_after, valid_before, extensions, critical_options, public_key_type, public_key_fingerprint, ca_key_fingerprint, certificate, client_address)
              values (${randomSerial().toString()}, 'k', 'bench', 'bench', 'bench', ${['deploy']}, now(), now() + interval '1 hour', ${['permit-pty']}, '{}', 'ssh-ed25519', 'SHA256:x', 'SHA256:y', ${cert}, '127.0.0.1')`.execute(h.db),
        ),
      );
    }
    await issuanceBench('PostgreSQL', h, [1, 16, 64]);
    await h.close();
  } finally {
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  }
}

process.stderr.write('login (bounded by the password KDF, scrypt N=2^16)\n');
{
  const h = await openDatabase({ databaseUrl: null, dataDir: null });
  await migrate(h.db);
  const box = createSecretBox(randomBytes(32));
  const settings = { tokenTtl: 3600, adminGroup: 'admins', auditorGroup: 'auditors', lockoutThreshold: 1_000_000, lockoutSeconds: 60, addressFailureLimit: 1_000_000, passwordCost: 16 };
  const auth = await createAuthService({ db: h.db, box, settings });
  const enrollment = await createUserAdmin({ db: h.db, box, passwordCost: 16 }).add({ name: 'bench', groups: [], password: 'bench-password-long' }, 'os:bench');
  const secret = new URL(enrollment.otpauth_uri).searchParams.get('secret')!;
  let t = Math.floor(Date.now() / 1000);
  const okAuth = await createAuthService({ db: h.db, box, settings, now: () => new Date(t * 1000) });
  const fail = (username: string) => () => auth.login({ username, password: 'wrong-password-here', totp: '000000', clientAddress: 'bench' }).catch(() => {});
  await measure('login refused: existing user, wrong password', 2, fail('bench'));
  await measure('login refused: unknown user', 2, fail('nobody-here'));
  await measure('login ok (fresh TOTP step each time)', 1, async () => {
    t += 30; // each login needs a step not used before
    const code = await generate({ secret, epoch: t });
    await okAuth.login({ username: 'bench', password: 'bench-password-long', totp: code, clientAddress: 'bench' });
  });
  await h.close();
}

rmSync(tmp, { recursive: true, force: true });

const rows = results.map((r) => `| ${r.name} | ${r.concurrency} | ${r.perSecond.toFixed(0)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} |`);
console.log('| benchmark | conc. | ops/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n' + rows.join('\n'));
console.log('\nratios (same run):');
console.log(`  mintCertificate / sshpk.createCertificate = ${(mint.perSecond / sshpkRes.perSecond).toFixed(1)}x`);
console.log(`  mintCertificate / ssh-keygen -s           = ${(mint.perSecond / keygenRes.perSecond).toFixed(1)}x`);
console.log(`  mintCertificate / raw ed25519 sign        = ${(mint.perSecond / raw.perSecond).toFixed(2)}`);
for (const r of rawInsert) {
  const issue = results.find((x) => x.name === 'issue → log (PostgreSQL)' && x.concurrency === r.concurrency);
  if (issue) console.log(`  issuance / raw insert at c=${r.concurrency}          = ${(issue.perSecond / r.perSecond).toFixed(2)}`);
}
mkdirSync('bench-results', { recursive: true });
const out = path.join('bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), seconds: SECONDS, cpus: os.cpus().length, results }, null, 2));
const known = results.find((r) => r.name === 'login refused: existing user, wrong password');
const unknown = results.find((r) => r.name === 'login refused: unknown user');
if (known && unknown) console.log(`  login failure p50, unknown / existing user = ${(unknown.p50ms / known.p50ms).toFixed(2)} (1.00 = indistinguishable)`);
console.log(`\nwritten to ${out}`);
