// Sign-in through an organization's identity provider (OpenID Connect).
// jit-ssh is the relying party; openid-client (a certified RP library) does
// discovery, the authorization code grant with PKCE, state and nonce, the ID
// token checks (issuer, audience, expiry, nonce), userinfo and the device
// authorization grant. Nothing here parses or checks a JWT itself.
//
// Three ways in, one sign-in at the end (signIn: the claims → the user → a
// session):
//   - web: /ui/sso/:id/start → provider → /ui/sso/callback → session cookie;
//   - the helper's loopback: /v1/auth/sso/start → provider → the same
//     callback → http://127.0.0.1:PORT/callback?code (one-time, bound to
//     the helper's PKCE challenge) → POST /v1/auth/sso/exchange;
//   - the helper's device flow: POST /v1/auth/sso/device starts the grant at
//     the provider; this process polls the provider; the helper polls
//     POST /v1/auth/sso/device/token until the sign-in is done.
//
// Users: an identity is (iss, sub). The first sign-in makes a user named
// `<username_prefix><name from the claim>` (prefix default `<issuer id>.`);
// a name already taken is refused, never linked. Each sign-in replaces the
// user's groups with the provider's (through group_map) and stamps the time.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as oidc from 'openid-client';
import type { SecretBox } from '../auth/secret-box.js';
import { looksLikeToken, newToken } from '../auth/tokens.js';
import { newTotpSecret } from '../auth/totp.js';
import type { OidcIssuerConfig, OidcSettings } from '../config.js';
import type { SessionAuth } from '../core/auth-method.js';
import { DomainError } from '../core/errors.js';
import type { MfaMethod } from '../core/policy-types.js';
import { passkeyAtLogin } from '../core/webauthn.js';
import { GROUP_NAME, USER_NAME } from '../core/names.js';
import { appendEvent } from '../db/audit-events.js';
import { isUniqueViolation } from '../db/errors.js';
import { findIdentity, insertFlow, insertIdentity, readFlow, takeFlow, updateFlow, updateIdentityGroups } from '../db/oidc.js';
import type { Database } from '../db/schema.js';
import { findUser, insertUser, updateUser } from '../db/users.js';
import type { Logger } from '../log.js';
import { openSession, totpContext, type Audience, type LoginOutput } from './auth.js';
import { noPasskey, type Site, type WebauthnService } from './webauthn.js';

/** A sign-in at the provider must come back within this. */
const AUTH_TTL = 10 * 60;
/** The helper redeems its one-time code within this. */
const CODE_TTL = 2 * 60;
/** Marks a user with no jit-ssh password: no password matches it (see auth/password.ts). */
export const NO_PASSWORD = '!oidc';
const CALLBACK = '/ui/sso/callback';

export interface IssuerView {
  id: string;
  name: string;
}

export interface BrowserStart {
  issuer: unknown;
  /** `web`: the pages' session cookie; `cli`: a one-time code for the helper's loopback listener. */
  purpose: 'web' | 'cli';
  /** Where the pages go after signing in (web). */
  next?: string;
  /** The helper's loopback redirect, PKCE challenge and state (cli). */
  cli?: { redirectUri: unknown; codeChallenge: unknown; state: unknown };
}

export type BrowserFinish = { purpose: 'web'; session: LoginOutput; next: string } | { purpose: 'cli'; redirect: string };

export interface DeviceStart {
  handle: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval: number;
}

/** `finish_url`: the page of jit-ssh's where the person's passkey ends the sign-in (the provider's part is done). */
export type DevicePoll = { status: 'pending'; interval: number; finish_url?: string } | LoginOutput;

/** The path of the helper's passkey page. */
export const CLI_PASSKEY_PATH = '/ui/sso/passkey/';

