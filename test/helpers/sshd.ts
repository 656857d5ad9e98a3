// A real OpenSSH server for end-to-end tests: its own directory, host key and
// config, listening on a free port of 127.0.0.1 and trusting only the CA keys a
// test gives it. It runs in the foreground (-D) as our child, so the test file
// can stop it, and logs to a file the tests read to see why sshd said yes or no.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { freePort } from './net.js';
import path from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from './keys.js';

// sshd re-executes itself for every connection, which it only does from an absolute path.
const SSHD = '/usr/sbin/sshd';
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 10_000;

export interface SshdOptions {
  /** Public key lines of the CAs sshd trusts (TrustedUserCAKeys). */
  caKeys: readonly string[];
  /** A key revocation list or revoked-keys file (RevokedKeys). */
  revokedKeys?: string;
  /** The host's private key (default: a new ed25519 key in sshd's directory). */
  hostKey?: string;
  /** A host certificate of that key for sshd to present (HostCertificate). */
  hostCertificate?: string;
  /** More sshd_config lines, appended after the others (e.g. `ExposeAuthInfo yes`, `ForceCommand ...`). */
  extraConfig?: readonly string[];
}

export interface Sshd {
  port: number;
  dir: string;
  /** All sshd has logged so far. Take `log().length` before an attempt to read only what follows. */
  log(): string;
  /** Waits until the log after offset `from` matches `pattern`; fails with the log if it does not in time. */
  waitForLog(pattern: RegExp, from?: number, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}


function readLog(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/**
 * One sshd for a whole test file: started by before(), stopped by after().
 * Call it at the top level of the file, not inside a hook: in Node 20 an
 * after() registered inside before() runs as soon as that hook ends, which
 * would stop sshd (and delete its directory) before the first test.
 */
export function useSshd(opts: SshdOptions): () => Sshd {
  let server: Sshd | undefined;
  // Registered before tempDir's own after(), so sshd stops before its directory is removed.
  after(() => server?.stop());
  const dir = tempDir('jit-ssh-sshd-');
  before(async () => {
    server = await launchSshd(dir, opts);
  });
  return () => {
    if (!server) throw new Error('sshd is not running: its before() hook failed');
    return server;
  };
}

/**
 * Starts an sshd inside one test (or at a file's top level); it is stopped when that test ends.
 * Inside a before() hook pass `{ stopAfter: false }` and stop it in your own after():
 * Node 20 runs an after() registered in a hook as soon as the hook ends.
 */
export async function startSshd(opts: SshdOptions, { stopAfter = true } = {}): Promise<Sshd> {
  const server = await launchSshd(stopAfter ? tempDir('jit-ssh-sshd-') : mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-sshd-')), opts);
  if (stopAfter) after(() => server.stop());
  return server;
}

/** Starts sshd in `dir` and resolves once it listens; throws with sshd's log if it cannot. Needs no test runner (the benchmark uses it too). */
export async function launchSshd(dir: string, opts: SshdOptions): Promise<Sshd> {
  const hostKey = opts.hostKey ?? path.join(dir, 'host_ed25519');
  if (!opts.hostKey) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-host', '-f', hostKey], { stdio: 'ignore' });
  const caFile = path.join(dir, 'trusted_user_ca_keys');
  writeFileSync(caFile, opts.caKeys.map((line) => line + '\n').join(''));

  const failures: string[] = [];
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const config = path.join(dir, `sshd_config.${attempt}`);
    // sshd appends to its -E file: a new file per attempt keeps each attempt's log apart.
    const logFile = path.join(dir, `sshd.${attempt}.log`);
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1`,
        `Port ${port}`,
        `HostKey ${hostKey}`,
        ...(opts.hostCertificate ? [`HostCertificate ${opts.hostCertificate}`] : []),
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        // No PAM and no password or keyboard-interactive: a certificate is the only way in.
        `UsePAM no`,
        `PasswordAuthentication no`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        // No authorized_keys: a login can only succeed through TrustedUserCAKeys.
        `AuthorizedKeysFile none`,
        `TrustedUserCAKeys ${caFile}`,
        ...(opts.revokedKeys ? [`RevokedKeys ${opts.revokedKeys}`] : []),
        // The temp directory's owner and modes are not the point of these tests.
        `StrictModes no`,
        // The tests log in as the current OS user, which is root in CI containers; keys (certificates) only.
        `PermitRootLogin prohibit-password`,
        // VERBOSE logs the certificate's key ID, serial and CA on every accepted login.
        `LogLevel VERBOSE`,
        ...(opts.extraConfig ?? []),
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config, '-E', logFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      // No sshd at that path: 'error' instead of 'exit' (and an unhandled 'error' would crash the run).
      child.once('error', (err) => {
        stderr += `${err.message}\n`;
        resolve(null);
      });
    });
    const started = await waitUntilListening(child, exited, logFile, port);
    if (started === 'listening') return running(child, exited, port, dir, logFile);

    const log = readLog(logFile) + stderr;
    failures.push(`attempt ${attempt} (port ${port}): ${started}\n${log}`);
    // Running as root, sshd wants its privilege separation directory (Debian's
    // /run/sshd is normally made by the service manager, which tests bypass).
    const privsep = /Missing privilege separation directory: (\S+)/.exec(log);
    if (privsep && process.getuid?.() === 0) {
      mkdirSync(privsep[1]!, { recursive: true, mode: 0o755 });
      continue;
    }
    // Someone took the port between freePort() and sshd's bind: try another one.
    if (/Bind to port \d+ .* failed|Cannot bind any address/.test(log)) continue;
    break;
  }
  throw new Error(`sshd did not start:\n${failures.join('\n')}`);
}

async function waitUntilListening(child: ChildProcess, exited: Promise<number | null>, logFile: string, port: number): Promise<string> {
  let exit: string | undefined;
  void exited.then((code) => (exit = `sshd exited with code ${code}`));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (readLog(logFile).includes(`Server listening on 127.0.0.1 port ${port}.`)) return 'listening';
    if (exit) return exit;
    await sleep(25);
  }
  child.kill('SIGKILL');
  await exited;
  return `sshd was not listening after ${START_TIMEOUT_MS} ms`;
}

function running(child: ChildProcess, exited: Promise<number | null>, port: number, dir: string, logFile: string): Sshd {
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // Should the test process exit without running after(), leave no listening sshd behind.
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    port,
    dir,
    log: () => readLog(logFile),
    async waitForLog(pattern, from = 0, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // sshd's per-connection process writes the log; it may still be writing when ssh has exited.
        const match = readLog(logFile).slice(from).match(pattern);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`sshd log does not match ${pattern} after ${timeoutMs} ms:\n${readLog(logFile).slice(from)}`);
        await sleep(25);
      }
    },
    stop,
  };
}

export interface SshAttempt {
  port: number;
  keyPath: string;
  certPath: string;
  user: string;
  command?: string;
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real ssh client with nothing but the given key and certificate: no
 * config files, no agent, no known_hosts, no prompts. Note that ssh also
 * offers `<keyPath>-cert.pub` if it exists, so keep certificates there.
 */
export function trySsh(opts: SshAttempt): Promise<SshResult> {
  const args = [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'ConnectTimeout=10',
    '-o', `CertificateFile=${opts.certPath}`,
    '-i', opts.keyPath,
    '-p', String(opts.port),
    `${opts.user}@127.0.0.1`,
    ...(opts.command === undefined ? [] : [opts.command]),
  ];
  return new Promise((resolve, reject) => {
    // stdin is /dev/null: ssh must not wait for input, and no terminal means no pty request.
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
