// The `jit-ssh` helper as engineers run it: the real executable against a
// running server (embedded database, and PostgreSQL when configured) and a
// real sshd and ssh-agent.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, HELPER_BIN, cleanEnv, run, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { startSshd, trySsh, type Sshd } from '../helpers/sshd.js';

const USER = os.userInfo().username;
const POLICY = `roles:
  shell:
    description: a shell on the test host
    principals: [${USER}]
    requesters: [group:engineering]
    approval: {approvers: [group:admins], required: 1}
    auto_approve:
      - groups: [oncall]
        max_duration: 1h
`;

/** ssh options for the throwaway sshd: no config, no host key checks, no prompts. */
const sshOpts = (port: number) => ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-p', String(port), '127.0.0.1'];

const backends: Array<{ name: string; skip: string | false }> = [
  { name: 'embedded', skip: false },
  { name: 'postgres', skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run against PostgreSQL' },
];

for (const backend of backends) {
  describe(`jit-ssh against a running server (${backend.name})`, { skip: backend.skip }, () => {
    const dir = tempDir();
    let server: ServerProcess;
    let sshd: Sshd;
    let serverEnv: NodeJS.ProcessEnv;
    let drop = async () => {};
    const secrets: Record<string, string> = {};
    const homes: Record<string, string> = {};

    /** The environment of one engineer: their own JIT_SSH_HOME, no agent unless given. */
    const envOf = (who: string, extra: Record<string, string> = {}) => cleanEnv({ JIT_SSH_HOME: homes[who]!, JIT_SSH_SERVER: server.url, JIT_SSH_POLL_INTERVAL: '1s', SSH_AUTH_SOCK: '', ...extra });
    const helper = (who: string, args: string[], input?: string, extra?: Record<string, string>) => run(HELPER_BIN, args, envOf(who, extra), input);
    const totp = (who: string) => execFileSync('oathtool', ['--totp', '-b', secrets[who]!], { encoding: 'utf8' }).trim();
    const loginAs = async (who: string) => {
      const r = await helper(who, ['login', '--user', who, '--password-stdin', '--totp', totp(who)], `${who}-password-long\n`);
      assert.equal(r.code, 0, r.stderr);
    };

    before(async () => {
      serverEnv = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14' });
      if (backend.name === 'postgres') {
        const db = await createPostgresDatabase();
        drop = db.drop;
        Object.assign(serverEnv, { DATABASE_URL: db.url, JIT_SSH_SECRET_KEY: Buffer.alloc(32, 4).toString('base64') });
      }
      writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
      for (const [name, groups] of [['alice', 'engineering,oncall'], ['bob', 'engineering'], ['boss', 'admins']]) {
        const r = await run(CA_BIN, ['user', 'add', name!, '--groups', groups!, '--password-stdin'], serverEnv, `${name}-password-long`);
        assert.equal(r.code, 0, r.stderr);
        secrets[name!] = secretOf(r.stdout.trim());
        homes[name!] = path.join(dir, `home-${name}`);
      }
      server = await startServerProcess(serverEnv, 60_000, { stopAfter: false });
      const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
      sshd = await startSshd({ caKeys: caPub.trim().split('\n') }, { stopAfter: false });
      for (const who of ['alice', 'bob', 'boss']) await loginAs(who);
    });
    after(async () => {
      await sshd?.stop();
      await server?.stop();
      await drop();
    });

    test('ok: login keeps the session private (dir 0700, file 0600) and remembers the server', async () => {
      assert.equal(statSync(homes['alice']!).mode & 0o777, 0o700);
      assert.equal(statSync(path.join(homes['alice']!, 'session.json')).mode & 0o777, 0o600);
      const st = await run(HELPER_BIN, ['status', '--json'], cleanEnv({ JIT_SSH_HOME: homes['alice']! }));
      assert.equal(st.code, 0, st.stderr);
      const s = JSON.parse(st.stdout);
      assert.equal(s.session.server, server.url, 'the server remembered from login, with no JIT_SSH_SERVER');
      assert.equal(s.session.live, true);
    });

    test('ok: jit-ssh ssh requests (auto-approved), fetches a certificate and runs a remote command; exit codes pass through', async () => {
      const first = await helper('alice', ['ssh', 'shell', '--for', '10m', '--reason', 'check the deploy host', '--', ...sshOpts(sshd.port), 'echo', 'hello from sshd']);
      assert.equal(first.code, 0, first.stderr + sshd.log());
      assert.equal(first.stdout, 'hello from sshd\n');
      assert.match(first.stderr, /approved: shell until/);
      const keys = path.join(homes['alice']!, 'keys');
      assert.equal(statSync(keys).mode & 0o777, 0o700);
      for (const f of ['shell', 'shell-cert.pub', 'shell.pub']) assert.equal(statSync(path.join(keys, f)).mode & 0o777, 0o600, f);
      const requestsBefore = JSON.parse((await helper('alice', ['requests', '--json'])).stdout).requests.length;
      const exit = await helper('alice', ['ssh', 'shell', '--', ...sshOpts(sshd.port), 'exit 7']);
      assert.equal(exit.code, 7, exit.stderr);
      assert.equal(JSON.parse((await helper('alice', ['requests', '--json'])).stdout).requests.length, requestsBefore, 'a live certificate is reused, nothing new requested');
    });

    test('ok: a request needing approval — --wait returns once another user approves', async () => {
      const waiter = run(HELPER_BIN, ['request', 'shell', '--for', '5m', '--reason', 'rotate the app logs', '--wait', '--json'], envOf('bob'));
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        await sleep(200);
        const pending = JSON.parse((await helper('boss', ['requests', '--pending', '--json'])).stdout).requests;
        id = pending.find((r: { requester: string; reason: string }) => r.requester === 'bob' && r.reason === 'rotate the app logs')?.id;
      }
      assert.ok(id, 'the approver sees the pending request');
      // The policy asks approvers for a fresh code (the default): without a terminal to ask on, the command says how to give it.
      const noCode = await helper('boss', ['approve', id!, '--comment', 'go ahead', '--yes']);
      assert.equal(noCode.code, 1);
      assert.match(noCode.stderr, /fresh code from your authenticator.*give it with --totp CODE/);
      // The next step's code (the login used this one; the server accepts one step ahead).
      const code = execFileSync('oathtool', ['--totp', '-b', secrets['boss']!, '-N', `@${Math.floor(Date.now() / 1000) + 30}`], { encoding: 'utf8' }).trim();
      const approve = await helper('boss', ['approve', id!, '--comment', 'go ahead', '--yes', '--totp', code]);
      assert.equal(approve.code, 0, approve.stderr);
      assert.match(approve.stderr, /requester bob/);
      assert.match(approve.stderr, /reason {4}rotate the app logs/);
      assert.match(approve.stderr, /policy {4}pending: needs 1 approval from group:admins \[approval\]/);
      const done = await waiter;
      assert.equal(done.code, 0, done.stderr);
      const r = JSON.parse(done.stdout);
      assert.equal(r.id, id);
      assert.equal(r.status, 'approved');
      const c = await helper('bob', ['cert', id!, '--json']);
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(JSON.parse(c.stdout).principals, [USER]);
    });

    test('ok/fail: the agent forgets the key and sshd refuses the certificate when the grant ends', async () => {
      const agent = execFileSync('ssh-agent', ['-s'], { encoding: 'utf8' });
      const sock = /SSH_AUTH_SOCK=([^;]+);/.exec(agent)![1]!;
      const pid = Number(/SSH_AGENT_PID=(\d+);/.exec(agent)![1]);
      after(() => process.kill(pid));
      const agentEnv = { SSH_AUTH_SOCK: sock };
      const req = await helper('alice', ['request', 'shell', '--for', '12s', '--reason', 'a very short look', '--json']);
      assert.equal(req.code, 0, req.stderr);
      const grant = JSON.parse(req.stdout);
      const c = await helper('alice', ['cert', grant.id, '--json'], undefined, agentEnv);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stderr, /added to ssh-agent until the certificate expires/);
      const cert = JSON.parse(c.stdout);
      const listed = execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8' });
      assert.match(listed, /ED25519-CERT/);
      const ok = await trySsh({ port: sshd.port, keyPath: cert.key, certPath: cert.certificate, user: USER, command: 'echo in' });
      assert.equal(ok.code, 0, ok.stderr);
      await sleep(Math.max(0, Date.parse(cert.valid_before) - Date.now()) + 1500);
      const gone = spawn('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      const code = await new Promise<number | null>((r) => gone.on('exit', r));
      assert.equal(code, 1, 'ssh-add -l exits 1 when the agent holds no identities');
      const refused = await trySsh({ port: sshd.port, keyPath: cert.key, certPath: cert.certificate, user: USER, command: 'echo in' });
      assert.notEqual(refused.code, 0);
    });

    test('ok/fail: jit-ssh relinquish ends the grant and its certificate: sshd with the new KRL refuses it', async () => {
      const krlFile = path.join(dir, `revoked-${backend.name}.krl`);
      const refreshKrl = async () => writeFileSync(krlFile, Buffer.from(await (await fetch(`${server.url}/v1/krl`)).arrayBuffer()));
      await refreshKrl();
      const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
      const guarded = await startSshd({ caKeys: caPub.trim().split('\n'), revokedKeys: krlFile });
      const req = await helper('alice', ['request', 'shell', '--for', '10m', '--reason', 'rotate the deploy keys', '--json']);
      assert.equal(req.code, 0, req.stderr);
      const grant = JSON.parse(req.stdout);
      const c = await helper('alice', ['cert', grant.id, '--json', '--no-agent']);
      assert.equal(c.code, 0, c.stderr);
      const cert = JSON.parse(c.stdout);
      const ok = await trySsh({ port: guarded.port, keyPath: cert.key, certPath: cert.certificate, user: USER, command: 'echo in' });
      assert.equal(ok.code, 0, ok.stderr);
      const done = await helper('alice', ['relinquish', grant.id]);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, new RegExp(`grant ${grant.id} for shell ended now; revoked 1 certificate: ${cert.serial}`));
      assert.match(done.stderr, /KRL/);
      await refreshKrl();
      const refused = await trySsh({ port: guarded.port, keyPath: cert.key, certPath: cert.certificate, user: USER, command: 'echo in' });
      assert.notEqual(refused.code, 0, 'the revoked certificate is refused before its end');
      const again = await helper('alice', ['cert', grant.id, '--json', '--no-agent']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /relinquished/);
      const twice = await helper('alice', ['relinquish', grant.id]);
      assert.equal(twice.code, 1);
      assert.match(twice.stderr, /already ended/);
    });

    test('fail: errors are one line with the way out, and a non-zero exit', async () => {
      const nobody = path.join(dir, 'home-nobody');
      const noSession = await run(HELPER_BIN, ['roles'], cleanEnv({ JIT_SSH_HOME: nobody }));
      assert.equal(noSession.code, 1);
      assert.equal(noSession.stderr, 'jit-ssh: your session has expired or is missing: run jit-ssh login\n');
      const unreachable = await run(HELPER_BIN, ['login', '--user', 'x', '--password-stdin', '--totp', '123456'], cleanEnv({ JIT_SSH_HOME: nobody, JIT_SSH_SERVER: 'http://127.0.0.1:47' }), 'pw\n');
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, /^jit-ssh: cannot reach http:\/\/127\.0\.0\.1:47: ECONNREFUSED\n$/);
      const badLogin = await helper('bob', ['login', '--user', 'bob', '--password-stdin', '--totp', '000000'], 'wrong-password-here\n');
      assert.equal(badLogin.code, 1);
      assert.equal(badLogin.stderr, 'jit-ssh: invalid username, password or code\n');
      // A refused request is a failure: its one-line reason goes to stderr, nothing to stdout.
      const denied = await helper('bob', ['request', 'nope', '--for', '1h', '--reason', 'there is no such role']);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /^denied: there is no role nope/);
      assert.match(denied.stderr, /^[^\n]*\n$/, 'one line');
      assert.equal(denied.stdout, '');
      const usage = await helper('bob', ['request', 'shell', '--for', 'soon', '--reason', 'valid reason here']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /--for soon: write a duration/);
      const unknown = await helper('bob', ['fly']);
      assert.equal(unknown.code, 2);
      const help = await helper('bob', ['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Examples:/);
      const dry = await helper('bob', ['request', 'shell', '--for', '10m', '--reason', 'what would policy say', '--dry-run', '--json']);
      assert.equal(dry.code, 0);
      assert.equal(JSON.parse(dry.stdout).status, 'pending');
    });

    test('fail: a refused request says why on stderr and exits 1; with --json the request is still printed on stdout', async () => {
      const r = await helper('bob', ['request', 'nope', '--for', '1h', '--reason', 'there is no such role', '--json']);
      assert.equal(r.code, 1);
      const filed = JSON.parse(r.stdout);
      assert.equal(filed.status, 'denied');
      assert.equal(filed.role, 'nope');
      assert.match(filed.decision.reason, /there is no role nope/);
      assert.equal(r.stderr, `denied: ${filed.close_reason ?? filed.decision.reason} (request ${filed.id})\n`);
      // The request was filed, and the server keeps it as denied.
      const listed = JSON.parse((await helper('bob', ['requests', '--json'])).stdout).requests;
      assert.equal(listed.find((x: { id: string }) => x.id === filed.id)?.status, 'denied');
    });

    test('ok: logout ends the session on the server too', async () => {
      const saved = JSON.parse(execFileSync('cat', [path.join(homes['boss']!, 'session.json')], { encoding: 'utf8' }));
      const out = await helper('boss', ['logout']);
      assert.equal(out.code, 0, out.stderr);
      const res = await fetch(`${server.url}/v1/auth/session`, { headers: { authorization: `Bearer ${saved.token}` } });
      assert.equal(res.status, 401, 'the old token no longer works');
      assert.equal((await helper('boss', ['requests'])).code, 1);
    });
  });
}
