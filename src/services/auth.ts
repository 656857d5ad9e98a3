// Login, in this order: limits (login-limits.ts) → password → TOTP → enabled
// → the TOTP step is consumed → session; while password work is scarce the
// TOTP code is checked before the password. Every failure answers the same
// way and costs the same work whether or not the user exists; the audit log
// keeps the real reason.

import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuthSettings } from '../config.js';
import { PASSWORD_TOTP, type SessionAuth } from '../core/auth-method.js';
import { DomainError, RateLimitedError } from '../core/errors.js';
import { hashPassword, PasswordQueueFullError, verifyPassword, type PasswordCheck } from '../auth/password.js';
import type { SecretBox } from '../auth/secret-box.js';
import { hashToken, looksLikeToken, newToken } from '../auth/tokens.js';
import { newTotpSecret, verifyTotp } from '../auth/totp.js';
import { appendEvent } from '../db/audit-events.js';
import type { Database } from '../db/schema.js';
import { findLiveSessions, insertSession, revokeSession, type SessionUser } from '../db/sessions.js';
import { batchedLookup } from '../db/batch.js';
import { beginUserAttempt, clearThrottle, failUserAttempt, releaseUserAttempt } from '../db/throttle.js';
import { consumeTotpStep, findUser, updateUser } from '../db/users.js';
import { codeFirst, loginLimits, MAX_LOCKOUT_SECONDS } from './login-limits.js';

export const LOGIN_FAILED = 'invalid username, password or code';
const DUMMY_CONTEXT = 'user:\0none';

export interface Principal {
  username: string;
  groups: string[];
  isAdmin: boolean;
  isAuditor: boolean;
  expiresAt: Date;
  /** How this session was authenticated: recorded with what the person does. */
  auth: SessionAuth;
  /** For a user of an identity provider: which one, and when it last sent `groups` (they count for a limited time). */
  groupsFrom?: { issuerId: string; at: Date };
}

/**
 * Where a session may be used: the API (bearer tokens) or the web pages (the
 * cookie). A web session is stored under the hash of its token with a label,
 * so a cookie's value is no bearer token for the API, and an API token is no
 * cookie for the pages: the web pages' step-up before a decision cannot be
 * skipped by sending the cookie's token to POST /v1/requests/:id/approve.
 */
export type Audience = 'api' | 'web';

const sessionHash = (token: string, audience: Audience) => hashToken(audience === 'api' ? token : `${audience}:${token}`);

export interface OpenSessionInput {
  username: string;
  audience: Audience;
  auth: SessionAuth;
  clientAddress: string | null;
  at: Date;
  /** Session lifetime, seconds. */
  ttl: number;
  /** More for the login event (e.g. the identity provider's id). */
  details?: Record<string, unknown>;
}

/**
 * A new session for a user already proven (an identity provider's sign-in):
 * the same session rows and login event a password login makes.
 */
export async function openSession(db: Kysely<Database>, s: OpenSessionInput): Promise<LoginOutput> {
  const token = newToken();
  const expiresAt = new Date(s.at.getTime() + s.ttl * 1000);
  await db.transaction().execute(async (trx) => {
    await insertSession(trx, { tokenHash: sessionHash(token, s.audience), username: s.username, createdAt: s.at, expiresAt, clientAddress: s.clientAddress, auth: s.auth });
    await updateUser(trx, s.username, { lastLoginAt: s.at }, s.at);
    await appendEvent(trx, { at: s.at, actor: s.username, action: 'login.ok', target: s.username, outcome: 'ok', clientAddress: s.clientAddress, details: { auth: s.auth, ...(s.audience === 'api' ? {} : { via: s.audience }), ...s.details } });
  });
  return { token, expires_at: expiresAt.toISOString(), username: s.username };
}

export interface LoginInput {
  username: unknown;
  password: unknown;
  totp: unknown;
  clientAddress: string | null;
  /** Default `api`. */
  audience?: Audience;
}

