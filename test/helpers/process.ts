// Runs the real executables as a user would, and the server until it listens.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CA_BIN = path.join(ROOT, 'bin', 'jit-ssh-ca.js');
export const HELPER_BIN = path.join(ROOT, 'bin', 'jit-ssh.js');

/** A clean environment: no DATABASE_URL or JIT_SSH_* leaking in from the developer's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('JIT_SSH_') && !['DATABASE_URL', 'PORT', 'HOST', 'TEST_DATABASE_URL'].includes(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Another OS user to run a process as (the tests run as root for this). */
export interface RunAs {
  uid?: number;
  gid?: number;
}

export function run(bin: string, args: string[], env: NodeJS.ProcessEnv, input?: string, as: RunAs = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], ...as });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Every log line printed so far, parsed. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `jit-ssh-ca serve` on a free port and waits for its "listening" line.
 * It is killed when the test ends; inside a before() hook pass `stopAfter: false`
 * and stop it in your own after() (Node 20 runs a hook's after() when the hook ends).
 */
export function startServerProcess(env: NodeJS.ProcessEnv, timeoutMs = 60_000, { stopAfter = true, uid, gid }: { stopAfter?: boolean } & RunAs = {}): Promise<ServerProcess> {
  const as = uid === undefined ? {} : { uid, gid: gid ?? uid };
  const child = spawn(process.execPath, [CA_BIN, 'serve', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'], ...as });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (stopAfter) {
    after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
  }
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line);
        } catch {
          reject(new Error(`server printed a non-JSON log line: ${line}`));
          continue;
        }
        logs.push(entry);
        if (entry['msg'] === 'listening') {
          clearTimeout(timer);
          resolve({
            child,
            url: String(entry['url']),
            logs,
            stderr: () => stderr,
            stop: (signal = 'SIGTERM') => {
              child.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
}