export interface OidcService {
  issuers(): IssuerView[];
  /** The provider's authorization URL to send the browser to, and the state the browser must bring back (kept in a cookie). */
  start(input: BrowserStart): Promise<{ url: string; state: string }>;
  /** The provider's answer at the callback: `query` as received, `binding` the state from the browser's cookie. */
  finish(query: URLSearchParams, binding: string | undefined, clientAddress: string | null): Promise<BrowserFinish>;
  /** The helper's one-time code and PKCE verifier → an API session. */
  exchange(code: unknown, codeVerifier: unknown, clientAddress: string | null): Promise<LoginOutput>;
  startDevice(issuer: unknown, clientAddress: string | null): Promise<DeviceStart>;
  pollDevice(handle: unknown, clientAddress: string | null): Promise<DevicePoll>;
  /** The passkey page of a device sign-in (its handle from the URL); null when expired or used. */
  passkeyOptions(handle: string, site: Site): Promise<{ username: string; options: unknown } | null>;
  /** The passkey's answer on that page: the pending device sign-in is done, or failed (the helper hears why). */
  finishPasskey(handle: string, site: Site, response: unknown, clientAddress: string | null): Promise<{ username: string; redirect?: string }>;
  /** Waits for the device grants this process is polling (shutdown, tests). */
  close(): Promise<void>;
}

export interface OidcDeps {
  db: Kysely<Database>;
  box: SecretBox;
  settings: OidcSettings;
  /** Session lifetime, seconds. */
  tokenTtl: number;
  logger: Logger;
  /** Passkeys: the device flow ends on jit-ssh's passkey page where policy asks for one (or the person has one). */
  webauthn?: WebauthnService;
  /** The policy's mfa.login now; absent = totp. */
  mfaLogin?: () => MfaMethod;
  now?: () => Date;
}

const keyHash = (handle: string) => createHash('sha256').update(handle).digest();
const b64 = (n: number) => randomBytes(n).toString('base64url');
const FLOW = 'oidc-flow';
/**
 * The passkey page's handle, derived from the helper's device handle (which only the helper and the
 * person hold): nothing that could open the page is stored, only hashes of it.
 */
const passkeyHandle = (deviceHandle: string) => `jit_${createHmac('sha256', deviceHandle).update('jit-ssh cli passkey page').digest('base64url')}`;

interface AuthFlow {
  issuer: string;
  nonce: string;
  verifier: string;
  purpose: 'web' | 'cli';
  next?: string;
  cli?: { redirect_uri: string; code_challenge: string; state: string };
}

/** The helper's loopback sign-in waiting for the passkey page. */
interface LoopbackFlow {
  issuer: string;
  code_challenge: string;
  redirect_uri: string;
  state: string;
}

/** The helper's loopback URL with `params` and its state. */
function toLoopback(l: { redirect_uri: string; state: string }, params: Record<string, string>): string {
  const u = new URL(l.redirect_uri);
  for (const [k, v] of Object.entries({ ...params, state: l.state })) u.searchParams.set(k, v);
  return u.href;
}

interface CodeFlow {
  username: string;
  auth: SessionAuth;
  issuer: string;
  code_challenge: string;
}

type DeviceFlow = { issuer: string; status: 'pending'; interval: number } | { issuer: string; status: 'passkey'; interval: number; username: string } | { issuer: string; status: 'done'; username: string; auth: SessionAuth } | { issuer: string; status: 'failed'; reason: string };

/** A redirect only to the helper's own listener on this machine. */
function loopbackRedirect(v: unknown): string {
  if (typeof v !== 'string' || v.length > 100) throw new DomainError('invalid_input', 'redirect_uri must be http://127.0.0.1:PORT/callback');
  const m = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):(\d{1,5})\/callback$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new DomainError('invalid_input', 'redirect_uri must be http://127.0.0.1:PORT/callback');
  return v;
}

/** Claims that are strings, or string arrays. */
const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The jit-ssh user name a claim value becomes: lower case, the local part of an e-mail address, other characters as `_`. */
export function userNameFrom(prefix: string, value: string): string | null {
  const local = value.includes('@') ? value.slice(0, value.lastIndexOf('@')) : value;
  const name = prefix + local.toLowerCase().replace(/[^a-z0-9_.-]/g, '_');
  return USER_NAME.test(name) ? name : null;
}