export interface LoginOutput {
  token: string;
  expires_at: string;
  username: string;
}

export interface AuthService {
  login(input: LoginInput): Promise<LoginOutput>;
  /**
   * The same checks as login, and the same counters, without a session: the
   * first step of a web sign-in that must end with a passkey (services/webauthn.ts opens the session).
   */
  firstFactor(input: LoginInput): Promise<{ username: string; auth: SessionAuth }>;
  /** The principal behind a session token of `audience` (default `api`), or null (unknown, expired, revoked, user disabled). */
  authenticate(token: string, audience?: Audience): Promise<Principal | null>;
  logout(token: string, clientAddress: string | null, audience?: Audience): Promise<void>;
}

export interface AuthDeps {
  db: Kysely<Database>;
  box: SecretBox;
  settings: AuthSettings;
  now?: () => Date;
}

/** Sealed secrets are bound to their owner: the context is the user's name. */
export function totpContext(username: string): string {
  return `user:${username}`;
}

export async function createAuthService(deps: AuthDeps): Promise<AuthService> {
  const { db, box, settings } = deps;
  const now = deps.now ?? (() => new Date());
  // Stand-ins for a user who does not exist, with the same costs as a real one.
  const dummyHash = await hashPassword(randomBytes(24).toString('base64'), settings.passwordCost);
  const dummySealed = box.seal(newTotpSecret(), DUMMY_CONTEXT);
  const limits = loginLimits(db, settings);

  const principalOf = (s: SessionUser): Principal => ({
    username: s.username,
    groups: s.groups,
    isAdmin: s.groups.includes(settings.adminGroup),
    isAuditor: s.groups.includes(settings.auditorGroup),
    expiresAt: s.expiresAt,
    auth: s.auth,
    ...(s.groupsFrom ? { groupsFrom: s.groupsFrom } : {}),
  });

  async function refuse(at: Date, username: string, clientAddress: string | null, reason: string, retryAfter: number): Promise<never> {
    await appendEvent(db, { at, actor: username, action: 'login.failed', target: username, outcome: 'refused', clientAddress, details: { reason } });
    throw new RateLimitedError('too many failed logins; try again later', retryAfter);
  }

  // Every authenticated request looks its session up: concurrent ones share one statement.
  const sessionBatch = batchedLookup<string, SessionUser>((hexes) => findLiveSessions(db, hexes.map((h) => Buffer.from(h, 'hex')), now()));
  const liveSession = (hash: Buffer) => sessionBatch(hash.toString('hex'));

  async function authenticate(token: string, audience: Audience = 'api'): Promise<Principal | null> {
    if (!looksLikeToken(token)) return null;
    const s = await liveSession(sessionHash(token, audience));
    return s ? principalOf(s) : null;
  }

  /** Every check of a password + code login, in order; the user, once all passed. */
  async function check(input: LoginInput) {
      const at = now();
      const { username, password, totp, clientAddress, audience = 'api' } = input;
      // Control characters (NUL above all, which PostgreSQL cannot store or compare) are never part of a name.
      if (typeof username !== 'string' || typeof password !== 'string' || typeof totp !== 'string' || username.length === 0 || username.length > 128 || /[\x00-\x1f\x7f]/.test(username)) {
        throw new DomainError('invalid_input', 'username, password and totp are required strings');
      }
      // Every limit takes the attempt before anything is checked: parallel guesses, on this instance
      // or another, cannot all slip in before the first failure is counted (see login-limits.ts).
      const admission = await limits.admit(username, clientAddress, at);
      if (!admission.ok) return refuse(at, username, clientAddress, admission.reason, admission.retryAfter);
      const { attempt } = admission;

      const user = await findUser(db, username);
      const secret = box.open(user?.totp_secret ?? dummySealed, user ? totpContext(user.name) : DUMMY_CONTEXT);
      const checkCode = () => verifyTotp(secret, totp, Math.floor(at.getTime() / 1000));
      const checkPassword = () => verifyPassword(user?.password_hash ?? dummyHash, password, settings.passwordCost, { maxWaiting: settings.loginQueue });
      let pw: PasswordCheck;
      let step: number | null;
      // Decided right before the password work is asked for, with nothing awaited in between.
      const cheapFirst = codeFirst(attempt);
      try {
        if (cheapFirst) {
          step = await checkCode();
          pw = step === null ? { ok: false, needsRehash: false } : await checkPassword();
        } else {
          pw = await checkPassword();
          step = await checkCode();
        }
      } catch (e) {
        if (!(e instanceof PasswordQueueFullError)) throw e;
        // Not checked: nothing counts against the name or the address; the client is told when to come back.
        await attempt.withdraw();
        await appendEvent(db, { at, actor: username, action: 'login.failed', target: username, outcome: 'refused', clientAddress, details: { reason: 'busy' } });
        throw e;
      }
      const order = cheapFirst ? { code_checked_first: true } : {};

      let reason: string | null = null;
      if (!user) reason = 'unknown_user';
      else if (cheapFirst && step === null) reason = 'bad_totp';
      else if (!pw.ok) reason = 'bad_password';
      else if (step === null) reason = 'bad_totp';
      else if (!user.enabled) reason = 'disabled';
      else if (!(await consumeTotpStep(db, user.name, step))) reason = 'totp_replay';

      if (reason !== null || !user) {
        const lockedUntil = await attempt.failed();
        await appendEvent(db, { at, actor: username, action: 'login.failed', target: username, outcome: 'failed', clientAddress, details: { reason, ...order } });
        if (lockedUntil) {
          await appendEvent(db, { at, actor: 'jit-ssh', action: 'login.lockout', target: username, outcome: 'ok', clientAddress, details: { until: lockedUntil.toISOString() } });
        }
        throw new DomainError('unauthenticated', LOGIN_FAILED);
      }

      await attempt.succeeded();
      const rehash = pw.needsRehash ? await hashPassword(password, settings.passwordCost) : undefined;
      return { user, at, rehash, audience, clientAddress };
  }

  return {
    authenticate,

    async login(input) {
      const { user, at, rehash, audience, clientAddress } = await check(input);
      const token = newToken();
      const expiresAt = new Date(at.getTime() + settings.tokenTtl * 1000);
      await db.transaction().execute(async (trx) => {
        await insertSession(trx, { tokenHash: sessionHash(token, audience), username: user.name, createdAt: at, expiresAt, clientAddress, auth: PASSWORD_TOTP });
        await updateUser(trx, user.name, { lastLoginAt: at, passwordHash: rehash }, at);
        await appendEvent(trx, { at, actor: user.name, action: 'login.ok', target: user.name, outcome: 'ok', clientAddress, details: { auth: PASSWORD_TOTP, ...(audience === 'api' ? {} : { via: audience }), ...(rehash ? { password_rehashed: true } : {}) } });
      });
      return { token, expires_at: expiresAt.toISOString(), username: user.name };
    },

    async firstFactor(input) {
      const { user, at, rehash, clientAddress } = await check(input);
      await db.transaction().execute(async (trx) => {
        if (rehash) await updateUser(trx, user.name, { passwordHash: rehash }, at);
        await appendEvent(trx, { at, actor: user.name, action: 'login.first_factor', target: user.name, outcome: 'ok', clientAddress, details: { auth: PASSWORD_TOTP, via: 'web', next: 'webauthn' } });
      });
      return { username: user.name, auth: PASSWORD_TOTP };
    },

    async logout(token, clientAddress, audience = 'api') {
      const at = now();
      const principal = await authenticate(token, audience);
      if (!principal) throw new DomainError('unauthenticated', 'not logged in');
      await db.transaction().execute(async (trx) => {
        await revokeSession(trx, sessionHash(token, audience), at);
        await appendEvent(trx, { at, actor: principal.username, action: 'logout', target: principal.username, outcome: 'ok', clientAddress });
      });
    },
  };
}

