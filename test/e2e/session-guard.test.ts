// The session guard (src/server-side/jit-ssh-session-guard) as sshd's
// ForceCommand with ExposeAuthInfo: a real sshd, the real ssh client, and
// certificates a few seconds long. sshd checks a certificate only at login;
// the guard ends the session when the certificate ends, warns before, and
// otherwise stays out of the way. The last tests run the guard directly, for
// what sshd cannot produce (an expired certificate, no certificate at all).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { isRunning, issueFor, numberAfter, openSsh, sessionProcesses, USER, waitUntil, waitUntilGone, type Session } from '../helpers/guard-ssh.js';
import { caSigner, tempDir, userKey, type UserKeyFile } from '../helpers/keys.js';
import { ROOT } from '../helpers/process.js';
import { useSshd } from '../helpers/sshd.js';

const GUARD = path.join(ROOT, 'src', 'server-side', 'jit-ssh-session-guard');
const WARN_SECONDS = 4;
const dir = tempDir();
// An empty KRL: nothing revoked (test/e2e/session-guard-evasion.test.ts revokes mid-session).
const KRL = path.join(dir, 'revoked.krl');
execFileSync('ssh-keygen', ['-q', '-k', '-f', KRL, '/dev/null']);
const ca = caSigner('ed25519');
const sshd = useSshd({
  caKeys: [publicKeyLine(ca)],
  extraConfig: ['ExposeAuthInfo yes', `ForceCommand ${GUARD} --warn ${WARN_SECONDS}s --grace 2s --krl ${KRL}`],
});

let keys = 0;
const freshKey = (): UserKeyFile => userKey(dir, 'ed25519', undefined, `guard-user${++keys}`);

/** A certificate for USER (with permit-pty) that ends `seconds` from now; returns its valid_before. */
const issue = async (key: UserKeyFile, seconds: number): Promise<number> => (await issueFor(ca, key, seconds)).validBefore;

const ssh = (key: UserKeyFile, opts: { command?: string; tty?: boolean }): Session => openSsh(sshd().port, key, opts);

test('ok: a command that would outlive the certificate is ended at its end, with its child, after a warning', async () => {
  const key = freshKey();
  const validBefore = await issue(key, 8);
  // A background child with its own output on /dev/null: only a signal to the session can end it.
  const s = ssh(key, { command: 'echo sid=$(ps -o sid= -p $$ | tr -d " "); sleep 300 >/dev/null 2>&1 & echo child=$!; sleep 300; echo survived' });
  await s.waitFor(/child=\d+\n/);
  const sid = numberAfter('sid', s.stdout(), s.stderr());
  const child = numberAfter('child', s.stdout(), s.stderr());
  assert.ok(isRunning(child), 'the child is running during the session');
  // The watchdog is there, in the session, while the command runs.
  assert.ok(sessionProcesses(sid).some((p) => p.includes('--watchdog')), sessionProcesses(sid).join('\n'));

  const res = await s.done;
  assert.ok(res.endedAt >= validBefore * 1000, `ended ${validBefore * 1000 - res.endedAt} ms before the certificate did`);
  assert.ok(res.endedAt <= validBefore * 1000 + 4_000, `ended ${res.endedAt - validBefore * 1000} ms after the certificate did`);
  assert.doesNotMatch(res.stdout, /survived/);
  // Without a terminal, the warning and the notice go to the session's stderr.
  assert.match(res.stderr, new RegExp(`jit-ssh: your access ends at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, in [1-${WARN_SECONDS}] s: this session will be closed then\\.`));
  assert.match(res.stderr, /jit-ssh: your access ended at .* UTC: closing this session\./);
  await waitUntilGone(sid);
  assert.ok(!isRunning(child), `child ${child} outlived the certificate`);
});

