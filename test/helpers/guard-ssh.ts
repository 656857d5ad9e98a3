// Real ssh sessions against a test sshd that runs the session guard, and the
// process checks the guard's tests make (which processes of a session are
// left, whether one PID still runs).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { mintCertificate } from '../../src/ssh/certificate.js';
import { parseUserPublicKey } from '../../src/ssh/pubkey.js';
import { randomSerial } from '../../src/ssh/serial.js';
import type { Signer } from '../../src/ssh/signer.js';
import type { UserKeyFile } from './keys.js';

export const USER = os.userInfo().username;

/**
 * A certificate for USER at `${key.path}-cert.pub` that ends `seconds` from now, with only
 * permit-pty unless `extensions` says otherwise; returns its valid_before and serial.
 */
export async function issueFor(
  ca: Signer,
  key: UserKeyFile,
  seconds: number,
  opts: { extensions?: string[]; serial?: bigint; keyId?: string; criticalOptions?: Record<string, string> } = {},
): Promise<{ validBefore: number; serial: bigint }> {
  const now = Math.floor(Date.now() / 1000);
  const serial = opts.serial ?? randomSerial();
  const cert = await mintCertificate(ca, {
    publicKey: parseUserPublicKey(key.publicLine),
    serial,
    keyId: opts.keyId ?? `guard-${serial}@jit-ssh.test`,
    principals: [USER],
    validAfter: now - 60,
    validBefore: now + seconds,
    extensions: opts.extensions ?? ['permit-pty'],
    criticalOptions: opts.criticalOptions ?? {},
  });
  writeFileSync(`${key.path}-cert.pub`, cert.text + '\n', { mode: 0o600 });
  return { validBefore: now + seconds, serial };
}

export interface Session {
  stdin: NodeJS.WritableStream;
  pid: number;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the output matches, with the time it first did. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<number>;
  /** When ssh has exited and its output is closed. */
  done: Promise<{ code: number | null; stdout: string; stderr: string; endedAt: number }>;
  /** When ssh has exited, with its code: sooner than `done` when a process it left (a ControlPersist master) holds its output. */
  exit: Promise<number | null>;
  exited(): boolean;
}

export const SSH_OPTIONS = [
  '-F', '/dev/null',
  '-o', 'BatchMode=yes',
  '-o', 'StrictHostKeyChecking=no',
  '-o', 'UserKnownHostsFile=/dev/null',
  '-o', 'LogLevel=ERROR',
  '-o', 'IdentitiesOnly=yes',
  '-o', 'IdentityAgent=none',
  '-o', 'ConnectTimeout=10',
];

/**
 * Real `ssh` (or `program`: sftp takes the same options, with -P for the port) with only the given
 * key and certificate. `tty` asks for a pty (-tt); `stdin` keeps stdin a pipe we hold open; `args`
 * go before the destination (e.g. -N, -L, -o ControlMaster=yes).
 */
export function openSsh(
  port: number,
  key: UserKeyFile,
  opts: { command?: string; tty?: boolean; stdin?: boolean; args?: string[]; program?: 'ssh' | 'sftp' } = {},
): Session {
  const program = opts.program ?? 'ssh';
  const args = [
    ...SSH_OPTIONS,
    '-o', `CertificateFile=${key.path}-cert.pub`,
    '-i', key.path,
    program === 'sftp' ? '-P' : '-p', String(port),
    ...(opts.tty ? ['-tt'] : []),
    ...(opts.args ?? []),
    `${USER}@127.0.0.1`,
    ...(opts.command === undefined ? [] : [opts.command]),
  ];
  const child = spawn(program, args, { stdio: [opts.tty || opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], timeout: 120_000 });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; endedAt: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, endedAt: Date.now() }));
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    stdin: child.stdin!,
    exit,
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async waitFor(pattern, stream = 'stdout', timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text: string = stream === 'stdout' ? stdout : stderr;
        if (pattern.test(text)) return Date.now();
        if (Date.now() > deadline || child.exitCode !== null) assert.fail(`${program}'s ${stream} never matched ${pattern}:\n${text}\nstderr: ${stderr}`);
        await sleep(25);
      }
    },
    done,
  };
}

/**
 * Processes whose session ID is `sid`, as `pid args` lines. Zombies do not count: they have ended, and
 * how soon init reaps an orphan's is up to init (this machine's takes a second or two).
 */
export function sessionProcesses(sid: number): string[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,sid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => Number(f[1]) === sid && !f[2]?.startsWith('Z'))
    .map((f) => `${f[0]} ${f.slice(3).join(' ')}`);
}

export async function waitUntil(done: () => boolean, message: () => string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(message());
    await sleep(100);
  }
}

export async function waitUntilGone(sid: number): Promise<void> {
  await waitUntil(() => sessionProcesses(sid).length === 0, () => `processes of session ${sid} are left behind:\n${sessionProcesses(sid).join('\n')}`);
}

/** The number `name=` is followed by in the output; fails with the output if there is none. */
export function numberAfter(name: string, out: string, err = ''): number {
  const m = new RegExp(`${name}=(\\d+)`).exec(out);
  assert.ok(m, `no ${name}=NUMBER in the output:\n${out}\nstderr:\n${err}`);
  return Number(m[1]);
}

/** The process exists and is not a zombie (a killed orphan stays one until init reaps it). */
export function isRunning(pid: number): boolean {
  try {
    return !execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim().startsWith('Z');
  } catch {
    return false; // ps exits 1 when there is no such process
  }
}

/** Ends a process a test left running on purpose (one the guard could not reach). */
export function killIfRunning(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
