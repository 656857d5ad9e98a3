// Host trust end to end: a real sshd presenting a host certificate signed by
// the host CA, and the real ssh started by `jit-ssh ssh` (and by plain ssh with
// the `jit-ssh config` snippet) checking it against $JIT_SSH_HOME/known_hosts,
// with no known_hosts entry for the host beforehand and no question asked; and
// hosts whose certificate is expired, for another name, or from another CA refused.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, HELPER_BIN, cleanEnv, run, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const USER = os.userInfo().username;
const POLICY = `roles:
  shell:
    description: a shell on the test host
    principals: [${USER}]
    requesters: [group:engineering]
    max_duration: 1h
    auto_approve:
      - groups: [engineering]
        max_duration: 1h
`;

/** ssh with no config of its own, and never a question: a prompt would fail the connection. */
const sshOpts = (port: number) => ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', '-o', 'ConnectTimeout=10', '-p', String(port)];

describe('host certificates: jit-ssh ssh trusts the host CA, not the first key it sees', () => {
  const dir = tempDir();
  const home = path.join(dir, 'home');
  const dataDir = path.join(dir, 'data');
  let server: ServerProcess;
  let serverEnv: NodeJS.ProcessEnv;
  const sshds: Sshd[] = [];

  const helperEnv = (extra: Record<string, string> = {}) => cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url, SSH_AUTH_SOCK: '', HOME: dir, ...extra });
  const helper = (args: string[], extra?: Record<string, string>) => run(HELPER_BIN, args, helperEnv(extra));

  /** A new host key pair in the test directory. */
  const hostKey = (name: string) => {
    const key = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key], { stdio: 'ignore' });
    return key;
  };
  /** An sshd presenting `key`'s certificate `cert`, trusting the user CA. */
  const sshdWith = async (key: string, cert: string) => {
    const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    const s = await startSshd({ caKeys: caPub.trim().split('\n').filter((l) => !l.startsWith('#')), hostKey: key, hostCertificate: cert }, { stopAfter: false });
    sshds.push(s);
    return s;
  };
  const hostSign = async (key: string, names: string, extra: string[] = []) => {
    const r = await run(CA_BIN, ['host', 'sign', `${key}.pub`, '--name', names, ...extra], serverEnv);
    assert.equal(r.code, 0, r.stderr);
    return `${key}-cert.pub`;
  };

  before(async () => {
    serverEnv = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14' });
    writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
    const add = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'engineering', '--password-stdin'], serverEnv, 'alice-password-long');
    assert.equal(add.code, 0, add.stderr);
    server = await startServerProcess(serverEnv, 60_000, { stopAfter: false });
    const totp = execFileSync('oathtool', ['--totp', '-b', secretOf(add.stdout.trim())], { encoding: 'utf8' }).trim();
    const login = await run(HELPER_BIN, ['login', '--user', 'alice', '--password-stdin', '--totp', totp], helperEnv(), 'alice-password-long\n');
    assert.equal(login.code, 0, login.stderr);
  });
  after(async () => {
    for (const s of sshds) await s.stop();
    await server?.stop();
  });

  test('ok: login writes $JIT_SSH_HOME/known_hosts with an @cert-authority line for each host CA key the server lists', async () => {
    const served = (await (await fetch(`${server.url}/v1/host-ca.pub`)).text()).split('\n').filter((l) => /^ssh-|^ecdsa-/.test(l));
    assert.ok(served.length >= 1);
    const file = readFileSync(path.join(home, 'known_hosts'), 'utf8');
    const lines = file.split('\n').filter((l) => l.startsWith('@'));
    assert.deepEqual(
      lines.map((l) => l.split(' ').slice(0, 4).join(' ')),
      served.map((k) => `@cert-authority * ${k.split(' ').slice(0, 2).join(' ')}`),
    );
    // ssh-keygen reads it as a known_hosts file.
    const found = execFileSync('ssh-keygen', ['-F', 'anything.example.com', '-f', path.join(home, 'known_hosts')], { encoding: 'utf8' });
    assert.match(found, /@cert-authority \* ssh-ed25519 /);
  });

  test('ok: a host certificate from the host CA → jit-ssh ssh connects with no prompt and no prior known_hosts entry', async () => {
    const key = hostKey('host-good');
    const sshd = await sshdWith(key, await hostSign(key, '127.0.0.1,web-1.test'));
    const before = readFileSync(path.join(home, 'known_hosts'), 'utf8');
    const r = await helper(['ssh', 'shell', '--for', '10m', '--reason', 'check host certificates', '--', ...sshOpts(sshd.port), '127.0.0.1', 'echo', 'inside']);
    assert.equal(r.code, 0, r.stderr + sshd.log());
    assert.equal(r.stdout, 'inside\n');
    assert.doesNotMatch(r.stderr, /authenticity|Permanently added|WARNING/);
    // By another of its names too (HostKeyAlias: the name checked against the certificate's principals).
    const alias = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '-o', 'HostKeyAlias=web-1.test', '127.0.0.1', 'echo', 'again']);
    assert.equal(alias.code, 0, alias.stderr);
    assert.equal(alias.stdout, 'again\n');
    // ssh learnt nothing: the host is trusted through the CA line alone.
    assert.equal(readFileSync(path.join(home, 'known_hosts'), 'utf8'), before);
  });

  test('ok: the lines `jit-ssh config` prints let plain ssh do the same', async () => {
    const key = hostKey('host-config');
    const sshd = await sshdWith(key, await hostSign(key, '127.0.0.1'));
    const cfg = await helper(['config']);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.match(cfg.stdout, new RegExp(`^Host \\*\\n    UserKnownHostsFile ${path.join(home, 'known_hosts')}\\n    StrictHostKeyChecking yes\\n    IdentityFile ${path.join(home, 'keys', 'shell')}\\n    CertificateFile ${path.join(home, 'keys', 'shell-cert.pub')}$`, 'm'));
    const file = path.join(dir, 'ssh_config');
    writeFileSync(file, cfg.stdout);
    const r = await plainSsh(['-F', file, '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', '-p', String(sshd.port), '-l', USER, '127.0.0.1', 'echo', 'plain']);
    assert.equal(r.code, 0, r.stderr + sshd.log());
    assert.equal(r.stdout, 'plain\n');
  });

  const refused = async (sshd: Sshd, alias?: string) => {
    const r = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), ...(alias ? ['-o', `HostKeyAlias=${alias}`] : []), '127.0.0.1', 'echo', 'inside']);
    assert.notEqual(r.code, 0, 'ssh must refuse the host');
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /Host key verification failed/);
    return r.stderr;
  };

  test('fail: a host whose certificate has expired is refused', async () => {
    const key = hostKey('host-expired');
    // Signed by the very host CA key, for the right name, but over long ago.
    execFileSync('ssh-keygen', ['-q', '-s', path.join(dataDir, 'host_ca_key'), '-h', '-I', 'expired', '-n', '127.0.0.1', '-V', '20200101:20200201', `${key}.pub`], { stdio: 'ignore' });
    const sshd = await sshdWith(key, `${key}-cert.pub`);
    await refused(sshd);
  });

  test('fail: a host whose certificate is for another name is refused', async () => {
    const key = hostKey('host-other-name');
    const sshd = await sshdWith(key, await hostSign(key, 'db-1.test'));
    await refused(sshd);
    // Its own name passes: the refusal is the name's.
    const ok = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '-o', 'HostKeyAlias=db-1.test', '127.0.0.1', 'true']);
    assert.equal(ok.code, 0, ok.stderr);
    await refused(sshd, 'web-1.test');
  });

  test('fail: a host whose certificate is signed by another CA (here, the user CA key) is refused', async () => {
    const other = hostKey('other-ca');
    for (const [name, ca] of [['host-other-ca', other], ['host-user-ca', path.join(dataDir, 'ca_key')]] as const) {
      const key = hostKey(name);
      execFileSync('ssh-keygen', ['-q', '-s', ca, '-h', '-I', name, '-n', '127.0.0.1', '-V', '-5m:+1h', `${key}.pub`], { stdio: 'ignore' });
      await refused(await sshdWith(key, `${key}-cert.pub`));
    }
  });

  test('fail: a host CA key named retired by the server is written @revoked, and its certificates are refused', async () => {
    // The known_hosts file as a rotation's last step makes it: the current key trusted, the old one retired.
    const retired = hostKey('retired-host-ca');
    const file = path.join(home, 'known_hosts');
    const current = readFileSync(file, 'utf8');
    const oldKey = readFileSync(`${retired}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const key = hostKey('host-retired-ca');
    execFileSync('ssh-keygen', ['-q', '-s', retired, '-h', '-I', 'old', '-n', '127.0.0.1', '-V', '-5m:+1h', `${key}.pub`], { stdio: 'ignore' });
    const sshd = await sshdWith(key, `${key}-cert.pub`);
    // Trusted, as a copy from before the rotation would have it: the host gets in.
    writeFileSync(file, current + `@cert-authority * ${oldKey}\n`);
    const before = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '127.0.0.1', 'true']);
    assert.equal(before.code, 0, before.stderr);
    // The same with the key named retired: @revoked wins over the @cert-authority line.
    writeFileSync(file, current + `@cert-authority * ${oldKey}\n@revoked * ${oldKey}\n`);
    const r = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '127.0.0.1', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /REVOKED/);
    writeFileSync(file, current);
  });

  test('ok: an ssh option of the caller for host checking is left alone (no jit-ssh known_hosts forced over it)', async () => {
    const key = hostKey('host-own-choice');
    const other = hostKey('other-ca-2');
    execFileSync('ssh-keygen', ['-q', '-s', other, '-h', '-I', 'x', '-n', '127.0.0.1', '-V', '-5m:+1h', `${key}.pub`], { stdio: 'ignore' });
    const sshd = await sshdWith(key, `${key}-cert.pub`);
    const own = path.join(dir, 'own_known_hosts');
    writeFileSync(own, `@cert-authority * ${readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const r = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '-o', `UserKnownHostsFile=${own}`, '127.0.0.1', 'echo', 'mine']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'mine\n');
  });

  test('ok: a missing known_hosts file is fetched again by jit-ssh ssh; JIT_SSH_HOST_PATTERNS sets the patterns', async () => {
    const file = path.join(home, 'known_hosts');
    execFileSync('rm', ['-f', file]);
    const key = hostKey('host-refetch');
    const sshd = await sshdWith(key, await hostSign(key, '127.0.0.1'));
    const r = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '127.0.0.1', 'echo', 'back'], { JIT_SSH_HOST_PATTERNS: '127.0.0.1,[127.0.0.1]:*' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(file, 'utf8'), /^@cert-authority 127\.0\.0\.1,\[127\.0\.0\.1\]:\* ssh-ed25519 /m);
    // Patterns that leave the host out: it is not trusted.
    const out = await helper(['ssh', 'shell', '--', ...sshOpts(sshd.port), '127.0.0.1', 'true'], { JIT_SSH_HOST_PATTERNS: '*.example.com' });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /Host key verification failed/);
    const bad = await helper(['ssh', 'shell', '--', '127.0.0.1'], { JIT_SSH_HOST_PATTERNS: '* evil' });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /JIT_SSH_HOST_PATTERNS/);
  });
});

function plainSsh(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
