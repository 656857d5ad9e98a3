// HTTPS served by jit-ssh-ca itself, end to end: a certificate made by
// openssl, the real executable, and real TLS clients (node:https verifying
// against that certificate, and the `jit-ssh` helper trusting it through
// NODE_EXTRA_CA_CERTS). Logins over it, Secure cookies, HSTS; and the
// settings refused before anything listens.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadServerConfig } from '../../src/config.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, HELPER_BIN, cleanEnv, run, startServerProcess, type ServerProcess } from '../helpers/process.js';

/** A self-signed certificate for 127.0.0.1 and localhost, and its key (0600). */
function makeCert(dir: string, name: string, cn = 'localhost'): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  return { cert, key };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request over TLS, verifying the server against `ca` (no rejectUnauthorized: false anywhere). */
function tlsRequest(url: string, opts: { ca?: Buffer; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ...(opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const POLICY = `roles:
  ops:
    description: a test role
    principals: [ops]
    requesters: [group:engineering]
    auto_approve:
      - groups: [engineering]
        max_duration: 1h
`;

describe('jit-ssh-ca serve over HTTPS', () => {
  const dir = tempDir();
  const { cert, key } = makeCert(dir, 'server');
  const ca = readFileSync(cert);
  const env = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14', JIT_SSH_TLS_CERT: cert, JIT_SSH_TLS_KEY: key });
  const secrets: Record<string, string> = {};
  let server: ServerProcess;
  const totp = (who: string) => execFileSync('oathtool', ['--totp', '-b', secrets[who]!], { encoding: 'utf8' }).trim();

  before(async () => {
    writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
    server = await startServerProcess(env, 60_000, { stopAfter: false });
    // One user per login below: each login spends its user's current TOTP step.
    for (const who of ['alice', 'bob', 'carol']) {
      const r = await run(CA_BIN, ['user', 'add', who, '--groups', 'engineering', '--password-stdin', '--json'], env, `${who}-password-long\n`);
      assert.equal(r.code, 0, r.stderr);
      secrets[who] = secretOf(JSON.parse(r.stdout).otpauth_uri);
    }
  });
  after(async () => {
    if (server) assert.equal(await server.stop(), 0);
  });

  test('ok: listens on https, logs the certificate, and a verifying TLS client gets answers with HSTS', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const listening = server.logs.find((l) => l['msg'] === 'listening')!;
    assert.equal(listening['tls_subject'], 'CN=localhost');
    assert.ok(Date.parse(String(listening['tls_not_after'])) > Date.now());
    const res = await tlsRequest(`${server.url}/readyz`, { ca });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['strict-transport-security']), /^max-age=\d{7,}/);
    const caPub = await tlsRequest(`${server.url}/v1/ca.pub`, { ca });
    assert.match(caPub.body, /^ssh-ed25519 /m);
  });

  test('fail: a client that does not trust the certificate is refused by TLS itself; cleartext HTTP gets no answer', async () => {
    await assert.rejects(tlsRequest(`${server.url}/healthz`), (e: NodeJS.ErrnoException) => /self-signed|SELF_SIGNED/i.test(`${e.code} ${e.message}`));
    const other = makeCert(dir, 'other');
    await assert.rejects(tlsRequest(`${server.url}/healthz`, { ca: readFileSync(other.cert) }), /self-signed|signature|certificate/i);
    const plain = server.url.replace('https:', 'http:');
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(`${plain}/healthz`, (res) => resolve(`status ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    });
    assert.doesNotMatch(outcome, /^status 2/, 'the TLS port must not serve cleartext HTTP');
  });

  test('ok: API login over TLS gives a token that works over TLS', async () => {
    const login = await tlsRequest(`${server.url}/v1/auth/login`, {
      ca,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password-long', totp: totp('alice') }),
    });
    assert.equal(login.status, 200, login.body);
    const { token } = JSON.parse(login.body) as { token: string };
    const session = await tlsRequest(`${server.url}/v1/auth/session`, { ca, headers: { Authorization: `Bearer ${token}` } });
    assert.equal(session.status, 200);
    assert.equal(JSON.parse(session.body).username, 'alice');
  });

  test('ok: web login over TLS sets __Host- cookies that are Secure, HttpOnly and SameSite=Strict', async () => {
    const form = await tlsRequest(`${server.url}/ui/login`, { ca });
    assert.equal(form.status, 200);
    const loginCookie = (form.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-jit_ssh_login='));
    assert.ok(loginCookie, JSON.stringify(form.headers['set-cookie']));
    assert.match(loginCookie, /; Secure/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const posted = await tlsRequest(`${server.url}/ui/login`, {
      ca,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, cookie: loginCookie.split(';')[0]! },
      body: new URLSearchParams({ csrf, username: 'bob', password: 'bob-password-long', totp: totp('bob'), next: '/ui' }).toString(),
    });
    assert.equal(posted.status, 303, posted.body);
    const session = (posted.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-jit_ssh_session='));
    assert.ok(session, JSON.stringify(posted.headers['set-cookie']));
    const flags = session.split(';').map((s) => s.trim().toLowerCase());
    for (const f of ['secure', 'httponly', 'samesite=strict', 'path=/']) assert.ok(flags.includes(f), `${f} missing: ${session}`);
    assert.ok(!flags.some((f) => f.startsWith('domain=')), session);
    const page = await tlsRequest(`${server.url}/ui`, { ca, headers: { cookie: session.split(';')[0]! } });
    assert.equal(page.status, 200);
    assert.match(page.body, /bob/);
  });

  test('ok: the jit-ssh helper logs in over TLS when it trusts the certificate (NODE_EXTRA_CA_CERTS), and refuses when it does not', async () => {
    const home = path.join(dir, 'carol-home');
    const helperEnv = (extra: Record<string, string>) => cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url, ...extra });
    const untrusted = await run(HELPER_BIN, ['login', '--user', 'carol', '--password-stdin', '--totp', '000000'], helperEnv({ NODE_EXTRA_CA_CERTS: '' }), 'carol-password-long\n');
    assert.notEqual(untrusted.code, 0);
    assert.equal(untrusted.stderr.trimEnd().split('\n').length, 1, untrusted.stderr);
    const ok = await run(HELPER_BIN, ['login', '--user', 'carol', '--password-stdin', '--totp', totp('carol')], helperEnv({ NODE_EXTRA_CA_CERTS: cert }), 'carol-password-long\n');
    assert.equal(ok.code, 0, ok.stderr);
    const status = await run(HELPER_BIN, ['status', '--json'], helperEnv({ NODE_EXTRA_CA_CERTS: cert }));
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /carol/);
  });
});

describe('HTTPS settings', () => {
  const dir = tempDir();
  const a = makeCert(dir, 'a');
  const b = makeCert(dir, 'b');
  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadServerConfig(env, {}, dir);
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    return [];
  };

  test('ok: a certificate and its key, by environment or flag', () => {
    const c = loadServerConfig({ JIT_SSH_TLS_CERT: a.cert, JIT_SSH_TLS_KEY: a.key }, {}, dir);
    assert.ok(c.tls);
    assert.equal(c.tls.subject, 'CN=localhost');
    assert.ok(c.tls.cert.toString().startsWith('-----BEGIN CERTIFICATE-----'));
    assert.ok(loadServerConfig({}, { 'tls-cert': a.cert, 'tls-key': a.key }, dir).tls);
    assert.equal(loadServerConfig({}, {}, dir).tls, null);
  });

  test('fail: one without the other, a key of another certificate, a key others can read, garbage, an http public URL', () => {
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.cert }), ['JIT_SSH_TLS_KEY (--tls-key): required with JIT_SSH_TLS_CERT (--tls-cert); HTTPS needs both a certificate and its key']);
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_KEY: a.key }), ['JIT_SSH_TLS_CERT (--tls-cert): required with JIT_SSH_TLS_KEY (--tls-key); HTTPS needs both a certificate and its key']);
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.cert, JIT_SSH_TLS_KEY: b.key }), [`JIT_SSH_TLS_KEY (--tls-key): ${b.key} is not the key of the certificate in ${a.cert}`]);
    chmodSync(b.key, 0o644);
    try {
      assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: b.cert, JIT_SSH_TLS_KEY: b.key }), [`JIT_SSH_TLS_KEY (--tls-key): ${b.key} is readable by others (mode 0644); run: chmod 600 ${b.key}`]);
    } finally {
      chmodSync(b.key, 0o600);
    }
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.key, JIT_SSH_TLS_KEY: a.key }), [`JIT_SSH_TLS_CERT (--tls-cert): ${a.key} is not a PEM certificate`]);
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.cert, JIT_SSH_TLS_KEY: a.cert }), [`JIT_SSH_TLS_KEY (--tls-key): ${a.cert} is not a readable PEM private key`]);
    assert.match(problemsOf({ JIT_SSH_TLS_CERT: path.join(dir, 'nope.crt'), JIT_SSH_TLS_KEY: a.key })[0]!, /^JIT_SSH_TLS_CERT \(--tls-cert\): cannot read .*nope\.crt: ENOENT$/);
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.cert, JIT_SSH_TLS_KEY: a.key, JIT_SSH_PUBLIC_URL: 'http://ca.example.com' }), [
      'JIT_SSH_PUBLIC_URL (--public-url): must be https:// when the service serves HTTPS itself (JIT_SSH_TLS_CERT)',
    ]);
    const encrypted = path.join(dir, 'enc.key');
    execFileSync('openssl', ['pkey', '-in', a.key, '-aes256', '-passout', 'pass:secret-pass', '-out', encrypted]);
    chmodSync(encrypted, 0o600);
    assert.deepEqual(problemsOf({ JIT_SSH_TLS_CERT: a.cert, JIT_SSH_TLS_KEY: encrypted }), [`JIT_SSH_TLS_KEY (--tls-key): ${encrypted} is not an unencrypted PEM private key`]);
  });

  test('fail: the real executable refuses to start with one line and exit 2 when the key does not match', async () => {
    const res = await run(CA_BIN, ['serve', '--port', '0', '--tls-cert', a.cert, '--tls-key', b.key], cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data') }));
    assert.equal(res.code, 2);
    assert.equal(res.stderr, `jit-ssh-ca: JIT_SSH_TLS_KEY (--tls-key): ${b.key} is not the key of the certificate in ${a.cert}\n`);
    assert.equal(res.stdout, '');
    const only = await run(CA_BIN, ['serve', '--port', '0', '--tls-cert', a.cert], cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data') }));
    assert.equal(only.code, 2);
    assert.equal(only.stderr.trimEnd().split('\n').length, 1, only.stderr);
    assert.match(only.stderr, /^jit-ssh-ca: JIT_SSH_TLS_KEY \(--tls-key\): required with JIT_SSH_TLS_CERT/);
  });
});
