// Policy changes on a running server: an invalid file is refused and the
// policy in force stays; a valid one takes effect on SIGHUP or the admin API,
// and requests filed before it are not dropped.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, run, startServerProcess } from '../helpers/process.js';

const roleText = (name: string) => `  ${name}:
    principals: [deploy]
    requesters: [group:engineering]
    approval: {approvers: [group:admins], required: 1}
`;

test('ok/fail: reload by API and SIGHUP; invalid files refused; requests in flight kept; policy check CLI', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, `roles:\n${roleText('alpha')}`);
  const env = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: file, JIT_SSH_PASSWORD_COST: '14' });
  const add = async (name: string, groups: string) => {
    const r = await run(CA_BIN, ['user', 'add', name, '--groups', groups, '--password-stdin'], env, `${name}-password-long`);
    assert.equal(r.code, 0, r.stderr);
    return secretOf(r.stdout.trim());
  };
  const secrets = { boss: await add('boss', 'admins'), eng: await add('eng', 'engineering') };
  const server = await startServerProcess(env);
  try {
    const login = async (name: 'boss' | 'eng') => {
      const code = execFileSync('oathtool', ['--totp', '-b', secrets[name]], { encoding: 'utf8' }).trim();
      const res = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: name, password: `${name}-password-long`, totp: code }) });
      assert.equal(res.status, 200);
      const { token } = (await res.json()) as { token: string };
      return async (method: string, p: string, body?: unknown) => {
        const r = await fetch(`${server.url}${p}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: r.status, body: (await r.json()) as any };
      };
    };
    const boss = await login('boss');
    const eng = await login('eng');
    const roles = async () => (await eng('GET', '/v1/roles')).body.roles.map((r: { name: string }) => r.name).sort();
    assert.deepEqual(await roles(), ['alpha']);
    const inFlight = (await eng('POST', '/v1/requests', { role: 'alpha', duration: '1h', reason: 'filed before the reload' })).body;
    assert.equal(inFlight.status, 'pending');

    writeFileSync(file, `roles:\n  broken:\n    principals: ["*"]\n`);
    const refused = await boss('POST', '/v1/admin/policy/reload');
    assert.equal(refused.status, 422);
    assert.ok(refused.body.problems.some((p: string) => p.includes('wildcard')), JSON.stringify(refused.body));
    assert.deepEqual(await roles(), ['alpha'], 'the policy in force stays');
    assert.equal((await eng('POST', '/v1/admin/policy/reload')).status, 403);

    writeFileSync(file, `roles:\n${roleText('alpha')}${roleText('beta')}`);
    const ok = await boss('POST', '/v1/admin/policy/reload');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.roles, 2);
    assert.deepEqual(await roles(), ['alpha', 'beta']);

    writeFileSync(file, `roles:\n${roleText('alpha')}${roleText('gamma')}`);
    server.child.kill('SIGHUP');
    for (let i = 0; i < 50 && !(await roles()).includes('gamma'); i++) await sleep(100);
    assert.deepEqual(await roles(), ['alpha', 'gamma']);
    assert.ok(server.logs.some((l) => l['msg'] === 'policy reloaded'));

    // Approvals need a fresh code (the default step-up): the next step's, as the login used this one's.
    const next = execFileSync('oathtool', ['--totp', '-b', secrets.boss, '-N', `@${Math.floor(Date.now() / 1000) + 30}`], { encoding: 'utf8' }).trim();
    const approved = await boss('POST', `/v1/requests/${inFlight.id}/approve`, { comment: 'still fine', totp: next });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.status, 'approved');
  } finally {
    assert.equal(await server.stop(), 0);
  }

  const good = await run(CA_BIN, ['policy', 'check', file], cleanEnv());
  assert.equal(good.code, 0);
  assert.equal(good.stdout, `${file}: ok, 2 roles (alpha, gamma)\n`);
  writeFileSync(file, `roles:\n  web:\n    principals: ["a,b"]\n    requesters: [oncall]\n`);
  const bad = await run(CA_BIN, ['policy', 'check', file], cleanEnv());
  assert.equal(bad.code, 1);
  assert.deepEqual(bad.stderr.trimEnd().split('\n'), [
    `${file}: roles.web.principals[0]: principal "a,b" contains a comma (sshd would read two principals)`,
    `${file}: roles.web.requesters[0]: must be group:NAME or user:NAME`,
  ]);

  // Principals sshd would misread, refused by `policy check` and by the server at start, each named.
  writeFileSync(file, `roles:\n  web:\n    principals: ["a,b", "*", "root\\nadmin", "", "-oProxyCommand", "db?"]\n    requesters: [group:x]\n`);
  const dangers = [
    'roles.web.principals[0]: principal "a,b" contains a comma (sshd would read two principals)',
    'roles.web.principals[1]: principal "*" contains a wildcard',
    'roles.web.principals[2]: principal "root\\nadmin" contains whitespace or a newline',
    'roles.web.principals[3]: principal "" is empty',
    'roles.web.principals[4]: principal "-oProxyCommand" starts with "-" (a login name starts with a letter, digit or _)',
    'roles.web.principals[5]: principal "db?" contains a wildcard',
  ].map((p) => `${file}: ${p}`);
  const dangerous = await run(CA_BIN, ['policy', 'check', file], cleanEnv());
  assert.equal(dangerous.code, 1);
  assert.deepEqual(dangerous.stderr.trimEnd().split('\n'), dangers);
  // (With a time limit: a server that did start would otherwise run on.)
  const refusedAtStart = spawnSync(process.execPath, [CA_BIN, 'serve', '--port', '0'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(refusedAtStart.status, 1, `the server does not start on that policy (${refusedAtStart.signal ?? ''})`);
  assert.equal(refusedAtStart.stderr, `jit-ssh-ca: ${dangers.join('; ')}\n`, 'one line naming every problem');

  const missing = await run(CA_BIN, ['policy', 'check', path.join(dir, 'nope.yaml')], cleanEnv());
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^jit-ssh-ca: cannot read .*nope\.yaml: ENOENT\n$/);
});
