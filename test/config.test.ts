import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, EXAMPLE_POLICY, loadClientConfig, loadServerConfig } from '../src/config.js';

test('ok: defaults are the documented ones (README, Configuration)', () => {
  const c = loadServerConfig({}, {}, '/srv');
  assert.equal(c.databaseUrl, null);
  assert.equal(c.dataDir, '/srv/data');
  assert.equal(c.caKeyPath, '/srv/data/ca_key');
  assert.equal(c.caKeyGenerated, true);
  assert.equal(c.policyPath, EXAMPLE_POLICY);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.ok(Object.isFrozen(c));
});

test('ok: environment variables are read by their documented names; flags win over them', () => {
  const env = {
    DATABASE_URL: 'postgres://u@db:5432/jit',
    JIT_SSH_DATA_DIR: '/var/lib/jit',
    JIT_SSH_CA_KEY: 'keys/ca',
    JIT_SSH_POLICY: EXAMPLE_POLICY,
    HOST: '0.0.0.0',
    PORT: '9000',
    JIT_SSH_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
  };
  const c = loadServerConfig(env, {}, '/srv');
  assert.equal(c.databaseUrl, 'postgres://u@db:5432/jit');
  assert.equal(c.dataDir, '/var/lib/jit');
  assert.equal(c.caKeyPath, '/srv/keys/ca');
  assert.equal(c.caKeyGenerated, false, 'an explicitly named key is never generated');
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.port, 9000);
  assert.deepEqual(c.secretKey, Buffer.alloc(32, 7));
  assert.equal(c.adminSocket, '/var/lib/jit/admin.sock');
  const f = loadServerConfig(env, { port: '9001', 'data-dir': 'd' }, '/srv');
  assert.equal(f.port, 9001);
  assert.equal(f.dataDir, path.resolve('/srv', 'd'));
});

test('fail: every wrong value is reported, one line each, naming the variable', () => {
  const env = { DATABASE_URL: 'mysql://x', PORT: '80000', JIT_SSH_LOG_LEVEL: 'loud', JIT_SSH_BODY_LIMIT: '12k', HOST: 'a b' };
  let err: ConfigError | undefined;
  try {
    loadServerConfig(env);
  } catch (e) {
    err = e as ConfigError;
  }
  assert.ok(err instanceof ConfigError);
  assert.equal(err.problems.length, 5, err.problems.join('\n'));
  assert.match(err.problems.find((p) => p.startsWith('DATABASE_URL'))!, /postgres:\/\//);
  assert.match(err.problems.find((p) => p.startsWith('PORT'))!, /between 0 and 65535/);
  assert.ok(err.problems.some((p) => p.startsWith('JIT_SSH_LOG_LEVEL')));
  assert.ok(err.problems.some((p) => p.startsWith('JIT_SSH_BODY_LIMIT') && /whole number/.test(p)));
  assert.ok(err.problems.some((p) => p.startsWith('HOST')));
  for (const p of err.problems) assert.ok(!p.includes('\n'));
});

test('fail: a missing policy file or passphrase file is named', () => {
  assert.throws(() => loadServerConfig({ JIT_SSH_POLICY: '/nonexistent/policy.yaml' }), /JIT_SSH_POLICY.*\/nonexistent\/policy\.yaml.*ENOENT/);
  assert.throws(() => loadServerConfig({ JIT_SSH_CA_KEY_PASSPHRASE_FILE: '/nonexistent/pw' }), /JIT_SSH_CA_KEY_PASSPHRASE_FILE.*ENOENT/);
});

test('ok: the helper talks to JIT_SSH_SERVER and keeps its files in JIT_SSH_HOME', () => {
  assert.deepEqual(loadClientConfig({ HOME: '/home/a' }), { server: null, home: '/home/a/.jit-ssh', pollMs: 2000, hostPatterns: '*' });
  assert.deepEqual(loadClientConfig({ JIT_SSH_SERVER: 'https://ca.example/', JIT_SSH_HOME: '/tmp/j', JIT_SSH_POLL_INTERVAL: '1s' }), { server: 'https://ca.example', home: '/tmp/j', pollMs: 1000, hostPatterns: '*' });
  assert.equal(loadClientConfig({}, { server: 'http://other:1' }).server, 'http://other:1');
  assert.throws(() => loadClientConfig({ JIT_SSH_SERVER: 'ftp://x' }), /JIT_SSH_SERVER/);
});

test('ok: auth settings have safe defaults and take durations', () => {
  const d = loadServerConfig({}, {}, '/srv');
  assert.deepEqual({ ...d.auth }, { tokenTtl: 3600, adminGroup: 'admins', auditorGroup: 'auditors', lockoutThreshold: 5, lockoutSeconds: 60, addressFailureLimit: 20, globalFailureLimit: 100, loginQueue: 32, passwordCost: 16, maxGroupAge: 43200 });
  assert.equal(d.secretKey, null, 'embedded default: the key is generated into the data dir');
  const c = loadServerConfig({ JIT_SSH_TOKEN_TTL: '15m', JIT_SSH_LOCKOUT_DURATION: '2m' }, { 'password-cost': '14' });
  assert.equal(c.auth.tokenTtl, 900);
  assert.equal(c.auth.lockoutSeconds, 120);
  assert.equal(c.auth.passwordCost, 14);
  assert.deepEqual(loadServerConfig({ JIT_SSH_SECRET_KEY: 'ab'.repeat(32) }).secretKey, Buffer.alloc(32, 0xab));
});

test('fail: PostgreSQL needs a shared secret key; a malformed key or auth setting is named', () => {
  assert.throws(() => loadServerConfig({ DATABASE_URL: 'postgres://db/jit' }), /JIT_SSH_SECRET_KEY: required with DATABASE_URL/);
  assert.throws(() => loadServerConfig({ JIT_SSH_SECRET_KEY: 'short' }), /JIT_SSH_SECRET_KEY: must be 32 bytes/);
  assert.throws(() => loadServerConfig({ JIT_SSH_TOKEN_TTL: 'forever' }), /JIT_SSH_TOKEN_TTL \(--token-ttl\): must be a duration/);
  assert.throws(() => loadServerConfig({ JIT_SSH_PASSWORD_COST: '10' }), /JIT_SSH_PASSWORD_COST.*between 14 and 20/);
  assert.throws(() => loadServerConfig({ JIT_SSH_ADMIN_GROUP: 'Admins Group' }), /JIT_SSH_ADMIN_GROUP/);
});
