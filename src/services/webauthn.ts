// Passkeys and security keys (WebAuthn, @simplewebauthn/server): registering
// them on the account page, the passkey step that ends a web sign-in, and the
// passkey step-up bound to one request for approving it.
//
// Every ceremony's challenge is stored bound to the browser's session (the
// SHA-256 of its token, or of the pending sign-in's token), a purpose and a
// target, lives CHALLENGE_TTL, and is deleted when an answer is checked,
// right or wrong: an assertion, captured and sent again, finds no challenge.
// The library checks the signature, origin, RP ID, challenge and user
// verification; the signature counter is judged by core/webauthn.ts (the
// library is given 0 as the stored counter so that the rule and its record
// are ours) and moved on by one conditional UPDATE.

import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { asSessionAuth, type SessionAuth } from '../core/auth-method.js';
import { DomainError } from '../core/errors.js';
import { signCountVerdict } from '../core/webauthn.js';
import { appendEvent } from '../db/audit-events.js';
import type { Database } from '../db/schema.js';
import { findUser } from '../db/users.js';
import {
  advanceSignCount,
  countCredentials,
  credentialsOf,
  deleteCredential,
  findCredential,
  insertCredential,
  putChallenge,
  readChallenge,
  takeChallenge,
  type Challenge,
  type ChallengePurpose,
  type StoredCredential,
} from '../db/webauthn.js';
import { openSession, type LoginOutput, type PasskeyStepUp } from './auth.js';

/** Seconds a ceremony may take, from the page being shown to its answer. */
export const CHALLENGE_TTL = 300;
/** Passkeys one user may register. */
export const MAX_PASSKEYS = 20;

export interface WebauthnSettings {
  /** The relying party id (a domain: the passkeys are bound to it); null = the public URL's host, else each request's. */
  rpId: string | null;
  /** The origin the browser must report; null = the public URL, else each request's own. */
  origin: string | null;
}

/** Where a ceremony takes place: the RP id and origin it is checked against. */
export interface Site {
  rpId: string;
  origin: string;
}

export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  transports: string[];
}

/** The challenges of the helper's sign-ins (purpose login) are kept apart from the web's (target ''). */
const CLI_TARGET = 'cli';

export const PASSKEY_FAILED = 'the passkey did not confirm this; try again';
export const COUNTER_REFUSED = 'this passkey’s signature counter did not increase: a copy of it may be in use, or an old answer was sent again. It was refused and recorded; tell your administrators';

/** The refusal of someone with no passkey where policy asks for one (`where`: "here", "at sign-in"). */
export const noPasskey = (username: string, where: string) =>
  new DomainError('mfa_required', `policy asks for a passkey ${where}, and ${username} has none registered: register one on your account page (under a policy that lets you sign in without one), or ask an administrator`);

export interface WebauthnService {
  /** The RP id and origin for a page reached at `requestOrigin` (the settings, else the public URL, else the request's). */
  site(requestOrigin: string, publicUrl: string | null): Site;
  passkeys(username: string): Promise<PasskeyView[]>;
  hasPasskey(username: string): Promise<boolean>;
  registrationOptions(input: { username: string; binding: string; site: Site }): Promise<PublicKeyCredentialCreationOptionsJSON>;
  register(input: { username: string; binding: string; site: Site; response: unknown; name: unknown; clientAddress: string | null }): Promise<PasskeyView>;
  remove(input: { username: string; id: string; clientAddress: string | null }): Promise<void>;
  /** Starts the passkey step of a sign-in whose first factor (`auth`) has passed; `binding` is the pending sign-in's secret. */
  beginLogin(input: { username: string; binding: string; auth: SessionAuth; next: string; at?: Date }): Promise<void>;
  /** The options for the pending sign-in's passkey step; null when there is none (expired, used). Throws mfa_required when the user has no passkey. */
  loginOptions(input: { binding: string; site: Site }): Promise<{ username: string; next: string; options: PublicKeyCredentialRequestOptionsJSON } | null>;
  /** Checks the passkey and opens the web session, its auth naming the passkey. */
  finishLogin(input: { binding: string; site: Site; response: unknown; clientAddress: string | null; ttl?: number }): Promise<LoginOutput & { next: string }>;
  /**
   * Starts the passkey step of the helper's device sign-in (jit-ssh login --sso): `binding` is the
   * secret of its page (/ui/sso/passkey/:handle), `flow` the pending sign-in it ends (the caller's).
   */
  beginCliLogin(input: { username: string; binding: string; auth: SessionAuth; flow: Record<string, unknown>; at?: Date }): Promise<void>;
  /** The options for that page; null when its sign-in has expired or was used. */
  cliLoginOptions(input: { binding: string; site: Site }): Promise<{ username: string; options: PublicKeyCredentialRequestOptionsJSON } | null>;
  /**
   * Checks the passkey on that page (once: the handle is used up, right or wrong). Returns the
   * pending sign-in it ends and its auth naming the passkey; refusals are recorded and thrown, with
   * the pending sign-in set on the error's `pending` when it is known.
   */
  finishCliLogin(input: { binding: string; site: Site; response: unknown; clientAddress: string | null }): Promise<{ username: string; auth: SessionAuth; flow: Record<string, unknown> }>;
  /** The options for a passkey step-up on `target` (a request id), bound to the session `binding`. */
  stepUpOptions(input: { username: string; binding: string; target: string; site: Site }): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** Checks and uses up the step-up: proof for `purpose` on `target` only. */
  verifyStepUp(input: { username: string; binding: string; target: string; purpose: string; site: Site; response: unknown; clientAddress: string | null }): Promise<PasskeyStepUp>;
}