// ---- Step-up: a fresh TOTP code for one sensitive action (the web pages' approvals) ----

/** What a verified step-up proves: this user gave a fresh code, or asserted a passkey, for this action on this target. */
export type StepUpProof = TotpStepUp | PasskeyStepUp;

export interface TotpStepUp {
  method: 'totp';
  /** The TOTP time-step consumed: the same counter as login, so no code serves twice. */
  step: number;
  purpose: string;
  target: string;
  at: string;
}

export interface PasskeyStepUp {
  method: 'webauthn';
  /** The credential id (base64url) of the passkey asserted. */
  credential: string;
  purpose: string;
  target: string;
  at: string;
}

export interface StepUpInput {
  username: string;
  totp: unknown;
  /** The action the code is given for, e.g. `request.approve`. */
  purpose: string;
  /** What it is given for, e.g. the request id. */
  target: string;
  clientAddress: string | null;
}

export interface StepUpVerifier {
  /** Verifies and consumes the code; throws `unauthenticated` (wrong or used code) or `rate_limited`. */
  verify(input: StepUpInput): Promise<TotpStepUp>;
}

export const STEP_UP_FAILED = 'the code is wrong or was already used; wait for the next code from your authenticator';

/**
 * Uses login's machinery: the sealed secret, verifyTotp, and consumeTotpStep
 * (a step is accepted once per user, whether for a login or a step-up). Wrong
 * codes are counted per user and locked out like failed logins, so a stolen
 * session cannot guess codes, but on a counter of their own: failed logins
 * for the name (anyone can send those) do not stop its step-ups.
 */
