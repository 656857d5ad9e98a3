// The server under test: `jit-ssh-ca serve` as operators run it, in its own
// process, on a database of its own in the PostgreSQL given to the benchmark,
// with users enrolled, logged in and holding auto-approved grants.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { freePort } from '../../test/helpers/net.js';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'otplib';
import pg from 'pg';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { migrate, openDatabase } from '../../src/db/index.js';
import { createUserAdmin } from '../../src/services/users.js';

export const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** `bench` for the load (principal deploy); `shell` reaches this OS user on a local sshd. */
export const BENCH_POLICY = `roles:
  shell:
    principals: [${os.userInfo().username}]
    requesters: [group:bench]
    max_duration: 8h
    auto_approve:
      - groups: [bench]
        max_duration: 8h
    certificate:
      extensions: [permit-pty]
  bench:
    description: the benchmark's role
    principals: [deploy]
    requesters: [group:bench]
    max_duration: 8h
    auto_approve:
      - groups: [bench]
        max_duration: 8h
    certificate:
      extensions: [permit-pty]
`;

export async function createBenchDatabase(adminUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}


export interface BenchServer {
  url: string;
  child: ChildProcess;
  secretKey: string;
  /** Resident set size of the server process now, MiB (its workers' summed, when it has any). */
  rssMiB(): number;
  /** CPU seconds (user + system) the server and its workers have used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export async function startBenchServer(opts: { databaseUrl: string | null; dataDir: string; secretKey?: string; extraEnv?: Record<string, string> }): Promise<BenchServer> {
  const port = await freePort();
  const secretKey = opts.secretKey ?? randomBytes(32).toString('base64');
  const policy = path.join(opts.dataDir, 'bench-policy.yaml');
  writeFileSync(policy, BENCH_POLICY);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    JIT_SSH_DATA_DIR: opts.dataDir,
    JIT_SSH_POLICY: policy,
    JIT_SSH_PASSWORD_COST: '14',
    // As `npm start` and the container image run it (see docs/benchmarks.md, memory).
    MALLOC_ARENA_MAX: '2',
    PORT: String(port),
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl, JIT_SSH_SECRET_KEY: secretKey } : {}),
    ...opts.extraEnv,
  };
  // Its log goes where an operator's would (a file), at the default level.
  const log = path.join(opts.dataDir, 'server.log');
  const out = (await import('node:fs')).openSync(log, 'a');
  const child = spawn(process.execPath, [...(process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean), path.join(ROOT, 'bin/jit-ssh-ca.js'), 'serve'], { env, stdio: ['ignore', out, out] });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${readFileSync(log, 'utf8').slice(-2000)}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error('the server did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    secretKey,
    rssMiB() {
      return processTree(child.pid!).reduce((sum, pid) => {
        const m = /VmRSS:\s+(\d+) kB/.exec(readProc(`/proc/${pid}/status`));
        return sum + (m ? Number(m[1]) / 1024 : 0);
      }, 0);
    },
    cpuSeconds() {
      return processTree(child.pid!).reduce((sum, pid) => {
        // Fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 per second on Linux).
        const stat = readProc(`/proc/${pid}/stat`);
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return sum + (Number(f[11]) + Number(f[12])) / 100;
      }, 0);
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const readProc = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** `pid` and its descendants (a cluster's workers), from /proc. */
function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = readProc(`/proc/${d}/stat`);
    if (stat) parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

export interface BenchUser {
  name: string;
  password: string;
  secret: string;
}

/** Enrols users straight in the database (before the server starts, or on PostgreSQL beside it). */
export async function enrolUsers(databaseUrl: string, secretKey: string, names: string[], groups: string[]): Promise<BenchUser[]> {
  const h = await openDatabase({ databaseUrl, dataDir: null });
  try {
    await migrate(h.db);
    const admin = createUserAdmin({ db: h.db, box: createSecretBox(Buffer.from(secretKey, 'base64')), passwordCost: 14 });
    const users: BenchUser[] = [];
    for (const name of names) {
      const password = `${name}-bench-password`;
      const e = await admin.add({ name, groups, password }, 'os:bench');
      users.push({ name, password, secret: new URL(e.otpauth_uri).searchParams.get('secret')! });
    }
    return users;
  } finally {
    await h.close();
  }
}

async function call(url: string, method: string, p: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(`${url}${p}`, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function login(url: string, u: BenchUser): Promise<string> {
  return (await call(url, 'POST', '/v1/auth/login', { username: u.name, password: u.password, totp: await generate({ secret: u.secret }) })).token;
}

/** An auto-approved grant of the bench role; returns its id. */
export async function grant(url: string, token: string, duration = '8h'): Promise<string> {
  const r = await call(url, 'POST', '/v1/requests', { role: 'bench', duration, reason: 'benchmark load' }, token);
  if (r.status !== 'approved') throw new Error(`the bench request was not approved: ${JSON.stringify(r)}`);
  return r.id;
}

export async function api(url: string, method: string, p: string, token: string, body?: unknown): Promise<any> {
  return call(url, method, p, body, token);
}