export interface WebauthnDeps {
  db: Kysely<Database>;
  settings: WebauthnSettings;
  /** Lifetime of the sessions the passkey step opens, seconds (JIT_SSH_TOKEN_TTL). */
  tokenTtl?: number;
  now?: () => Date;
}

const bindingHash = (secret: string) => createHash('sha256').update(`jit-ssh webauthn\0${secret}`).digest();
/** A stable, opaque user handle: the authenticator stores it with a discoverable passkey. */
const userHandle = (username: string) => new Uint8Array(createHash('sha256').update(`jit-ssh user\0${username}`).digest());

const view = (c: StoredCredential): PasskeyView => ({ id: c.id, name: c.name, created_at: c.createdAt.toISOString(), last_used_at: c.lastUsedAt?.toISOString() ?? null, transports: c.transports });

const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
const transportsOf = (t: unknown): AuthenticatorTransportFuture[] => (Array.isArray(t) ? (t.filter((x) => typeof x === 'string' && TRANSPORTS.has(x)) as AuthenticatorTransportFuture[]) : []);

/** The browser's answer, as the JSON text the page posted (or already parsed). */
function parseResponse<T>(response: unknown): T | null {
  let v = response;
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 64 * 1024) return null;
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object' || typeof (v as { id?: unknown }).id !== 'string' || typeof (v as { response?: unknown }).response !== 'object') return null;
  return v as T;
}