test('ok: an interactive session with a pty is warned on its terminal, then ended at the end', async () => {
  const key = freshKey();
  const validBefore = await issue(key, 8);
  const s = ssh(key, { tty: true });
  // Typed into the remote shell; it echoes the line, so look for what only running it prints. The
  // background job has a process group of its own (job control) and ignores SIGHUP: only a signal
  // to every process of the session ends it.
  s.stdin.write('tty; nohup sleep 301 </dev/null >/dev/null 2>&1 & echo job=$!; echo READY-$((40+2)); sleep 300; echo survived\n');
  await s.waitFor(/READY-42/);
  assert.match(s.stdout(), /\/dev\/pts\/\d+/, 'the shell has a terminal');
  const job = numberAfter('job', s.stdout(), s.stderr());
  assert.ok(isRunning(job), 'the background job is running during the session');
  const warnedAt = await s.waitFor(/jit-ssh: your access ends at .* UTC, in \d s: this session will be closed then\./);
  assert.ok(warnedAt < validBefore * 1000, 'warned before the end');
  assert.ok(warnedAt >= validBefore * 1000 - (WARN_SECONDS + 2) * 1000, `warned ${validBefore * 1000 - warnedAt} ms before the end, too early for --warn ${WARN_SECONDS}s`);
  const res = await s.done; // stdin is still open: only the guard ends this session
  assert.ok(res.endedAt >= validBefore * 1000, `ended ${validBefore * 1000 - res.endedAt} ms before the certificate did`);
  assert.ok(res.endedAt <= validBefore * 1000 + 4_000, `ended ${res.endedAt - validBefore * 1000} ms after the certificate did`);
  assert.match(res.stdout, /jit-ssh: your access ended at .* UTC: closing this session\./);
  assert.doesNotMatch(res.stdout, /^survived/m);
  s.stdin.end();
  await waitUntil(() => !isRunning(job), () => `background job ${job} outlived the certificate`);
});

test('ok: with a long certificate a short command runs normally: output, exit code, nothing else', async () => {
  const key = freshKey();
  await issue(key, 3600);
  const res = await ssh(key, { command: 'echo hi; exit 3' }).done;
  assert.equal(res.stdout, 'hi\n');
  assert.equal(res.code, 3);
  assert.equal(res.stderr, '');
});

test('ok: after a normal exit no watchdog or sleep of the session lingers', async () => {
  const key = freshKey();
  await issue(key, 3600);
  // The command lists its own session's processes: the watchdog must be among them while it runs.
  const res = await ssh(key, { command: `sid=$(ps -o sid= -p $$ | tr -d " "); echo sid=$sid; sleep 1; ps -e -o sid=,args= | awk -v s=$sid '$1 == s'` }).done;
  const sid = numberAfter('sid', res.stdout, res.stderr);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /--watchdog/);
  // With an hour left on the certificate, anything of the session still here was left behind.
  await waitUntilGone(sid);
});

// ---- The guard run directly, as sshd would run it, for what a real login cannot produce.

const caFile = path.join(dir, 'direct-ca');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'direct-ca', '-f', caFile]);

/** `publickey <cert>` as sshd writes it to $SSH_USER_AUTH, for a certificate made by ssh-keygen -s (validity `-V` or forever). */
function authInfo(name: string, validity?: string): string {
  const key = userKey(dir, 'ed25519', undefined, name);
  execFileSync('ssh-keygen', ['-q', '-s', caFile, '-I', name, '-n', USER, ...(validity ? ['-V', validity] : []), `${key.path}.pub`]);
  const file = path.join(dir, `${name}.auth`);
  const cert = execFileSync('cat', [`${key.path}-cert.pub`], { encoding: 'utf8' }).split(' ').slice(0, 2).join(' ');
  writeFileSync(file, `publickey ${cert}\n`);
  return file;
}

