// A private PostgreSQL cluster for tests that break the database on purpose:
// stop it, kill it, freeze it, start it again. The machine's shared server
// (127.0.0.1:5432) serves other tests at the same time and is never touched.
//
// initdb and postgres refuse to run as root; tests here run as root, so the
// cluster runs as the `postgres` OS user (runuser) in a directory it owns.

import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './net.js';
import os from 'node:os';
import path from 'node:path';

/** The directory of initdb/pg_ctl/postgres, or null when PostgreSQL's server binaries are not installed. */
export function postgresBinDir(): string | null {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config: look where Debian puts the server binaries
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // none
  }
  return candidates.find((d) => d && existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl'))) ?? null;
}

/** Why the fault tests cannot run here, or null when they can. */
export function clusterUnavailableReason(): string | null {
  if (!postgresBinDir()) return 'no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config --bindir or /usr/lib/postgresql/*/bin';
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root and there is no postgres OS user to run the private cluster as';
    }
  }
  return null;
}


export interface PgCluster {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  port: number;
  /** A URL for database `name` of this cluster. */
  urlFor(name: string): string;
  /** Starts the server (again) on the same port and waits until it accepts connections. */
  start(): void;
  /** pg_ctl stop: `fast` ends sessions with 57P01 admin_shutdown, `immediate` drops them without a goodbye. */
  stop(mode?: 'fast' | 'immediate'): void;
  /** SIGKILL to the postmaster and every backend: connections are reset, nothing is shut down. */
  kill(): void;
  /** SIGSTOP to the postmaster and every backend: connections stay open and nothing answers (a hung server). */
  freeze(): void;
  /** SIGCONT: the frozen server answers again. */
  thaw(): void;
  running(): boolean;
  /** Stops the server (whatever its state) and removes its directory. Safe to call twice. */
  destroy(): void;
}

/**
 * Makes and starts a cluster in a temp directory on a free port. Listens on
 * 127.0.0.1 and a socket in its own directory; trust authentication; fsync off
 * (the OS crashing is not among the faults tested: a killed server's WAL is
 * still in the page cache). `settings` are more server settings (`-c`).
 */
export async function startCluster(settings: Record<string, string> = {}): Promise<PgCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(clusterUnavailableReason()!);
  const asRoot = process.getuid?.() === 0;
  const base = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-pg-'));
  const data = path.join(base, 'data');
  const owner = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : null;
  if (owner !== null) chownSync(base, owner, Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()));
  const as = (cmd: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  const exec = (cmd: string, args: string[], allowFail = false) => {
    const [c, a] = as(path.join(bin, cmd), args);
    const r = spawnSync(c, a, { encoding: 'utf8', cwd: base, timeout: 60_000 });
    if (!allowFail && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
    return r;
  };
  let destroyed = false;
  const cleanup = () => {
    if (destroyed) return;
    destroyed = true;
    try {
      for (const pid of pids()) signal(pid, 'SIGCONT');
      exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop'], true);
      for (const pid of pids()) signal(pid, 'SIGKILL');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  };
  // A test process that dies any way but SIGKILL still takes its cluster with it.
  process.once('exit', cleanup);

  const port = await freePort();
  exec('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const all = { listen_addresses: '127.0.0.1', fsync: 'off', full_page_writes: 'off', max_connections: '100', shared_buffers: '16MB', ...settings };
  const options = [`-p ${port} -k ${base}`, ...Object.entries(all).map(([k, v]) => `-c ${k}=${v}`)].join(' ');

  function postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }
  /** The postmaster and its children (backends, checkpointer, ...). */
  function pids(): number[] {
    const pm = postmasterPid();
    if (pm === null) return [];
    const r = spawnSync('pgrep', ['-P', String(pm)], { encoding: 'utf8' });
    return [pm, ...r.stdout.split('\n').filter(Boolean).map(Number)];
  }
  function signal(pid: number, sig: NodeJS.Signals) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }

  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    urlFor: (name) => `postgres://postgres@127.0.0.1:${port}/${name}`,
    start() {
      const log = path.join(base, 'server.log');
      try {
        exec('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
      } catch (e) {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
        throw new Error(`${(e as Error).message}\nserver log:\n${tail}`);
      }
    },
    stop(mode = 'fast') {
      exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    },
    kill() {
      const all = pids();
      for (const pid of all) signal(pid, 'SIGKILL');
      // Wait for them to be gone, so a start() right after finds the port free.
      const deadline = Date.now() + 10_000;
      while (all.some((pid) => isAlive(pid)) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
      // Their lock files name a pid that may linger as a zombie until reaped; a new postmaster would wait on it.
      rmSync(path.join(data, 'postmaster.pid'), { force: true });
      rmSync(path.join(base, `.s.PGSQL.${port}.lock`), { force: true });
    },
    freeze() {
      for (const pid of pids()) signal(pid, 'SIGSTOP');
    },
    thaw() {
      for (const pid of pids()) signal(pid, 'SIGCONT');
    },
    running() {
      const pm = postmasterPid();
      return pm !== null && isAlive(pm);
    },
    destroy() {
      process.removeListener('exit', cleanup);
      cleanup();
    },
  };
  try {
    cluster.start();
  } catch (e) {
    cluster.destroy();
    throw e;
  }
  return cluster;
}

/** Alive and not a zombie waiting to be reaped. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