export function createWebauthnService(deps: WebauthnDeps): WebauthnService {
  const { db, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const expiry = (at: Date) => new Date(at.getTime() + CHALLENGE_TTL * 1000);
  const fail = (at: Date, username: string, target: string, clientAddress: string | null, details: Record<string, unknown>) =>
    appendEvent(db, { at, actor: username, action: 'webauthn.failed', target, outcome: 'failed', clientAddress, details });

  const requestOptions = async (username: string, challenge: string, site: Site) => {
    const creds = await credentialsOf(db, username);
    if (creds.length === 0) throw noPasskey(username, 'here');
    return generateAuthenticationOptions({
      rpID: site.rpId,
      // As bytes: a string would be taken as text and encoded again.
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      userVerification: 'required',
      timeout: CHALLENGE_TTL * 1000,
      allowCredentials: creds.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
    });
  };

  /**
   * Checks an assertion of `username`'s against `challenge`: the library for
   * the signature, origin, RP id, challenge and user verification, the core's
   * rule for the counter. Failures are recorded and refused with `code`.
   */
  async function assertion(at: Date, username: string, challenge: string, site: Site, response: unknown, ctx: { target: string; purpose: string; clientAddress: string | null; code: 'unauthenticated' | 'step_up_failed' }): Promise<StoredCredential> {
    const refuse = async (reason: string, extra: Record<string, unknown> = {}, message = PASSKEY_FAILED): Promise<never> => {
      await fail(at, username, ctx.target, ctx.clientAddress, { purpose: ctx.purpose, reason, ...extra });
      throw new DomainError(ctx.code, message);
    };
    const body = parseResponse<AuthenticationResponseJSON>(response);
    if (!body) return refuse('malformed');
    const cred = await findCredential(db, body.id);
    if (!cred || cred.username !== username) return refuse('unknown_credential', { credential: body.id.slice(0, 128) });
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: body,
        expectedChallenge: challenge,
        expectedOrigin: site.origin,
        expectedRPID: site.rpId,
        requireUserVerification: true,
        // The counter is judged below, by our rule, so that its refusal is recorded as what it is.
        credential: { id: cred.id, publicKey: cred.publicKey, counter: 0, transports: transportsOf(cred.transports) },
      });
    } catch (e) {
      return refuse('invalid', { credential: cred.id, error: String((e as Error).message).slice(0, 200) });
    }
    if (!verified.verified) return refuse('invalid', { credential: cred.id });
    const received = verified.authenticationInfo.newCounter;
    if (signCountVerdict(cred.signCount, received) !== 'ok' || !(await advanceSignCount(db, cred.id, cred.signCount, received, at))) {
      return refuse('sign_count', { credential: cred.id, stored: cred.signCount, received }, COUNTER_REFUSED);
    }
    return cred;
  }

  /** Stores the passkey step of a sign-in (`target`: '' for the web's, CLI_TARGET for the helper's). */
  const beginSignIn = (target: string, username: string, binding: string, data: { auth: SessionAuth } & Record<string, unknown>, at: Date) =>
    putChallenge(db, { binding: bindingHash(binding), purpose: 'login', target, username, challenge: randomBytes(32).toString('base64url'), data, now: at, expiresAt: expiry(at) });

  /** The pending sign-in's passkey step and the options for it; null when it has expired or was used. */
  const signInOptions = async (target: string, binding: string, site: Site) => {
    const pending = await readChallenge(db, bindingHash(binding), 'login', target, now());
    return pending ? { pending, options: await requestOptions(pending.username, pending.challenge, site) } : null;
  };

  /** Checks the passkey that ends a pending sign-in, and that the account is still enabled; the auth then names the passkey. */
  async function passkeySignIn(at: Date, pending: Challenge, site: Site, response: unknown, clientAddress: string | null, purpose: string): Promise<SessionAuth> {
    const cred = await assertion(at, pending.username, pending.challenge, site, response, { target: pending.username, purpose, clientAddress, code: 'unauthenticated' });
    const user = await findUser(db, pending.username);
    if (!user?.enabled) throw new DomainError('unauthenticated', 'this account is disabled');
    return { ...asSessionAuth((pending.data as { auth?: unknown }).auth), webauthn: cred.id };
  }

  return {
    site(requestOrigin, publicUrl) {
      const base = new URL(publicUrl ?? requestOrigin);
      return { rpId: settings.rpId ?? base.hostname, origin: settings.origin ?? base.origin };
    },

    async passkeys(username) {
      return (await credentialsOf(db, username)).map(view);
    },

    async hasPasskey(username) {
      return (await countCredentials(db, username)) > 0;
    },

    async registrationOptions({ username, binding, site }) {
      const at = now();
      const creds = await credentialsOf(db, username);
      const options = await generateRegistrationOptions({
        rpName: 'jit-ssh',
        rpID: site.rpId,
        userName: username,
        userID: userHandle(username),
        userDisplayName: username,
        attestationType: 'none',
        timeout: CHALLENGE_TTL * 1000,
        excludeCredentials: creds.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
      });
      await putChallenge(db, { binding: bindingHash(binding), purpose: 'register', target: '', username, challenge: options.challenge, now: at, expiresAt: expiry(at) });
      return options;
    },

    async register({ username, binding, site, response, name, clientAddress }) {
      const at = now();
      const label = typeof name === 'string' ? name.trim() : '';
      if (label.length > 64 || /[\x00-\x1f\x7f]/.test(label)) throw new DomainError('invalid_input', 'a passkey’s name is one line of at most 64 characters');
      const pending = await takeChallenge(db, bindingHash(binding), 'register', '', at);
      if (!pending || pending.username !== username) throw new DomainError('invalid_input', 'this registration had expired or was already used; open the page again and retry');
      const body = parseResponse<RegistrationResponseJSON>(response);
      const refuse = async (reason: string, extra: Record<string, unknown> = {}): Promise<never> => {
        await fail(at, username, username, clientAddress, { purpose: 'register', reason, ...extra });
        throw new DomainError('invalid_input', 'the passkey could not be registered; try again');
      };
      if (!body) return refuse('malformed');
      let verified;
      try {
        verified = await verifyRegistrationResponse({ response: body, expectedChallenge: pending.challenge, expectedOrigin: site.origin, expectedRPID: site.rpId, requireUserVerification: true });
      } catch (e) {
        return refuse('invalid', { error: String((e as Error).message).slice(0, 200) });
      }
      if (!verified.verified || !verified.registrationInfo) return refuse('invalid');
      const { credential } = verified.registrationInfo;
      if ((await countCredentials(db, username)) >= MAX_PASSKEYS) throw new DomainError('conflict', `at most ${MAX_PASSKEYS} passkeys per user; remove one first`);
      const stored = { id: credential.id, username, name: label || `passkey ${at.toISOString().slice(0, 10)}`, publicKey: new Uint8Array(credential.publicKey), signCount: credential.counter, transports: transportsOf(credential.transports ?? body.response.transports), createdAt: at };
      if (!(await insertCredential(db, stored))) return refuse('already_registered', { credential: credential.id });
      await appendEvent(db, { at, actor: username, action: 'webauthn.register', target: username, outcome: 'ok', clientAddress, details: { credential: stored.id, name: stored.name, transports: stored.transports, sign_count: stored.signCount } });
      return view({ ...stored, lastUsedAt: null });
    },

    async remove({ username, id, clientAddress }) {
      const at = now();
      if (!(await deleteCredential(db, username, id))) throw new DomainError('not_found', 'no such passkey of yours');
      await appendEvent(db, { at, actor: username, action: 'webauthn.remove', target: username, outcome: 'ok', clientAddress, details: { credential: id } });
    },

    async beginLogin({ username, binding, auth, next, at = now() }) {
      await beginSignIn('', username, binding, { auth, next }, at);
    },

    async loginOptions({ binding, site }) {
      const found = await signInOptions('', binding, site);
      if (!found) return null;
      return { username: found.pending.username, next: String((found.pending.data as { next?: unknown }).next ?? '/ui'), options: found.options };
    },

    async finishLogin({ binding, site, response, clientAddress, ttl }) {
      const at = now();
      const pending = await takeChallenge(db, bindingHash(binding), 'login', '', at);
      if (!pending) throw new DomainError('unauthenticated', 'this sign-in had expired or was already used; log in again');
      const auth = await passkeySignIn(at, pending, site, response, clientAddress, 'login');
      const out = await openSession(db, { username: pending.username, audience: 'web', auth, clientAddress, at, ttl: ttl ?? deps.tokenTtl ?? 3600 });
      const next = (pending.data as { next?: unknown }).next;
      return { ...out, next: typeof next === 'string' ? next : '/ui' };
    },

    async beginCliLogin({ username, binding, auth, flow, at = now() }) {
      await beginSignIn(CLI_TARGET, username, binding, { auth, flow }, at);
    },

    async cliLoginOptions({ binding, site }) {
      const found = await signInOptions(CLI_TARGET, binding, site);
      return found && { username: found.pending.username, options: found.options };
    },

    async finishCliLogin({ binding, site, response, clientAddress }) {
      const at = now();
      const pending = await takeChallenge(db, bindingHash(binding), 'login', CLI_TARGET, at);
      if (!pending) throw new DomainError('unauthenticated', 'this sign-in had expired or was already used; run jit-ssh login --sso again');
      const data = pending.data as { flow?: unknown };
      const flow = data.flow && typeof data.flow === 'object' ? (data.flow as Record<string, unknown>) : {};
      try {
        return { username: pending.username, auth: await passkeySignIn(at, pending, site, response, clientAddress, 'cli_login'), flow };
      } catch (e) {
        if (e instanceof DomainError) Object.assign(e, { pending: flow });
        throw e;
      }
    },

    async stepUpOptions({ username, binding, target, site }) {
      const at = now();
      const challenge = randomBytes(32).toString('base64url');
      const options = await requestOptions(username, challenge, site);
      await putChallenge(db, { binding: bindingHash(binding), purpose: 'step_up', target, username, challenge, now: at, expiresAt: expiry(at) });
      return options;
    },

    async verifyStepUp({ username, binding, target, purpose, site, response, clientAddress }) {
      const at = now();
      const pending = await takeChallenge(db, bindingHash(binding), 'step_up' satisfies ChallengePurpose, target, at);
      if (!pending || pending.username !== username) {
        await fail(at, username, target, clientAddress, { purpose, reason: 'no_challenge' });
        throw new DomainError('step_up_failed', 'this confirmation had expired or was already used; open the request again and retry');
      }
      const cred = await assertion(at, username, pending.challenge, site, response, { target, purpose, clientAddress, code: 'step_up_failed' });
      await appendEvent(db, { at, actor: username, action: 'step_up.ok', target, outcome: 'ok', clientAddress, details: { purpose, method: 'webauthn', credential: cred.id } });
      return { method: 'webauthn', credential: cred.id, purpose, target, at: at.toISOString() };
    },
  };
}
