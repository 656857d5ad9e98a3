// Servers as operators run several of them: `jit-ssh-ca serve` processes on
// one PostgreSQL database, sharing the CA key, the secret key and the policy,
// each with its own data directory (admin socket). Users are enrolled in the
// database; logins use TOTP codes from oathtool.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSecretBox, loadOrCreateSecretKey } from '../../src/auth/secret-box.js';
import { migrate, openDatabase } from '../../src/db/index.js';
import { silentLogger } from '../../src/log.js';
import { createServices } from '../../src/services/index.js';
import { TEST_AUTH } from './identity.js';
import { send } from './load.js';
import { cleanEnv, startServerProcess, type ServerProcess } from './process.js';

/** Roles for load (auto-approved), for one approval and for two. */
export const FLEET_POLICY = `defaults:
  max_duration: 8h
  request_ttl: 1h
roles:
  load:
    principals: [deploy]
    requesters: [group:load]
    max_duration: 8h
    auto_approve:
      - groups: [load]
        max_duration: 8h
  gated:
    principals: [deploy]
    requesters: [group:load]
    max_duration: 1h
    approval:
      approvers: [group:approvers]
      required: 1
      step_up: optional  # load and race tests approve over the API without codes
  dual:
    principals: [deploy]
    requesters: [group:load]
    max_duration: 1h
    approval:
      approvers: [group:approvers]
      required: 2
      step_up: optional
`;

export interface FleetUser {
  name: string;
  password: string;
  secret: string;
}

export interface Fleet {
  dir: string;
  databaseUrl: string;
  secretKey: string;
  /** The environment of instance `i` (its own data dir and admin socket; the shared CA key, secret key and policy). */
  env(i: number, extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Starts instance `i` and waits until it listens. */
  start(i: number, extra?: Record<string, string>): Promise<ServerProcess>;
}

/**
 * Prepares instances over `databaseUrl`: one CA key file (made before the
 * first start), secret key and policy for all. `dir` is a temp dir the caller
 * removes.
 */
export function fleet(dir: string, databaseUrl: string, base: Record<string, string> = {}): Fleet {
  const secretKey = randomBytes(32).toString('base64');
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, FLEET_POLICY);
  const caKey = path.join(dir, 'ca_key');
  const env = (i: number, extra: Record<string, string> = {}) => {
    const data = path.join(dir, `instance-${i}`);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    return cleanEnv({
      DATABASE_URL: databaseUrl,
      JIT_SSH_SECRET_KEY: secretKey,
      JIT_SSH_DATA_DIR: data,
      JIT_SSH_CA_KEY: caKey,
      JIT_SSH_POLICY: policy,
      JIT_SSH_PASSWORD_COST: '14',
      JIT_SSH_ADDRESS_FAILURE_LIMIT: '100000',
      ...base,
      ...extra,
    });
  };
  let keyMade = false;
  return {
    dir,
    databaseUrl,
    secretKey,
    env,
    async start(i, extra) {
      if (!keyMade) {
        // The CA key file every instance uses: generated once, 0600, as an operator would copy it.
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'jit-ssh-ca', '-f', caKey]);
        keyMade = true;
      }
      return startServerProcess(env(i, extra), 60_000, { stopAfter: false });
    },
  };
}

/**
 * Enrols users straight in the database, as `jit-ssh-ca user add` does: a
 * PostgreSQL URL with its secret key, or the embedded database of a data
 * directory (its own secret.key, made if missing) while no server holds it.
 */
export async function enrol(target: string | { dataDir: string }, secretKey: string | null, users: Array<{ name: string; groups: string[] }>): Promise<Record<string, FleetUser>> {
  const embedded = typeof target !== 'string';
  const h = await openDatabase(embedded ? { databaseUrl: null, dataDir: target.dataDir } : { databaseUrl: target, dataDir: null, poolSize: 2 });
  try {
    await migrate(h.db);
    const key = embedded ? await loadOrCreateSecretKey(target.dataDir) : Buffer.from(secretKey!, 'base64');
    const { users: admin } = createServices({ auth: TEST_AUTH, webhookSecret: null }, h.db, null, { box: createSecretBox(key), logger: silentLogger });
    const out: Record<string, FleetUser> = {};
    for (const u of users) {
      const password = `${u.name}-long-password`;
      const e = await admin.add({ name: u.name, groups: u.groups, password }, 'os:test');
      out[u.name] = { name: u.name, password, secret: new URL(e.otpauth_uri).searchParams.get('secret')! };
    }
    return out;
  } finally {
    await h.close();
  }
}

/** The TOTP code of `secret` now (plus `steps` time-steps), from oathtool. */
export function totp(secret: string, steps = 0): string {
  return execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(Date.now() / 1000) + steps * 30}`], { encoding: 'utf8' }).trim();
}

export async function login(url: string, u: FleetUser, code = totp(u.secret)): Promise<string> {
  const r = await send(undefined, url, 'POST', '/v1/auth/login', { username: u.name, password: u.password, totp: code });
  assert.equal(r.status, 200, `login of ${u.name}: ${r.status} ${r.body}`);
  return JSON.parse(r.body).token;
}

/** Files a request; returns its JSON (id, status). */
export async function request(url: string, token: string, role: string, duration = '1h'): Promise<{ id: string; status: string }> {
  const r = await send(undefined, url, 'POST', '/v1/requests', { role, duration, reason: 'fault tests' }, token);
  assert.equal(r.status, 201, `request for ${role}: ${r.status} ${r.body}`);
  return JSON.parse(r.body);
}
