// Real auth and user services over a test database, with a clock the test
// moves, and TOTP codes computed by oathtool (not by the code under test).

import { execFileSync } from 'node:child_process';
import type { TestClock } from './clock.js';
import type { Kysely } from 'kysely';
import type { AuthSettings } from '../../src/config.js';
import { createSecretBox } from '../../src/auth/secret-box.js';
import type { Database } from '../../src/db/schema.js';
import { createApp } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { createAuthService, createStepUpVerifier } from '../../src/services/auth.js';
import { createUserAdmin } from '../../src/services/users.js';
import { readFileSync } from 'node:fs';
import { EXAMPLE_POLICY } from '../../src/config.js';
import { parsePolicy } from '../../src/core/policy.js';
import { createCertificateService, createIssuer } from '../../src/services/issuance.js';
import { createRequestService } from '../../src/services/requests.js';
import { createAuditService } from '../../src/services/audit.js';
import { createRevocationService } from '../../src/services/revocation.js';
import { caSigner } from './keys.js';
import { createCaKeysPublisher } from '../../src/services/ca-keys.js';
import { publicKeyLine } from '../../src/ssh/signer.js';

export const TEST_AUTH: AuthSettings = {
  tokenTtl: 3600,
  adminGroup: 'admins',
  auditorGroup: 'auditors',
  lockoutThreshold: 3,
  lockoutSeconds: 60,
  addressFailureLimit: 1000,
  globalFailureLimit: 100,
  loginQueue: 32,
  passwordCost: 14,
};

export const SECRET_KEY = Buffer.alloc(32, 9);

export { TestClock } from './clock.js';

/** The TOTP code for `secret` at the clock's time, from oathtool. */
export function totpAt(secret: string, clock: TestClock, offsetSeconds = 0): string {
  return execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(clock.ms / 1000) + offsetSeconds}`], { encoding: 'utf8' }).trim();
}

export function secretOf(otpauthUri: string): string {
  return new URL(otpauthUri).searchParams.get('secret')!;
}

/** The example policy shipped with the package, unless a test gives its own. */
export const EXAMPLE_POLICY_TEXT = readFileSync(EXAMPLE_POLICY, 'utf8');

export interface IdentityOptions {
  address?: string;
  policy?: string;
}

/**
 * The whole service over `db` with real parts: auth, users, requests,
 * certificates (signed by a fresh ed25519 CA), and the HTTP app on top.
 */
export async function identity(db: Kysely<Database>, clock: TestClock, settings: Partial<AuthSettings> = {}, opts: IdentityOptions | string = {}) {
  const { address = '198.51.100.1', policy: policyText = EXAMPLE_POLICY_TEXT } = typeof opts === 'string' ? { address: opts } : opts;
  const s = { ...TEST_AUTH, ...settings };
  const box = createSecretBox(SECRET_KEY);
  let policy = parsePolicy(policyText);
  const signer = caSigner('ed25519');
  const auth = await createAuthService({ db, box, settings: s, now: clock.now });
  const users = createUserAdmin({ db, box, passwordCost: s.passwordCost, now: clock.now, policy: () => policy });
  const requests = createRequestService({ db, policy: () => policy, now: clock.now });
  const issuer = createIssuer({ db, signer, now: clock.now });
  const certificates = createCertificateService({ db, issuer, policy: () => policy, now: clock.now });
  const revocation = createRevocationService({ db, signer, caKeys: new Map([[signer.fingerprint, signer.publicKeyBlob]]), now: clock.now });
  const caKeys = createCaKeysPublisher({ db, signer, publicKeys: [publicKeyLine(signer, 'jit-ssh-ca')], retiredKeys: [], now: clock.now });
  const app = createApp({
    logger: silentLogger,
    bodyLimit: 65536,
    caKeys: caKeys.document,
    ready: async () => {},
    auth,
    clientAddress: (c) => c.req.header('x-test-address') ?? address,
    requests,
    certificates,
    reloadPolicy: async () => ({ ok: false, problems: ['not in this test'] }),
    audit: createAuditService({ db, now: clock.now }),
    krl: () => revocation.krl(),
    stepUp: createStepUpVerifier({ db, box, settings: s, now: clock.now }),
  });
  const setPolicy = (text: string) => {
    policy = parsePolicy(text);
  };
  const addUser = async (name: string, groups: string[] = [], password = `${name}-password-long`) => {
    const e = await users.add({ name, groups, password }, 'os:test');
    return { name, password, secret: secretOf(e.otpauth_uri) };
  };
  const login = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.request('/v1/auth/login', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  /** Logs `u` in and returns a function making authenticated JSON calls as them. */
  const tokenFor = async (u: { name: string; password: string; secret: string }) => {
    clock.advance(30); // a fresh TOTP step for every login
    const res = await login({ username: u.name, password: u.password, totp: totpAt(u.secret, clock) });
    if (res.status !== 200) throw new Error(`login of ${u.name} failed: ${res.status}`);
    return ((await res.json()) as { token: string }).token;
  };
  const as = async (u: { name: string; password: string; secret: string }) => {
    const token = await tokenFor(u);
    return async (method: string, path: string, body?: unknown) => {
      const r = await app.request(path, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, body: (text ? JSON.parse(text) : null) as any };
    };
  };
  return { auth, users, requests, certificates, revocation, signer, app, addUser, login, tokenFor, as, setPolicy, settings: s };
}