/** Runs the guard as sshd would; with the empty KRL unless `args` name one. */
function runGuard(env: Record<string, string | undefined>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  if (!args.includes('--krl')) args = ['--krl', KRL, ...args];
  const clean: NodeJS.ProcessEnv = { PATH: process.env['PATH'], SHELL: '/bin/sh', HOME: os.homedir() };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  const child = spawn(GUARD, args, { env: clean, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

// Prints the PID the command runs as, then how many watchdogs watch that PID.
const COUNT_WATCHDOGS = 'echo pid=$$; sleep 0.5; ps -e -o args= | grep -c -- "[-]-watchdog $$ "; echo hi';

test('ok: run directly, a current certificate gets a watchdog and the command keeps the guard\'s PID', async () => {
  const res = await runGuard({ SSH_USER_AUTH: authInfo('current', '-1m:+1h'), SSH_ORIGINAL_COMMAND: COUNT_WATCHDOGS });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `pid=${res.pid}\n1\nhi\n`);
  assert.equal(res.stderr, '');
});

for (const [name, auth] of [
  ['no $SSH_USER_AUTH (ExposeAuthInfo off)', () => undefined],
  ['a login with a plain key, not a certificate', () => {
    const file = path.join(dir, 'plain.auth');
    writeFileSync(file, `publickey ${userKey(dir, 'ed25519', undefined, 'plain').publicLine.split(' ').slice(0, 2).join(' ')}\n`);
    return file;
  }],
  ['a certificate valid forever, with --krl none', () => authInfo('forever')],
] as const) {
  test(`ok: run directly, ${name}: the command runs unchanged, without a watchdog`, async () => {
    const res = await runGuard({ SSH_USER_AUTH: auth(), SSH_ORIGINAL_COMMAND: COUNT_WATCHDOGS }, ['--krl', 'none']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `pid=${res.pid}\n0\nhi\n`);
    assert.equal(res.stderr, '');
  });
}

test('ok: run directly, a certificate valid forever still gets a watchdog for the KRL', async () => {
  const res = await runGuard({ SSH_USER_AUTH: authInfo('forever-krl'), SSH_ORIGINAL_COMMAND: COUNT_WATCHDOGS });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `pid=${res.pid}\n1\nhi\n`);
});

test('fail: run directly, a certificate the KRL revokes is refused with one line and the command does not run', async () => {
  const auth = authInfo('revoked', '-1m:+1h');
  const revoking = path.join(dir, 'revoking.krl');
  execFileSync('ssh-keygen', ['-q', '-k', '-f', revoking, path.join(dir, 'revoked.pub')]); // by its key: the certificate with it
  const res = await runGuard({ SSH_USER_AUTH: auth, SSH_ORIGINAL_COMMAND: 'echo ran' }, ['--krl', revoking]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, '');
  assert.equal(res.stderr, 'jit-ssh-session-guard: your certificate has been revoked: request access again\n');
});

for (const [name, krl] of [
  ['missing', () => path.join(dir, 'no-such.krl')],
  ['not a KRL', () => {
    const file = path.join(dir, 'junk.krl');
    writeFileSync(file, 'not a KRL\n');
    return file;
  }],
] as const) {
  test(`fail: run directly, a KRL that is ${name} refuses a certificate login (as sshd refuses every login) and lets others through`, async () => {
    const res = await runGuard({ SSH_USER_AUTH: authInfo(`krl-${name.replace(/ /g, '-')}`, '-1m:+1h'), SSH_ORIGINAL_COMMAND: 'echo ran' }, ['--krl', krl()]);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, `jit-ssh-session-guard: cannot check the login certificate against the revocation list ${krl()}\n`);
    const plain = await runGuard({ SSH_ORIGINAL_COMMAND: 'echo ran' }, ['--krl', krl()]);
    assert.equal(plain.stdout, 'ran\n');
  });
}

test('fail: run directly, an expired certificate is refused with one line and the command does not run', async () => {
  const res = await runGuard({ SSH_USER_AUTH: authInfo('expired', '-2h:-1h'), SSH_ORIGINAL_COMMAND: 'echo ran' });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, /^jit-ssh-session-guard: your certificate expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: request access again\n$/);
});

test('fail: run directly, a certificate whose validity cannot be read is refused, not let through', async () => {
  const file = path.join(dir, 'garbage.auth');
  writeFileSync(file, 'publickey ssh-ed25519-cert-v01@openssh.com AAAAC3NzaC1lZDI1NTE5AAAAIGFyYmFnZQ==\n');
  const res = await runGuard({ SSH_USER_AUTH: file, SSH_ORIGINAL_COMMAND: 'echo ran' });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, '');
  assert.match(res.stderr, /^jit-ssh-session-guard: cannot read the validity of the login certificate\n$/);
});

for (const [args, message] of [
  [['--warn', 'soon'], '--warn: not a duration: soon'],
  [['--krl-interval', '0'], '--krl-interval: not a duration over 0: 0'],
  [['--krl', 'revoked.krl'], '--krl: not an absolute path or none: revoked.krl'],
  [['--sftp-server', 'sftp-server'], '--sftp-server: not an absolute path: sftp-server'],
] as const) {
  test(`fail: run directly, a bad ${args[0]} is refused with one line`, async () => {
    const res = await runGuard({ SSH_ORIGINAL_COMMAND: 'echo ran' }, [...args]);
    assert.equal(res.code, 1);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, `jit-ssh-session-guard: ${message}\n`);
  });
}
