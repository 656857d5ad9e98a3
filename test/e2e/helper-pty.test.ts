// The interactive side of `jit-ssh`, in a real pseudo-terminal (tmux): the
// password prompt does not echo, and `--wait` draws a live status line that
// Ctrl-C turns into an offer to cancel the request.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, HELPER_BIN, cleanEnv, run, startServerProcess } from '../helpers/process.js';

const socket = `jit-ssh-test-${randomBytes(4).toString('hex')}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
after(() => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
});

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `args` in a fresh tmux window with `env`; the pane stays open after the command ends. */
function openPane(name: string, env: Record<string, string>, args: string[]): void {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join(' ');
  const command = `env ${vars} ${quote(process.execPath)} ${args.map(quote).join(' ')}; echo "[exit $?]"; sleep 60`;
  try {
    tmux('new-window', '-d', '-n', name, command);
  } catch {
    tmux('new-session', '-d', '-s', 'main', '-n', name, '-x', '200', '-y', '40', command);
  }
}

const screen = (name: string) => tmux('capture-pane', '-p', '-t', `main:${name}`);

async function waitFor(name: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = screen(name);
    if (pattern.test(text)) return text;
    if (Date.now() > end) assert.fail(`the terminal never showed ${pattern}; it shows:\n${text}`);
    await sleep(100);
  }
}

test('ok: no-echo password prompt, live wait line, Ctrl-C offers to cancel', async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'policy.yaml'), `roles:\n  shell:\n    principals: [deploy]\n    requesters: [group:engineering]\n    approval: {approvers: [group:admins], required: 1}\n`);
  const serverEnv = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14' });
  const add = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'engineering', '--password-stdin'], serverEnv, 'alice-password-long');
  assert.equal(add.code, 0, add.stderr);
  const server = await startServerProcess(serverEnv);
  try {
    const env = { JIT_SSH_HOME: path.join(dir, 'home'), JIT_SSH_SERVER: server.url, JIT_SSH_POLL_INTERVAL: '1s', HOME: dir, PATH: process.env['PATH'] ?? '/usr/bin:/bin' };

    openPane('login', env, [HELPER_BIN, 'login', '--user', 'alice']);
    await waitFor('login', /Password for alice at http:\/\/127\.0\.0\.1:\d+:/);
    tmux('send-keys', '-t', 'main:login', '-l', 'alice-password-long');
    tmux('send-keys', '-t', 'main:login', 'Enter');
    await waitFor('login', /TOTP code:/);
    assert.ok(!screen('login').includes('alice-password-long'), 'the password was echoed');
    tmux('send-keys', '-t', 'main:login', '-l', execFileSync('oathtool', ['--totp', '-b', secretOf(add.stdout.trim())], { encoding: 'utf8' }).trim());
    tmux('send-keys', '-t', 'main:login', 'Enter');
    await waitFor('login', /logged in to .* as alice until .*\n\[exit 0\]/);

    openPane('wait', env, [HELPER_BIN, 'request', 'shell', '--for', '30m', '--reason', 'watching the wait line', '--wait']);
    const first = await waitFor('wait', /waiting 0:0\d — needs 1 approval from group:admins \(request (\w+); Ctrl-C to stop\)/);
    const id = /\(request (\w+);/.exec(first)![1]!;
    assert.match(first, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting/);
    await waitFor('wait', /waiting 0:0[2-9]/); // the elapsed time moves
    tmux('send-keys', '-t', 'main:wait', 'C-c');
    await waitFor('wait', new RegExp(`Cancel request ${id}\\? \\[y/N\\]`));
    tmux('send-keys', '-t', 'main:wait', 'y', 'Enter');
    await waitFor('wait', new RegExp(`request ${id} cancelled\\n\\[exit 130\\]`));

    const status = await run(HELPER_BIN, ['requests', '--json'], cleanEnv(env));
    assert.equal(JSON.parse(status.stdout).requests.find((r: { id: string }) => r.id === id).status, 'cancelled');
  } finally {
    await server.stop();
  }
});
