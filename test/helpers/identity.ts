// Real auth and user services over a test database, with a clock the test
// moves, and TOTP codes computed by oathtool (not by the code under test).

import { execFileSync } from 'node:child_process';
import type { Kysely } from 'kysely';
import type { AuthSettings } from '../../src/config.js';
import { createSecretBox } from '../../src/auth/secret-box.js';
import type { Database } from '../../src/db/schema.js';
import { createApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { createAuthService } from '../../src/services/auth.js';
import { createUserAdmin } from '../../src/services/users.js';

export const TEST_AUTH: AuthSettings = {
  tokenTtl: 3600,
  adminGroup: 'admins',
  auditorGroup: 'auditors',
  lockoutThreshold: 3,
  lockoutSeconds: 60,
  addressFailureLimit: 1000,
  passwordCost: 14,
};

export const SECRET_KEY = Buffer.alloc(32, 9);

export class TestClock {
  constructor(public ms = Date.parse('2026-11-22T12:00:15Z')) {}
  now = () => new Date(this.ms);
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}

/** The TOTP code for `secret` at the clock's time, from oathtool. */
export function totpAt(secret: string, clock: TestClock, offsetSeconds = 0): string {
  return execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(clock.ms / 1000) + offsetSeconds}`], { encoding: 'utf8' }).trim();
}

export function secretOf(otpauthUri: string): string {
  return new URL(otpauthUri).searchParams.get('secret')!;
}

export async function identity(db: Kysely<Database>, clock: TestClock, settings: Partial<AuthSettings> = {}, address = '198.51.100.1') {
  const s = { ...TEST_AUTH, ...settings };
  const box = createSecretBox(SECRET_KEY);
  const auth = await createAuthService({ db, box, settings: s, now: clock.now });
  const users = createUserAdmin({ db, box, passwordCost: s.passwordCost, now: clock.now });
  const app = createApp({
    logger: silentLogger,
    bodyLimit: 65536,
    caPublicKeys: () => [],
    ready: async () => {},
    auth,
    clientAddress: (c) => c.req.header('x-test-address') ?? address,
  });
  const addUser = async (name: string, groups: string[] = [], password = `${name}-password-long`) => {
    const e = await users.add({ name, groups, password }, 'os:test');
    return { name, password, secret: secretOf(e.otpauth_uri) };
  };
  const login = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.request('/v1/auth/login', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { auth, users, app, addUser, login, settings: s };
}
