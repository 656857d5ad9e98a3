// The product's promise, end to end with the real executables and a real
// sshd: an approved grant becomes a certificate, the login works, and when the
// grant ends the login is refused — with no revocation step at all.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { secretOf } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, run, startServerProcess } from '../helpers/process.js';
import { startSshd, trySsh } from '../helpers/sshd.js';

const USER = os.userInfo().username;
const GRANT_SECONDS = 15;

test('ok: approved grant → certificate → ssh works → grant ends → ssh refused, without revocation', async () => {
  const dir = tempDir();
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `roles:
  shell:
    description: a shell as ${USER} on the test host
    principals: [${USER}]
    requesters: [group:engineering]
    max_duration: 1h
    auto_approve:
      - groups: [engineering]
        max_duration: 5m
    certificate:
      extensions: [permit-pty]
`,
  );
  const env = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: policy, JIT_SSH_PASSWORD_COST: '14' });
  const add = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'engineering', '--password-stdin'], env, 'alice-password-long');
  assert.equal(add.code, 0, add.stderr);
  const server = await startServerProcess(env);
  try {
    const caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    const sshd = await startSshd({ caKeys: caPub.trim().split('\n') });

    const code = execFileSync('oathtool', ['--totp', '-b', secretOf(add.stdout.trim())], { encoding: 'utf8' }).trim();
    const login = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-password-long', totp: code }) });
    assert.equal(login.status, 200);
    const { token } = (await login.json()) as { token: string };
    const api = async (p: string, body: unknown) => {
      const res = await fetch(`${server.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };

    const req = await api('/v1/requests', { role: 'shell', duration: `${GRANT_SECONDS}s`, reason: 'check the end-to-end flow' });
    assert.equal(req.status, 201);
    assert.equal(req.body['status'], 'approved');
    const key = userKey(dir, 'ed25519', undefined, 'alice-key');
    const cert = await api('/v1/certificates', { public_key: key.publicLine, request_id: req.body['id'] });
    assert.equal(cert.status, 201, JSON.stringify(cert.body));
    // The certificate ends with the grant, rounded down to whole seconds: never later.
    assert.equal(Date.parse(cert.body['valid_before']) / 1000, Math.floor(Date.parse(req.body['grant'].ends_at) / 1000));
    const certPath = `${key.path}-cert.pub`;
    writeFileSync(certPath, cert.body['certificate'] + '\n', { mode: 0o600 });

    const from = sshd.log().length;
    const ok = await trySsh({ port: sshd.port, keyPath: key.path, certPath, user: USER, command: 'echo inside' });
    assert.equal(ok.code, 0, ok.stderr + sshd.log());
    assert.equal(ok.stdout.trim(), 'inside');
    await sshd.waitForLog(new RegExp(`Accepted publickey for ${USER} .* ID alice@jit-ssh req=${req.body['id']} serial=${cert.body['serial']} \\(serial ${cert.body['serial']}\\)`), from);

    // Wait out the grant. Nothing is revoked; the certificate simply stops being valid.
    const endsAt = Date.parse(String(req.body['grant'].ends_at));
    await sleep(Math.max(0, endsAt - Date.now()) + 1500);
    const after = sshd.log().length;
    const refused = await trySsh({ port: sshd.port, keyPath: key.path, certPath, user: USER, command: 'echo inside' });
    assert.notEqual(refused.code, 0);
    assert.equal(refused.stdout, '');
    await sshd.waitForLog(/Certificate invalid: expired/, after);
    const late = await api('/v1/certificates', { public_key: key.publicLine, request_id: req.body['id'] });
    assert.equal(late.status, 409, 'no certificate from an ended grant');
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
