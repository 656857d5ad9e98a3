// What could outlive a certificate behind the session guard, tried against a
// real sshd: processes that leave the login's session (setsid, nohup, a double
// fork, tmux), sftp through internal-sftp, forwarding and multiplexed sessions
// on a connection that ran a session, certificates revoked by the installed KRL
// mid-session, and, as the one documented limit, a connection that never opens
// a session (ssh -N) when the role grants forwarding.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { isRunning, issueFor, killIfRunning, numberAfter, openSsh, SSH_OPTIONS, USER, waitUntil } from '../helpers/guard-ssh.js';
import { caSigner, tempDir, userKey, type UserKeyFile } from '../helpers/keys.js';
import { freePort } from '../helpers/net.js';
import { ROOT } from '../helpers/process.js';
import { useSshd } from '../helpers/sshd.js';

const GUARD = path.join(ROOT, 'src', 'server-side', 'jit-ssh-session-guard');
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const CHECK_SECONDS = 2;
const dir = tempDir();
const ca = caSigner('ed25519');
const caPub = path.join(dir, 'ca.pub');
writeFileSync(caPub, publicKeyLine(ca) + '\n');
const krl = path.join(dir, 'revoked.krl');
execFileSync('ssh-keygen', ['-q', '-k', '-f', krl, '-s', caPub, '/dev/null']);

const sshd = useSshd({
  caKeys: [publicKeyLine(ca)],
  extraConfig: [
    'ExposeAuthInfo yes',
    `ForceCommand ${GUARD} --warn 0 --grace 1s --krl ${krl} --krl-interval ${CHECK_SECONDS}s`,
    // sshd runs internal-sftp in its own process, which a ForceCommand replaces: the guard runs sftp-server for it.
    'Subsystem sftp internal-sftp',
    `Subsystem sftp-program ${SFTP_SERVER}`,
  ],
});

let keys = 0;
const freshKey = (): UserKeyFile => userKey(dir, 'ed25519', undefined, `evasion-user${++keys}`);

/** Installs a KRL revoking `serial` the way jit-ssh-refresh does: written aside, then renamed over the old one. */
function revoke(serial: bigint): void {
  const spec = path.join(dir, `spec-${serial}`);
  writeFileSync(spec, `serial: ${serial}\n`);
  const next = `${krl}.new`;
  execFileSync('ssh-keygen', ['-q', '-k', '-f', next, '-s', caPub, spec]);
  renameSync(next, krl);
}

// A TCP echo server that forwarded connections reach.
let echoPort = 0;
const echo = net.createServer((c) => c.pipe(c));
before(async () => {
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
});
after(() => new Promise<void>((r) => echo.close(() => r())));

/** Connects to 127.0.0.1:port; resolves with a socket that answered `ping` with `ping`, or null if it did not within 3 s. */
async function echoThrough(port: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const fail = () => {
      s.destroy();
      resolve(null);
    };
    const timer = setTimeout(fail, 3_000);
    s.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
    s.on('data', (d) => {
      got += d;
      if (got === 'ping') {
        clearTimeout(timer);
        s.removeAllListeners('close');
        s.removeAllListeners('data');
        resolve(s);
      }
    });
    s.write('ping');
  });
}

/** Resolves once the socket is closed (true), or after `ms` with it still open (false). */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.on('error', () => {});
    s.resume();
  });
}

/** Waits until a local listener accepts connections (ssh's -L sets it up after the login). */
async function listening(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) assert.fail(`nothing listens on ${port}`);
    await sleep(100);
  }
}

test("ok: processes that left the session (setsid, nohup, a double fork, tmux) are ended at the certificate's end", async () => {
  const key = freshKey();
  const { validBefore } = await issueFor(ca, key, 8);
  const tmuxSocket = path.join(dir, 'tmux.sock');
  // Each prints its PID, then becomes a sleep with no tie to the session's output. The login then
  // exits at once: only the guard's watchdog is left to end them.
  const command = [
    `setsid sh -c 'echo setsid=$$; exec sleep 300 >/dev/null 2>&1' </dev/null &`,
    `nohup sh -c 'echo nohup=$$; exec sleep 301 >/dev/null 2>&1' </dev/null 2>/dev/null &`,
    `(setsid sh -c 'echo daemon=$$; exec sleep 302 >/dev/null 2>&1' </dev/null &) &`,
    `tmux -S ${tmuxSocket} -f /dev/null new-session -d 'exec sleep 303' && echo tmux=$(tmux -S ${tmuxSocket} list-panes -F '#{pane_pid}')`,
    'sleep 1; echo ready',
  ].join('\n');
  const res = await openSsh(sshd().port, key, { command }).done;
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /ready/);
  const pids = Object.fromEntries(['setsid', 'nohup', 'daemon', 'tmux'].map((n) => [n, numberAfter(n, res.stdout, res.stderr)]));
  try {
    for (const [name, pid] of Object.entries(pids)) assert.ok(isRunning(pid), `${name} (${pid}) runs after the login ended`);
    const left = validBefore * 1000 - Date.now();
    assert.ok(left > 1000, 'the login ended well before the certificate');
    await sleep(left);
    await waitUntil(
      () => Object.values(pids).every((pid) => !isRunning(pid)),
      () => `still running ${Date.now() - validBefore * 1000} ms after the certificate's end: ${Object.entries(pids).filter(([, pid]) => isRunning(pid)).map(([n, pid]) => `${n}=${pid}`).join(' ')}`,
      5_000,
    );
  } finally {
    for (const pid of Object.values(pids)) killIfRunning(pid);
  }
});