/** The provider's groups as jit-ssh groups: through group_map, or those that are valid group names. */
export function mapGroups(issuer: OidcIssuerConfig, idpGroups: string[]): string[] {
  const out = new Set<string>();
  for (const g of idpGroups) {
    if (issuer.groupMap) for (const m of issuer.groupMap.get(g) ?? []) out.add(m);
    else if (GROUP_NAME.test(g)) out.add(g);
  }
  return [...out].sort();
}

/** openid-client's reason, with the claim it found wrong (nonce, aud, iss, exp) when it names one. */
function refusalOf(e: unknown): string {
  const err = e as { message?: string; error?: string; error_description?: string; cause?: { message?: string; cause?: { claim?: string } } };
  let text = err.error ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}` : String(err.message);
  // openid-client wraps the check that failed; its message names the claim.
  if (err.cause instanceof Error && err.cause.message && err.cause.message !== text) text += `: ${err.cause.message}`;
  const claim = err.cause?.cause?.claim;
  if (typeof claim === 'string' && !text.includes(claim)) text += ` (${claim})`;
  return text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200);
}

/** A refusal of the sign-in itself: logged with its reason, shown as one sentence. */
class SignInRefused extends DomainError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super('unauthenticated', message);
  }
}

export function createOidcService(deps: OidcDeps): OidcService {
  const { db, box, settings, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const byId = new Map(settings.issuers.map((i) => [i.id, i]));
  const configs = new Map<string, Promise<oidc.Configuration>>();
  const polling = new Set<Promise<unknown>>();
  const closing = new AbortController();
  const redirectUri = `${settings.redirectBase}${CALLBACK}`;

  function issuerOf(id: unknown): OidcIssuerConfig {
    const i = typeof id === 'string' ? byId.get(id) : undefined;
    if (!i) throw new DomainError('not_found', `no identity provider ${typeof id === 'string' ? id.slice(0, 40) : ''}; this server has ${[...byId.keys()].join(', ') || 'none'}`);
    return i;
  }

  /** The provider's discovered metadata, read once (again after a failure). */
  function configOf(i: OidcIssuerConfig): Promise<oidc.Configuration> {
    let c = configs.get(i.id);
    if (!c) {
      const url = new URL(i.issuer);
      // Plain http only for a provider on this host (the configuration allows no other).
      const execute = url.protocol === 'http:' ? [oidc.allowInsecureRequests] : [];
      c = oidc.discovery(url, i.clientId, { redirect_uris: [redirectUri], response_types: ['code'] }, oidc.ClientSecretBasic(i.clientSecret), { execute }).catch((e: unknown) => {
        configs.delete(i.id);
        logger.warn('identity provider discovery failed', { issuer: i.id, error: (e as Error).message });
        throw new DomainError('unavailable', `${i.name} cannot be reached just now; try again shortly`);
      });
      configs.set(i.id, c);
    }
    return c;
  }

  /** Checks the claims and makes or updates the user; the session is the caller's to open. */
  async function signIn(i: OidcIssuerConfig, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, config: oidc.Configuration, clientAddress: string | null): Promise<{ username: string; auth: SessionAuth }> {
    const at = now();
    const idClaims = tokens.claims();
    if (!idClaims) throw new SignInRefused('no_id_token', `${i.name} sent no ID token`);
    let claims: Record<string, unknown> = { ...idClaims };
    if (config.serverMetadata().userinfo_endpoint) {
      // Groups and names often come only from userinfo (its subject must be the ID token's).
      const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      claims = { ...info, ...idClaims };
    }
    const iss = idClaims.iss;
    const sub = idClaims.sub;
    const refuse = async (reason: string, message: string): Promise<never> => {
      await appendEvent(db, { at, actor: `${i.id}:${sub}`.slice(0, 200), action: 'login.failed', target: null, outcome: 'failed', clientAddress, details: { reason, issuer: iss, issuer_id: i.id } });
      throw new SignInRefused(reason, message);
    };
    if (i.allowedEmailDomains.length > 0) {
      const email = typeof claims['email'] === 'string' ? claims['email'].toLowerCase() : '';
      const domain = email.slice(email.lastIndexOf('@') + 1);
      if (!email.includes('@') || claims['email_verified'] === false || !i.allowedEmailDomains.includes(domain)) {
        return refuse('email_domain', `${i.name} signed you in with an e-mail address this server does not accept`);
      }
    }
    const idpGroups = strings(claims[i.groupsClaim]);
    const groups = mapGroups(i, idpGroups);
    const auth: SessionAuth = { method: 'oidc', issuer: iss, ...(strings(idClaims.amr).length ? { amr: strings(idClaims.amr) } : {}), ...(typeof idClaims.acr === 'string' ? { acr: idClaims.acr } : {}) };

    const record = () => db.transaction().execute(async (trx) => {
      const known = await findIdentity(trx, iss, sub, true);
      if (known) {
        const user = await findUser(trx, known.username);
        if (!user?.enabled) return { refused: 'disabled' as const, username: known.username };
        await updateIdentityGroups(trx, iss, sub, idpGroups, at);
        await updateUser(trx, user.name, { groups }, at);
        return { username: user.name };
      }
      const claimValue = i.usernameClaims.map((c) => claims[c]).find((v): v is string => typeof v === 'string' && v.length > 0);
      if (!claimValue) return { refused: 'no_username' as const };
      const name = userNameFrom(i.usernamePrefix, claimValue);
      if (!name) return { refused: 'bad_username' as const };
      // Never linked by name: a user of that name (local, or another provider's) stays who they are.
      if (await findUser(trx, name)) return { refused: 'name_taken' as const, username: name };
      await insertUser(trx, { name, groups, passwordHash: NO_PASSWORD, sealedTotpSecret: box.seal(newTotpSecret(), totpContext(name)) }, at);
      await insertIdentity(trx, { issuer: iss, subject: sub, username: name, issuerId: i.id, idpGroups, groupsAt: at }, at);
      await appendEvent(trx, { at, actor: 'jit-ssh', action: 'user.created', target: name, outcome: 'ok', clientAddress, details: { issuer: iss, issuer_id: i.id, subject: sub, groups } });
      return { username: name };
    });
    // Two first sign-ins of one person at once: the one that lost the insert finds the user the other made.
    const outcome = await record().catch((e: unknown) => {
      if (isUniqueViolation(e)) return record();
      throw e;
    });
    if ('refused' in outcome && outcome.refused) {
      const claimNames = i.usernameClaims.join(' or ');
      const messages = {
        disabled: 'your jit-ssh account is disabled; ask an administrator',
        no_username: `${i.name} sent no ${claimNames} claim to name you by`,
        bad_username: `${i.name}'s ${claimNames} claim does not make a valid jit-ssh user name`,
        name_taken: `the user name ${outcome.username} already belongs to another account here (a local user or another identity provider's); an administrator must resolve it`,
      };
      return refuse(outcome.refused, messages[outcome.refused]);
    }
    return { username: outcome.username, auth };
  }

  /**
   * Whether the helper's sign-in of `who` must end with a passkey (policy, or the person has one, as
   * on the web); someone without one where policy asks is refused and recorded.
   */
  async function passkeyRequired(i: OidcIssuerConfig, who: { username: string }, clientAddress: string | null): Promise<boolean> {
    const wa = deps.webauthn;
    const has = wa ? await wa.hasPasskey(who.username) : false;
    if (!passkeyAtLogin(deps.mfaLogin?.() ?? 'totp', has)) return false;
    if (wa && has) return true;
    await appendEvent(db, { at: now(), actor: who.username, action: 'webauthn.failed', target: who.username, outcome: 'failed', clientAddress, details: { purpose: 'cli_login', reason: 'no_passkey', issuer_id: i.id } });
    throw noPasskey(who.username, 'at sign-in');
  }

  const sessionFor = (s: { username: string; auth: SessionAuth }, audience: Audience, issuerId: string, clientAddress: string | null, via?: string) =>
    openSession(db, { username: s.username, audience, auth: s.auth, clientAddress, at: now(), ttl: deps.tokenTtl, details: { issuer_id: issuerId, ...(via ? { flow: via } : {}) } });

  return {
    issuers: () => settings.issuers.map((i) => ({ id: i.id, name: i.name })),

    async start(input) {
      const i = issuerOf(input.issuer);
      let cli: AuthFlow['cli'];
      if (input.purpose === 'cli') {
        const { redirectUri: r, codeChallenge, state } = input.cli ?? {};
        if (typeof codeChallenge !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) throw new DomainError('invalid_input', 'code_challenge must be a base64url SHA-256 (43 characters)');
        if (typeof state !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(state)) throw new DomainError('invalid_input', 'state must be 16-128 base64url characters');
        cli = { redirect_uri: loopbackRedirect(r), code_challenge: codeChallenge, state };
      }
      const config = await configOf(i);
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const verifier = oidc.randomPKCECodeVerifier();
      const at = now();
      const flow: AuthFlow = { issuer: i.id, nonce, verifier: box.seal(verifier, FLOW), purpose: input.purpose, ...(input.next ? { next: input.next } : {}), ...(cli ? { cli } : {}) };
      await insertFlow(db, { keyHash: keyHash(state), kind: 'auth', data: flow, now: at, expiresAt: new Date(at.getTime() + AUTH_TTL * 1000) });
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: i.scopes.join(' '),
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      return { url: url.href, state };
    },

    async finish(query, binding, clientAddress) {
      const state = query.get('state') ?? '';
      // The state must be the one this browser was given (its cookie): a link planted by someone else signs no one in here.
      const sameBrowser = binding !== undefined && binding.length === state.length && state.length > 0 && createHash('sha256').update(binding).digest().equals(keyHash(state));
      const flow = sameBrowser ? ((await takeFlow(db, keyHash(state), 'auth', now())) as AuthFlow | undefined) : undefined;
      if (!flow) throw new DomainError('unauthenticated', 'this sign-in is unknown, expired or was started in another browser; start again');
      const i = issuerOf(flow.issuer);
      const toHelper = (params: Record<string, string>) => {
        const u = new URL(flow.cli!.redirect_uri);
        for (const [k, v] of Object.entries({ ...params, state: flow.cli!.state })) u.searchParams.set(k, v);
        return u.href;
      };
      try {
        if (query.get('error')) throw new SignInRefused('provider_error', `${i.name} did not sign you in: ${(query.get('error_description') ?? query.get('error'))!.slice(0, 200)}`);
        const config = await configOf(i);
        const current = new URL(`${redirectUri}?${query}`);
        let tokens;
        try {
          tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: box.open(flow.verifier, FLOW), expectedState: state, expectedNonce: flow.nonce, idTokenExpected: true });
        } catch (e) {
          // Wrong nonce, audience, issuer, an expired or unsigned token, a refused code: openid-client's checks.
          const why = refusalOf(e);
          logger.warn('identity provider sign-in refused', { issuer: i.id, error: why });
          await appendEvent(db, { at: now(), actor: `${i.id}:unknown`, action: 'login.failed', target: null, outcome: 'failed', clientAddress, details: { reason: 'token_refused', issuer_id: i.id, error: why } });
          throw new SignInRefused('token_refused', `${i.name}'s answer did not pass the checks (${why}); start again`);
        }
        const who = await signIn(i, tokens, config, clientAddress);
        if (flow.purpose === 'web') return { purpose: 'web', session: await sessionFor(who, 'web', i.id, clientAddress), next: flow.next ?? '/ui' };
        if (await passkeyRequired(i, who, clientAddress)) {
          // The browser is here: jit-ssh's passkey page comes before the helper's code.
          const page = newToken();
          const loopback: LoopbackFlow = { issuer: i.id, code_challenge: flow.cli!.code_challenge, redirect_uri: flow.cli!.redirect_uri, state: flow.cli!.state };
          await deps.webauthn!.beginCliLogin({ username: who.username, binding: page, auth: who.auth, flow: { loopback } });
          return { purpose: 'cli', redirect: `${CLI_PASSKEY_PATH}${page}` };
        }
        const code = b64(32);
        const at = now();
        const data: CodeFlow = { username: who.username, auth: who.auth, issuer: i.id, code_challenge: flow.cli!.code_challenge };
        await insertFlow(db, { keyHash: keyHash(code), kind: 'code', data, now: at, expiresAt: new Date(at.getTime() + CODE_TTL * 1000) });
        return { purpose: 'cli', redirect: toHelper({ code }) };
      } catch (e) {
        // The helper waits for an answer: it gets the refusal, not silence.
        if (flow.purpose === 'cli' && e instanceof DomainError) return { purpose: 'cli', redirect: toHelper({ error: 'access_denied', error_description: e.message }) };
        throw e;
      }
    },

    async exchange(code, codeVerifier, clientAddress) {
      if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(code) || typeof codeVerifier !== 'string' || !/^[A-Za-z0-9._~-]{43,128}$/.test(codeVerifier)) {
        throw new DomainError('invalid_input', 'code and code_verifier are required');
      }
      const flow = (await takeFlow(db, keyHash(code), 'code', now())) as CodeFlow | undefined;
      const challenge = createHash('sha256').update(codeVerifier).digest('base64url');
      // Taken either way: a code serves one attempt, a wrong verifier burns it.
      if (!flow || !createHash('sha256').update(challenge).digest().equals(createHash('sha256').update(flow.code_challenge).digest())) {
        throw new DomainError('unauthenticated', 'the sign-in code is unknown, used, expired, or not this helper’s; run jit-ssh login --sso again');
      }
      // Under mfa.login: webauthn only a code whose sign-in ended with the passkey page opens a session.
      if ((deps.mfaLogin?.() ?? 'totp') === 'webauthn' && !flow.auth.webauthn) throw new DomainError('mfa_required', 'this server’s policy asks for a passkey at every sign-in (mfa.login: webauthn); run jit-ssh login --sso again');
      return sessionFor(flow, 'api', flow.issuer, clientAddress, 'loopback');
    },

    async startDevice(issuer, clientAddress) {
      const i = issuerOf(issuer);
      const config = await configOf(i);
      if (!config.serverMetadata().device_authorization_endpoint) throw new DomainError('conflict', `${i.name} does not offer the device flow; use jit-ssh login --sso --loopback`);
      let started: oidc.DeviceAuthorizationResponse;
      try {
        started = await oidc.initiateDeviceAuthorization(config, { scope: i.scopes.join(' ') });
      } catch (e) {
        logger.warn('identity provider refused the device flow', { issuer: i.id, error: (e as Error).message });
        throw new DomainError('unavailable', `${i.name} refused to start the device flow: ${(e as Error).message.slice(0, 120)}`);
      }
      const handle = newToken();
      const at = now();
      const interval = Math.max(1, started.interval ?? 5);
      const hash = keyHash(handle);
      const pending: DeviceFlow = { issuer: i.id, status: 'pending', interval };
      await insertFlow(db, { keyHash: hash, kind: 'device', data: pending, now: at, expiresAt: new Date(at.getTime() + started.expires_in * 1000) });
      // This process polls the provider; the helper polls us (any instance reads the outcome from the database).
      const poll = oidc
        .pollDeviceAuthorizationGrant(config, started, undefined, { signal: AbortSignal.any([AbortSignal.timeout(started.expires_in * 1000), closing.signal]) })
        .then(async (tokens) => {
          const who = await signIn(i, tokens, config, clientAddress);
          if (await passkeyRequired(i, who, clientAddress)) {
            // The provider's sign-in is not jit-ssh's passkey: the session waits for the passkey page.
            await deps.webauthn!.beginCliLogin({ username: who.username, binding: passkeyHandle(handle), auth: who.auth, flow: { device: hash.toString('base64url') } });
            await updateFlow(db, hash, { issuer: i.id, status: 'passkey', interval, username: who.username } satisfies DeviceFlow);
            return;
          }
          await updateFlow(db, hash, { issuer: i.id, status: 'done', ...who } satisfies DeviceFlow);
        })
        .catch(async (e: unknown) => {
          const reason = e instanceof DomainError ? e.message : `${i.name} did not sign you in: ${String((e as { error_description?: string }).error_description ?? (e as Error).message).slice(0, 160)}`;
          await updateFlow(db, hash, { issuer: i.id, status: 'failed', reason } satisfies DeviceFlow).catch(() => {});
        })
        .finally(() => polling.delete(poll));
      polling.add(poll);
      return {
        handle,
        user_code: started.user_code,
        verification_uri: started.verification_uri,
        ...(started.verification_uri_complete ? { verification_uri_complete: started.verification_uri_complete } : {}),
        expires_in: started.expires_in,
        interval,
      };
    },

    async pollDevice(handle, clientAddress) {
      if (typeof handle !== 'string' || !looksLikeToken(handle)) throw new DomainError('invalid_input', 'handle is required');
      const hash = keyHash(handle);
      const flow = (await readFlow(db, hash, 'device', now())) as DeviceFlow | undefined;
      if (!flow) throw new DomainError('unauthenticated', 'this sign-in is unknown or has expired; run jit-ssh login --sso again');
      if (flow.status === 'pending') return { status: 'pending', interval: flow.interval };
      if (flow.status === 'passkey') return { status: 'pending', interval: flow.interval, finish_url: `${settings.redirectBase}${CLI_PASSKEY_PATH}${passkeyHandle(handle)}` };
      // Taken once: of two helpers racing with one handle, one gets the session.
      const taken = (await takeFlow(db, hash, 'device', now())) as DeviceFlow | undefined;
      if (!taken || taken.status === 'pending' || taken.status === 'passkey') throw new DomainError('unauthenticated', 'this sign-in was already used; run jit-ssh login --sso again');
      if (taken.status === 'failed') throw new DomainError('unauthenticated', taken.reason);
      return sessionFor(taken, 'api', taken.issuer, clientAddress, 'device');
    },

    async passkeyOptions(handle, site) {
      if (!deps.webauthn || !looksLikeToken(handle)) return null;
      return deps.webauthn.cliLoginOptions({ binding: handle, site });
    },

    async finishPasskey(handle, site, response, clientAddress) {
      if (!deps.webauthn || !looksLikeToken(handle)) throw new DomainError('unauthenticated', 'this sign-in had expired or was already used; run jit-ssh login --sso again');
      let done;
      try {
        done = await deps.webauthn.finishCliLogin({ binding: handle, site, response, clientAddress });
      } catch (e) {
        // The waiting helper hears the refusal (at its next poll, or at its loopback listener), and stops.
        const pending = (e as { pending?: { device?: unknown; loopback?: LoopbackFlow } }).pending;
        if (pending && e instanceof DomainError) {
          if (typeof pending.device === 'string') {
            const hash = Buffer.from(pending.device, 'base64url');
            const flow = (await readFlow(db, hash, 'device', now())) as DeviceFlow | undefined;
            if (flow) await updateFlow(db, hash, { issuer: flow.issuer, status: 'failed', reason: `the passkey step failed: ${e.message}` } satisfies DeviceFlow);
          } else if (pending.loopback) {
            Object.assign(e, { redirect: toLoopback(pending.loopback, { error: 'access_denied', error_description: `the passkey step failed: ${e.message}` }) });
          }
        }
        throw e;
      }
      const loopback = done.flow['loopback'] as LoopbackFlow | undefined;
      if (loopback) {
        // The helper's loopback listener gets its one-time code now, the session naming the passkey.
        const code = b64(32);
        const at = now();
        const data: CodeFlow = { username: done.username, auth: done.auth, issuer: loopback.issuer, code_challenge: loopback.code_challenge };
        await insertFlow(db, { keyHash: keyHash(code), kind: 'code', data, now: at, expiresAt: new Date(at.getTime() + CODE_TTL * 1000) });
        return { username: done.username, redirect: toLoopback(loopback, { code }) };
      }
      const hash = Buffer.from(String(done.flow['device'] ?? ''), 'base64url');
      const flow = (await readFlow(db, hash, 'device', now())) as DeviceFlow | undefined;
      if (!flow || flow.status !== 'passkey' || flow.username !== done.username) throw new DomainError('unauthenticated', 'this sign-in had expired; run jit-ssh login --sso again');
      await updateFlow(db, hash, { issuer: flow.issuer, status: 'done', username: done.username, auth: done.auth } satisfies DeviceFlow);
      return { username: done.username };
    },

    async close() {
      closing.abort();
      await Promise.allSettled([...polling]);
    },
  };
}
