// `jit-ssh-ca server-setup` as an operator uses it: the printed script is run
// (here into temporary directories instead of /etc and /usr/local), and a real
// sshd configured with what it installed accepts a fresh certificate through
// the session guard.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, ROOT, run } from '../helpers/process.js';
import { openSsh } from '../helpers/guard-ssh.js';
import { startSshd, trySsh } from '../helpers/sshd.js';

const USER = os.userInfo().username;

function sh(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', env: env ?? process.env }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
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

  test('ok: with --enroll-token the refresher enrolls the host keys, sshd presents their certificates, and it renews them before they end', async () => {
    const hostKeys = target('etc/ssh');
    mkdirSync(hostKeys, { recursive: true });
    for (const t of ['ed25519', 'ecdsa']) execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', `host-${t}`, '-f', path.join(hostKeys, `ssh_host_${t}_key`)], { stdio: 'ignore' });
    const tok = await run(CA_BIN, ['host', 'token', 'web-1.test', '--names', '127.0.0.1', '--json'], env);
    assert.equal(tok.code, 0, tok.stderr);
    const token = JSON.parse(tok.stdout).token as string;
    const tokenFile = path.join(dir, 'enroll.token');
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    const setup = await run(CA_BIN, ['server-setup', '--url', server.url, '--no-session-guard', '--enroll-token-file', tokenFile, '--host-key-dir', hostKeys, ...layout], env);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /do not keep this\n#    script/);
    const script = path.join(dir, 'setup-enroll.sh');
    writeFileSync(script, setup.stdout);
    const ran = await sh('sh', [script]);
    assert.equal(ran.status, 0, ran.stderr);
    for (const t of ['ecdsa', 'ed25519']) assert.match(ran.stdout, new RegExp(`jit-ssh-refresh: ${hostKeys}/ssh_host_${t}_key-cert\\.pub: host certificate enrolled, valid until \\d{4}-`));
    assert.doesNotMatch(ran.stderr, /reload sshd so it presents/, 'the setup run leaves reloading sshd to the operator');

    // The token is spent and gone; the renewal credential is kept, for root only.
    const jitDir = target('etc/ssh/jit-ssh');
    assert.equal(existsSync(path.join(jitDir, 'host-enroll.token')), false);
    assert.equal(statSync(path.join(jitDir, 'host-renewal.credential')).mode & 0o777, 0o600);
    assert.match(readFileSync(path.join(jitDir, 'host-renewal.credential'), 'utf8'), /^jhr_/);
    assert.equal(setup.stdout.split(token).length, 2, 'the token is in the script once, written to the token file');
    const certs = ['ecdsa', 'ed25519'].map((t) => path.join(hostKeys, `ssh_host_${t}_key-cert.pub`));
    for (const c of certs) {
      const shown = execFileSync('ssh-keygen', ['-L', '-f', c], { encoding: 'utf8' });
      assert.match(shown, /Type: \S+-cert-v01@openssh\.com host certificate/);
      assert.match(shown, /Principals: \n\s+web-1\.test\n\s+127\.0\.0\.1\n/);
      assert.equal(statSync(c).mode & 0o777, 0o644);
    }
    const dropIn = readFileSync(target('sshd_config.d/50-jit-ssh.conf'), 'utf8').trim().split('\n');
    assert.deepEqual(dropIn.filter((l) => l.startsWith('HostCertificate ')), certs.map((c) => `HostCertificate ${c}`));
    assert.equal(readFileSync(target('cron.d/jit-ssh'), 'utf8'), `*/5 * * * * root ${target('sbin/jit-ssh-refresh')} --host-key-dir ${hostKeys} ${server.url} ${jitDir}\n`);

    // A real sshd with the host keys and the drop-in's HostCertificate lines; ssh trusts only the host CA.
    const sshd = await startSshd({
      caKeys: readFileSync(path.join(jitDir, 'ca.pub'), 'utf8').trim().split('\n'),
      hostKey: path.join(hostKeys, 'ssh_host_ed25519_key'),
      extraConfig: [`HostKey ${path.join(hostKeys, 'ssh_host_ecdsa_key')}`, ...dropIn.filter((l) => l.startsWith('HostCertificate '))],
    });
    const knownHosts = path.join(dir, 'known_hosts');
    const hostCa = (await (await fetch(`${server.url}/v1/host-ca.pub`)).text()).split('\n').filter((l) => /^(ssh|ecdsa)-/.test(l));
    writeFileSync(knownHosts, hostCa.map((k) => `@cert-authority * ${k}\n`).join(''));
    const key = userKey(dir, 'ed25519', undefined, 'enrolled-user');
    const now = Date.now();
    const cert = await server.issuer.issue({ username: 'alice', requestId: 'r2', role: 'shell', publicKey: key.publicLine, principals: [USER], validAfter: new Date(now - 60_000), validBefore: new Date(now + 600_000), extensions: [], criticalOptions: {}, clientAddress: null });
    writeFileSync(`${key.path}-cert.pub`, cert.certificate + '\n');
    const ssh = (alg: string) =>
      sh('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentityAgent=none', '-o', `HostKeyAlgorithms=${alg}`, '-i', key.path, '-p', String(sshd.port), `${USER}@127.0.0.1`, 'echo', 'verified-host']);
    for (const alg of ['ssh-ed25519-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com']) {
      const r = await ssh(alg);
      assert.equal(r.stdout, 'verified-host\n', `${alg}: ${r.stderr}${sshd.log()}`);
    }
    // Without the certificates (plain host keys only), the same ssh refuses the host.
    const plain = await ssh('ssh-ed25519');
    assert.notEqual(plain.status, 0);
    assert.match(plain.stderr, /Host key verification failed/);

    // The next runs: certificates with most of their validity left are kept as they are.
    const refreshArgs = ['--host-key-dir', hostKeys, server.url, jitDir];
    const reload = `kill -HUP "$(cat ${path.join(sshd.dir, 'sshd.pid')})"`;
    const before = certs.map((c) => readFileSync(c, 'utf8'));
    const quiet = await sh(target('sbin/jit-ssh-refresh'), refreshArgs, { ...process.env, JIT_SSH_REFRESH_SSHD_RELOAD: 'exit 9' });
    assert.deepEqual([quiet.status, quiet.stdout, quiet.stderr], [0, '', '']);
    assert.deepEqual(certs.map((c) => readFileSync(c, 'utf8')), before);

    // With less than a third of its validity left (here: signed for an hour, 50 minutes ago), a certificate is
    // renewed, with the other, and sshd is reloaded to present the new one.
    execFileSync('ssh-keygen', ['-q', '-s', path.join(dataDir, 'host_ca_key'), '-h', '-I', 'ending', '-n', 'web-1.test,127.0.0.1', '-V', '-50m:+10m', path.join(hostKeys, 'ssh_host_ed25519_key.pub')], { stdio: 'ignore' });
    const renewed = await sh(target('sbin/jit-ssh-refresh'), refreshArgs, { ...process.env, JIT_SSH_REFRESH_SSHD_RELOAD: reload });
    assert.equal(renewed.status, 0, renewed.stderr);
    for (const t of ['ecdsa', 'ed25519']) assert.match(renewed.stdout, new RegExp(`${hostKeys}/ssh_host_${t}_key-cert\\.pub: host certificate renewed, valid until`));
    const after = readFileSync(certs[1]!, 'utf8');
    assert.notEqual(after, before[1]);
    assert.match(execFileSync('ssh-keygen', ['-L', '-f', certs[1]!], { encoding: 'utf8' }), /Key ID: "web-1\.test@jit-ssh host enroll=/);
    // sshd presents the renewed certificate once it is back from the reload.
    let scanned = '';
    for (let i = 0; i < 50 && !scanned.includes(after.split(' ')[1]!); i++) {
      await sleep(100);
      scanned = (await sh('ssh-keyscan', ['-c', '-t', 'ed25519', '-p', String(sshd.port), '127.0.0.1'])).stdout;
    }
    assert.ok(scanned.includes(after.split(' ')[1]!), `sshd presents the renewed certificate: ${scanned}`);
    const again = await ssh('ssh-ed25519-cert-v01@openssh.com');
    assert.equal(again.stdout, 'verified-host\n', again.stderr);

    // A credential that is not the one enrollment gave renews nothing, and says so.
    const credFile = path.join(jitDir, 'host-renewal.credential');
    const cred = readFileSync(credFile, 'utf8');
    writeFileSync(credFile, cred.replace(/^jhr_./, (m) => (m.endsWith('A') ? 'jhr_B' : 'jhr_A')));
    execFileSync('ssh-keygen', ['-q', '-s', path.join(dataDir, 'host_ca_key'), '-h', '-I', 'ending', '-n', 'web-1.test', '-V', '-50m:+10m', path.join(hostKeys, 'ssh_host_ed25519_key.pub')], { stdio: 'ignore' });
    const ending = readFileSync(certs[1]!, 'utf8');
    const wrong = await sh(target('sbin/jit-ssh-refresh'), refreshArgs, { ...process.env, JIT_SSH_REFRESH_SSHD_RELOAD: 'exit 9' });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^jit-ssh-refresh: .*\/v1\/hosts\/renew refused \(401\): the renewal credential is unknown/);
    assert.equal(readFileSync(certs[1]!, 'utf8'), ending, 'nothing installed');
    writeFileSync(credFile, cred);

    // The token worked once: another server given it enrolls nothing, and keeps it for the operator to see.
    const other = path.join(dir, 'other-server');
    mkdirSync(path.join(other, 'ssh'), { recursive: true });
    execFileSync('cp', [path.join(jitDir, 'ca.pub'), path.join(other, 'ca.pub')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(other, 'ssh', 'ssh_host_ed25519_key')], { stdio: 'ignore' });
    writeFileSync(path.join(other, 'host-enroll.token'), token + '\n', { mode: 0o600 });
    const replay = await sh(target('sbin/jit-ssh-refresh'), ['--host-key-dir', path.join(other, 'ssh'), server.url, other], { ...process.env, JIT_SSH_REFRESH_SSHD_RELOAD: '' });
    assert.equal(replay.status, 1, replay.stderr);
    assert.match(replay.stderr, /\/v1\/hosts\/enroll refused \(401\): the enrollment token is unknown, used or expired/);
    assert.equal(existsSync(path.join(other, 'ssh', 'ssh_host_ed25519_key-cert.pub')), false);
    assert.equal(existsSync(path.join(other, 'host-renewal.credential')), false);
    assert.equal(existsSync(path.join(other, 'host-enroll.token')), true);
    // The CA keys and KRL were still brought up to date on that run: host certificates come after them.
    assert.equal(existsSync(path.join(other, 'revoked.krl')), true);
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
