// `jit-ssh-ca server-setup` as an operator uses it: the printed script is run
// (here into temporary directories instead of /etc and /usr/local), and a real
// sshd configured with what it installed accepts a fresh certificate through
// the session guard.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, ROOT, run } from '../helpers/process.js';
import { openSsh } from '../helpers/guard-ssh.js';
import { startSshd, trySsh } from '../helpers/sshd.js';

const USER = os.userInfo().username;

function sh(file: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

describe('jit-ssh-ca server-setup', () => {
  const dir = tempDir();
  const dataDir = path.join(dir, 'data');
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, `roles:\n  shell:\n    principals: [${USER}]\n    requesters: [group:engineering]\n    max_duration: 1h\n    auto_approve:\n      - groups: [engineering]\n    certificate:\n      extensions: [permit-pty]\n`);
  const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_POLICY: policy });
  const target = (p: string) => path.join(dir, 'server', p);
  const layout = ['--dir', target('etc/ssh/jit-ssh'), '--sbin-dir', target('sbin'), '--libexec-dir', target('libexec'), '--sshd-config-dir', target('sshd_config.d'), '--cron-dir', target('cron.d')];
  let server: RunningServer;

  before(async () => {
    server = await startServer(loadServerConfig(env, { port: '0' }), silentLogger);
  });
  after(() => server?.close());

  test('ok: the printed script installs the CA keys, the first KRL, the refresher with its cron line, the guard and the sshd drop-in', async () => {
    const setup = await run(CA_BIN, ['server-setup', '--url', server.url, '--warn', '30s', '--krl-interval', '2s', ...layout], env);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stderr, /warning: --url is plain http/);
    assert.match(setup.stdout, /^#!\/bin\/sh\n/);
    assert.match(setup.stdout, new RegExp(`#   shell: ${USER}\\n`), 'the principals of the policy are listed');
    const script = path.join(dir, 'setup.sh');
    writeFileSync(script, setup.stdout);
    // Asynchronously: the CA answering the script's downloads runs in this process.
    const ran = await sh('sh', [script]);
    assert.equal(ran.status, 0, ran.stderr);
    assert.match(ran.stderr, /jit-ssh: installed\. Check and reload sshd/);

    // The first run replaced the embedded keys by the signed list they verify (the same keys, below a
    // header of its version and signing time) and noted what it accepted beside it.
    const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    const installed = readFileSync(target('etc/ssh/jit-ssh/ca.pub'), 'utf8');
    const header = /^# jit-ssh CA key list, version (\d+), signed at (\d+) [^\n]*\n/;
    assert.equal(installed.replace(header, ''), caPub.replace(header, ''));
    assert.equal(header.exec(installed)?.[1], header.exec(caPub)?.[1]);
    assert.match(readFileSync(target('etc/ssh/jit-ssh/jit-ssh-refresh.state'), 'utf8'), new RegExp(`^ca_version ${header.exec(caPub)![1]}$`, 'm'));
    assert.match(setup.stdout, /JIT_SSH_REFRESH_MAX_AGE/);
    assert.match(execFileSync('ssh-keygen', ['-Q', '-l', '-f', target('etc/ssh/jit-ssh/revoked.krl')], { encoding: 'utf8' }), /^# KRL version 1$/m);
    assert.equal(readFileSync(target('sbin/jit-ssh-refresh'), 'utf8'), readFileSync(path.join(ROOT, 'src/server-side/jit-ssh-refresh'), 'utf8'));
    assert.equal(readFileSync(target('libexec/jit-ssh-session-guard'), 'utf8'), readFileSync(path.join(ROOT, 'src/server-side/jit-ssh-session-guard'), 'utf8'));
    assert.equal(readFileSync(target('cron.d/jit-ssh'), 'utf8'), `*/5 * * * * root ${target('sbin/jit-ssh-refresh')} ${server.url} ${target('etc/ssh/jit-ssh')}\n`);
    const dropIn = readFileSync(target('sshd_config.d/50-jit-ssh.conf'), 'utf8').trim().split('\n');
    assert.deepEqual(dropIn, [
      '# Managed by jit-ssh-ca server-setup.',
      `TrustedUserCAKeys ${target('etc/ssh/jit-ssh/ca.pub')}`,
      `RevokedKeys ${target('etc/ssh/jit-ssh/revoked.krl')}`,
      'ExposeAuthInfo yes',
      `ForceCommand ${target('libexec/jit-ssh-session-guard')} --warn 30s --krl ${target('etc/ssh/jit-ssh/revoked.krl')} --krl-interval 2s`,
    ]);

    // A real sshd with exactly those lines (the test helper writes the CA and KRL lines itself).
    const sshd = await startSshd({
      caKeys: readFileSync(target('etc/ssh/jit-ssh/ca.pub'), 'utf8').trim().split('\n'),
      revokedKeys: target('etc/ssh/jit-ssh/revoked.krl'),
      extraConfig: dropIn.filter((l) => /^(ExposeAuthInfo|ForceCommand) /.test(l)),
    });
    const key = userKey(dir, 'ed25519');
    const now = Date.now();
    const cert = await server.issuer.issue({ username: 'alice', requestId: 'r1', role: 'shell', publicKey: key.publicLine, principals: [USER], validAfter: new Date(now - 60_000), validBefore: new Date(now + 600_000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: null });
    writeFileSync(`${key.path}-cert.pub`, cert.certificate + '\n');
    const r = await trySsh({ port: sshd.port, keyPath: key.path, certPath: `${key.path}-cert.pub`, user: USER, command: 'echo through-the-guard; exit 3' });
    assert.equal(r.stdout, 'through-the-guard\n', r.stderr);
    assert.equal(r.code, 3);

    // Run again: the refresher is quiet when nothing changed, and the installation is the same.
    const again = await sh(target('sbin/jit-ssh-refresh'), [server.url, target('etc/ssh/jit-ssh')]);
    assert.deepEqual([again.status, again.stdout, again.stderr], [0, '', '']);

    // Revoked at the CA while a session is open: the next refresh brings the KRL, and the guard ends the session.
    const open = openSsh(sshd.port, key, { command: 'echo ready; sleep 300; echo survived' });
    await open.waitFor(/ready/);
    await server.revocation.revoke({ serial: cert.serial }, 'laptop stolen', 'test');
    const refreshed = await sh(target('sbin/jit-ssh-refresh'), [server.url, target('etc/ssh/jit-ssh')]);
    assert.equal(refreshed.status, 0, refreshed.stderr);
    const refreshedAt = Date.now();
    const ended = await open.done;
    assert.ok(ended.endedAt - refreshedAt < 6_000, `the session ended ${ended.endedAt - refreshedAt} ms after the KRL arrived`);
    assert.match(ended.stderr, /jit-ssh: your certificate has been revoked: closing this session\./);
    assert.doesNotMatch(ended.stdout, /survived/);
  });

  test('ok: --no-session-guard leaves the guard out; --print prints one script', async () => {
    const setup = await run(CA_BIN, ['server-setup', '--url', 'https://ca.example.com/', '--no-session-guard'], env);
    assert.equal(setup.code, 0, setup.stderr);
    assert.equal(setup.stderr, '');
    assert.doesNotMatch(setup.stdout, /ForceCommand|session-guard/);
    assert.match(setup.stdout, /\nTrustedUserCAKeys \/etc\/ssh\/jit-ssh\/ca\.pub\nRevokedKeys \/etc\/ssh\/jit-ssh\/revoked\.krl\nJIT_SSH_EOF\n/);
    assert.match(setup.stdout, /'\/usr\/local\/sbin\/jit-ssh-refresh' 'https:\/\/ca\.example\.com' '\/etc\/ssh\/jit-ssh'/);
    const printed = await run(CA_BIN, ['server-setup', '--print', 'session-guard'], env);
    assert.equal(printed.stdout, readFileSync(path.join(ROOT, 'src/server-side/jit-ssh-session-guard'), 'utf8'));
  });

  test('ok: a retired CA key goes into the embedded ca.pub as a "# retired" line, so a new server never trusts it', async () => {
    const retired = userKey(dir, 'ed25519', undefined, 'retired-ca').publicLine;
    const trusted = path.join(dir, 'trusted-ca-keys');
    writeFileSync(trusted, `@retired ${retired}\n`);
    const setup = await run(CA_BIN, ['server-setup', '--url', 'https://ca.example.com', '--trusted-ca-keys', trusted], env);
    assert.equal(setup.code, 0, setup.stderr);
    const caPub = /cat >"\$tmp" <<'JIT_SSH_EOF'\n([^]*?)\nJIT_SSH_EOF\ninstall -m 0644 "\$tmp" '\/etc\/ssh\/jit-ssh\/ca\.pub'/.exec(setup.stdout);
    assert.ok(caPub, setup.stdout.slice(0, 2000));
    const lines = caPub[1]!.split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^ssh-ed25519 \S+ jit-ssh-ca$/);
    assert.equal(lines[1], `# retired ${retired.split(' ').slice(0, 2).join(' ')}`);
  });

  test('fail: a missing or odd --url, --dir or --print is refused with one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['server-setup'], /^jit-ssh-ca: --url URL is required/],
      [['server-setup', '--url', 'ftp://ca'], /^jit-ssh-ca: --url must be an http\(s\) URL/],
      [['server-setup', '--url', 'https://ca.example.com/$(reboot)'], /^jit-ssh-ca: --url must be an http\(s\) URL/],
      [['server-setup', '--url', 'https://ca', '--dir', 'relative/dir'], /^jit-ssh-ca: --dir must be an absolute path/],
      [['server-setup', '--url', 'https://ca', '--dir', "/etc/x'; rm -rf /"], /^jit-ssh-ca: --dir must be an absolute path/],
      [['server-setup', '--url', 'https://ca', '--krl-interval', '0'], /^jit-ssh-ca: --krl-interval must be a duration over 0/],
      [['server-setup', '--url', 'https://ca', '--krl-interval', '30s; reboot'], /^jit-ssh-ca: --krl-interval must be a duration over 0/],
      [['server-setup', '--print', 'everything'], /^jit-ssh-ca: --print takes refresh or session-guard/],
    ];
    for (const [args, stderr] of cases) {
      const r = await run(CA_BIN, args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    }
  });
});