for (const [name, subsystem] of [
  ['internal-sftp', 'sftp'],
  ['an sftp-server program', 'sftp-program'],
] as const) {
  test(`ok: sftp through ${name} works under the guard and is ended at the certificate's end`, async () => {
    const key = freshKey();
    const { validBefore } = await issueFor(ca, key, 6);
    const s = openSsh(sshd().port, key, { program: 'sftp', stdin: true, args: ['-q', '-s', subsystem] });
    s.stdin.write('pwd\n');
    await s.waitFor(/Remote working directory: \//);
    // sftp reads its next command before it notices anything; the ssh it runs carries the connection.
    const transport = Number(execFileSync('ps', ['-o', 'pid=', '--ppid', String(s.pid)], { encoding: 'utf8' }).trim());
    assert.ok(isRunning(transport), 'sftp\'s ssh runs');
    await waitUntil(() => !isRunning(transport), () => 'the sftp connection outlived the certificate', validBefore * 1000 - Date.now() + 5_000);
    assert.ok(Date.now() >= validBefore * 1000, `ended ${validBefore * 1000 - Date.now()} ms before the certificate did`);
    s.stdin.write('ls -1 /\n'); // pwd is answered from sftp's memory; ls asks the server
    s.stdin.end();
    const res = await s.done;
    assert.doesNotMatch(res.stdout, /^\/tmp$/m, 'the server listed / after the certificate ended');
  });
}

test('ok: a session is ended within the check interval once the installed KRL revokes its certificate', async () => {
  const key = freshKey();
  const { serial } = await issueFor(ca, key, 3600);
  const s = openSsh(sshd().port, key, { command: 'echo ready; sleep 300; echo survived' });
  await s.waitFor(/ready/);
  await sleep(CHECK_SECONDS * 1000 + 500); // a check or two pass while nothing is revoked
  assert.equal(s.exited(), false, `the session ended before any revocation:\n${s.stderr()}`);
  revoke(serial);
  const revokedAt = Date.now();
  const res = await s.done;
  assert.ok(res.endedAt - revokedAt <= CHECK_SECONDS * 1000 + 3_000, `ended ${res.endedAt - revokedAt} ms after the revocation`);
  assert.doesNotMatch(res.stdout, /survived/);
  assert.match(res.stderr, /jit-ssh: your certificate has been revoked: closing this session\./);
});

test("fail: a certificate's force-command (a role's force_command) runs, not the command asked for nor a shell", async () => {
  // sshd_config's ForceCommand (the guard) overrides a certificate's: the guard must run the certificate's itself.
  const key = freshKey();
  await issueFor(ca, key, 3600, { criticalOptions: { 'force-command': 'echo forced; echo "asked=$SSH_ORIGINAL_COMMAND"' } });
  const asked = await openSsh(sshd().port, key, { command: 'echo mine' }).done;
  assert.deepEqual([asked.code, asked.stdout], [0, 'forced\nasked=echo mine\n'], asked.stderr);
  const shell = openSsh(sshd().port, key, { tty: true });
  shell.stdin.write('echo typed-$((40+2))\n');
  const res = await shell.done;
  assert.match(res.stdout, /forced/);
  assert.doesNotMatch(res.stdout, /typed-42/);
  // sftp too: the certificate says what runs.
  const sftp = openSsh(sshd().port, key, { program: 'sftp', stdin: true, args: ['-q'] });
  sftp.stdin.end('pwd\n');
  assert.doesNotMatch((await sftp.done).stdout, /Remote working directory/);
});

/** A ControlMaster connection (-N: it opens no session itself) and sessions multiplexed over it. */
function master(key: UserKeyFile, extra: string[] = []) {
  const control = path.join(dir, `mux-${keys}`);
  const m = openSsh(sshd().port, key, { args: ['-N', '-o', 'ControlMaster=yes', '-o', `ControlPath=${control}`, ...extra] });
  const mux = (command: string) => openSsh(sshd().port, key, { command, args: ['-o', 'ControlMaster=no', '-o', `ControlPath=${control}`] }).done;
  const ready = () => waitUntil(() => spawnSync('ssh', [...SSH_OPTIONS, '-o', `ControlPath=${control}`, '-O', 'check', `${USER}@127.0.0.1`]).status === 0, () => `the master never came up:\n${m.stderr()}`, 10_000);
  const stop = () => spawnSync('ssh', [...SSH_OPTIONS, '-o', `ControlPath=${control}`, '-O', 'exit', `${USER}@127.0.0.1`]);
  return { m, mux, ready, stop };
}

test('fail: a session multiplexed over an open connection is refused once the KRL revokes the certificate', async () => {
  const key = freshKey();
  const { serial } = await issueFor(ca, key, 3600);
  const { m, mux, ready, stop } = master(key);
  try {
    await ready();
    const before = await mux('echo hi');
    assert.deepEqual([before.code, before.stdout], [0, 'hi\n'], before.stderr);
    revoke(serial);
    // sshd checked the certificate once, when the connection logged in; the guard checks each session.
    const afterRevoke = await mux('echo hi');
    assert.equal(afterRevoke.code, 1);
    assert.equal(afterRevoke.stdout, '');
    assert.match(afterRevoke.stderr, /jit-ssh-session-guard: your certificate has been revoked: request access again/);
  } finally {
    stop();
    await m.done;
  }
});

test('fail: with the default extensions (permit-pty only) ssh -N forwards nothing, local or remote', async () => {
  const key = freshKey();
  await issueFor(ca, key, 3600); // permit-pty only: what a role without `certificate.extensions` gets
  const remote = await openSsh(sshd().port, key, { args: ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', `0:127.0.0.1:${echoPort}`] }).done;
  assert.notEqual(remote.code, 0);
  assert.match(remote.stderr, /remote port forwarding failed/);

  const local = await freePort();
  const logFrom = sshd().log().length;
  const { m, ready, stop } = master(key, ['-L', `${local}:127.0.0.1:${echoPort}`]);
  try {
    await ready();
    assert.equal(await echoThrough(local), null, 'a connection through -L reached the echo server');
    await sshd().waitForLog(/refused local port forward|administratively prohibited|port forwarding is disabled/i, logFrom);
  } finally {
    stop();
    await m.done;
  }
});

test('ok: forwarding on a connection that ran a session ends with the certificate, even when the master persists', async () => {
  const key = freshKey();
  const { validBefore } = await issueFor(ca, key, 8, { extensions: ['permit-pty', 'permit-port-forwarding'] });
  const local = await freePort();
  const control = path.join(dir, 'persist');
  // The session (`true`) ends at once; ControlPersist keeps the connection and its forward in the background.
  const first = openSsh(sshd().port, key, {
    command: 'true',
    args: ['-o', 'ControlMaster=yes', '-o', `ControlPath=${control}`, '-o', 'ControlPersist=yes', '-L', `${local}:127.0.0.1:${echoPort}`],
  });
  assert.equal(await first.exit, 0, first.stderr());
  const check = () => spawnSync('ssh', [...SSH_OPTIONS, '-o', `ControlPath=${control}`, '-O', 'check', `${USER}@127.0.0.1`]).status === 0;
  try {
    assert.ok(check(), 'the master persists');
    const open = await echoThrough(local);
    assert.ok(open, 'the forward works while the certificate is valid');
    const left = validBefore * 1000 - Date.now();
    assert.ok(await closedWithin(open, left + 5_000), 'a forwarded connection open at the certificate\'s end stayed open');
    assert.ok(Date.now() >= validBefore * 1000, 'the forwarded connection was closed before the certificate ended');
    await waitUntil(() => !check(), () => 'the master connection outlived the certificate', 5_000);
    assert.equal(await echoThrough(local), null, 'the forward still works after the certificate ended');
  } finally {
    spawnSync('ssh', [...SSH_OPTIONS, '-o', `ControlPath=${control}`, '-O', 'exit', `${USER}@127.0.0.1`]);
  }
});

test("limit: a connection that opens no session (ssh -N) keeps the forwarding a role grants past the certificate's end", async () => {
  const key = freshKey();
  const { validBefore } = await issueFor(ca, key, 4, { extensions: ['permit-port-forwarding'] });
  const local = await freePort();
  const s = openSsh(sshd().port, key, { args: ['-N', '-L', `${local}:127.0.0.1:${echoPort}`] });
  try {
    await listening(local);
    await sleep(validBefore * 1000 - Date.now() + 2_000);
    // sshd never runs a ForceCommand for it: README and docs/security.md say so, and roles get no forwarding unless they ask.
    const open = await echoThrough(local);
    assert.ok(open, 'expected the forward of an ssh -N connection to outlive the certificate (sshd runs no ForceCommand for it)');
    open.destroy();
  } finally {
    killIfRunning(s.pid);
    await s.done;
  }
});
