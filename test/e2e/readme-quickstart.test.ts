// The README's "Try it" commands, exactly as written, typed into a real
// terminal (tmux) in a fresh directory, answering the prompts a newcomer
// answers — from `npm start` to a shell on a local sshd.
// `npm` and `npx` are shims that run this checkout's executables, so the test
// needs no network; everything else is the README's text.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../helpers/keys.js';
import { ROOT } from '../helpers/process.js';

const socket = `jit-ssh-readme-${randomBytes(4).toString('hex')}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', 'main');
const type = (text: string) => {
  tmux('send-keys', '-t', 'main', '-l', text);
  tmux('send-keys', '-t', 'main', 'Enter');
};

async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > end) assert.fail(`${what} did not happen; the terminal shows:\n${screen().split('\n').slice(-40).join('\n')}`);
    await sleep(150);
  }
}

const prompts = () => (screen().match(/^READY> /gm) ?? []).length;

function quickstart(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- try-it:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- try-it:end -->/.exec(readme);
  assert.ok(block, 'README.md has no try-it block');
  return block[1]!.split('\n').filter((l) => l.trim() !== '');
}

test('ok: the README quick start gets a newcomer from npm start to a shell in under ten commands', async (t) => {
  const port8080Free = await fetch('http://127.0.0.1:8080/healthz').then(() => false, () => true);
  if (!port8080Free) return t.skip('something already listens on 127.0.0.1:8080, which the README uses');
  const commands = quickstart();
  assert.ok(commands.length < 10, `${commands.length} commands`);

  const dir = tempDir();
  const bin = path.join(dir, 'shims');
  execFileSync('mkdir', ['-p', bin, path.join(dir, 'clone'), path.join(dir, 'home')]);
  const clone = path.join(dir, 'clone');
  symlinkSync(path.join(ROOT, 'examples'), path.join(clone, 'examples'));
  writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\ncase "$1" in\n  install) echo "npm install: done";;\n  start) exec '${process.execPath}' '${ROOT}/bin/jit-ssh-ca.js' serve;;\n  *) echo "unexpected: npm $*" >&2; exit 1;;\nesac\n`);
  writeFileSync(path.join(bin, 'npx'), `#!/bin/sh\nname=$1; shift\nexec '${process.execPath}' '${ROOT}/bin/'"$name".js "$@"\n`);
  chmodSync(path.join(bin, 'npm'), 0o755);
  chmodSync(path.join(bin, 'npx'), 0o755);
  const env = [`HOME=${path.join(dir, 'home')}`, `PATH=${bin}:${process.env['PATH']}`, 'TERM=xterm', 'PS1=READY> ', 'JIT_SSH_PASSWORD_COST=14'];
  tmux('new-session', '-d', '-s', 'main', '-x', '250', '-y', '50', '-c', clone, 'env', '-i', ...env, 'bash', '--norc', '--noprofile', '-i');
  // What the demo started, to stop it even when the test fails half-way (the
  // server treats SIGHUP as "reload the policy", so closing the terminal does not stop it).
  const pids = new Set<number>();
  const remember = () => {
    for (const f of ['demo-sshd.pid', 'data/db.lock']) {
      const file = path.join(clone, f);
      if (existsSync(file)) pids.add(Number(readFileSync(file, 'utf8').trim()));
    }
  };
  after(() => {
    remember();
    for (const pid of pids) {
      try {
        process.kill(pid);
      } catch {
        // already stopped
      }
    }
    try {
      tmux('kill-server');
    } catch {
      // gone
    }
  });
  await until('the shell prompt', () => prompts() >= 1);

  const password = 'a long demo password';
  let secret = '';
  for (const command of commands) {
    const before = prompts();
    type(command);
    if (command.includes('npm start &')) {
      await until('the CA answering on :8080', () => fetch('http://127.0.0.1:8080/readyz').then((r) => r.ok, () => false));
    } else if (command.includes('user add')) {
      await until('the password prompt', () => /New password:/.test(screen()));
      type(password);
      await until('the repeat prompt', () => /Repeat it:/.test(screen()));
      type(password);
      secret = (await until('the TOTP URI', () => /otpauth:\/\/totp\/jit-ssh:[^?]+\?secret=([A-Z2-7]+)/.exec(screen())))[1]!;
    } else if (command.includes('jit-ssh login')) {
      await until('the password prompt', () => /Password for .* at http:\/\/127\.0\.0\.1:8080:/.test(screen()));
      type(password);
      await until('the TOTP prompt', () => /TOTP code:/.test(screen()));
      type(execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim());
    } else if (command.includes('jit-ssh ssh')) {
      await until('the host key question', () => /continue connecting \(yes\/no/.test(screen()));
      type('yes');
      await sleep(1500); // the remote shell starts
      type('echo JIT_OK_$((40 + 2))');
      await until('a command run in the remote shell', () => /^JIT_OK_42$/m.test(screen()));
      type('exit');
    }
    await until(`the prompt after: ${command}`, () => prompts() > before);
    remember();
  }
  assert.match(screen(), /approved: demo until/);
  // The README's way to stop the demo.
  type('kill $(cat demo-sshd.pid) %1');
  await until('the CA stopping', () => fetch('http://127.0.0.1:8080/healthz').then(() => false, () => true));
});