export function createStepUpVerifier(deps: AuthDeps): StepUpVerifier {
  const { db, box, settings } = deps;
  const now = deps.now ?? (() => new Date());
  return {
    async verify(input) {
      const at = now();
      const { username, totp, purpose, target, clientAddress } = input;
      // Counted apart from the name's login failures: guesses at a login, which anyone can make
      // for a name, must not stop the person from approving with their live session and code.
      const userKey = `step-up:${username}`;
      const event = (outcome: 'ok' | 'failed' | 'refused', details: Record<string, unknown>) =>
        appendEvent(db, { at, actor: username, action: outcome === 'ok' ? 'step_up.ok' : 'step_up.failed', target, outcome, clientAddress, details: { purpose, ...details } });
      const slot = await beginUserAttempt(db, userKey, at, settings.lockoutThreshold);
      if (!slot.ok) {
        await event('refused', { reason: slot.reason });
        throw new RateLimitedError('too many wrong codes; try again later', slot.retryAfter);
      }
      const user = await findUser(db, username);
      if (!user || !user.enabled) {
        await releaseUserAttempt(db, userKey);
        throw new DomainError('unauthenticated', 'the session has ended; log in again');
      }
      const step = typeof totp === 'string' ? await verifyTotp(box.open(user.totp_secret, totpContext(user.name)), totp.trim(), Math.floor(at.getTime() / 1000)) : null;
      const reason = step === null ? 'bad_totp' : (await consumeTotpStep(db, user.name, step)) ? null : 'totp_replay';
      if (reason !== null || step === null) {
        const lockedUntil = await failUserAttempt(db, userKey, at, settings.lockoutThreshold, settings.lockoutSeconds, MAX_LOCKOUT_SECONDS);
        await event('failed', { reason });
        if (lockedUntil) {
          await appendEvent(db, { at, actor: 'jit-ssh', action: 'step_up.lockout', target: username, outcome: 'ok', clientAddress, details: { until: lockedUntil.toISOString() } });
        }
        throw new DomainError('unauthenticated', STEP_UP_FAILED);
      }
      await clearThrottle(db, userKey); // a right code ends the run of wrong ones
      await event('ok', { step });
      return { method: 'totp', step, purpose, target, at: at.toISOString() };
    },
  };
}
