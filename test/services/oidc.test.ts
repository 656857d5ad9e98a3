// Sign-in through an identity provider against a real OpenID Provider
// (oidc-provider on a loopback port), on both databases: the web and
// loopback flows, groups from the token reaching policy, stale groups
// refused, tokens that fail the relying party's checks refused, and users
// kept apart by issuer.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSecretBox } from '../../src/auth/secret-box.js';
import type { OidcSettings } from '../../src/config.js';
import { parsePolicy } from '../../src/core/policy.js';
import { silentLogger } from '../../src/log.js';
import { createServices, type Services } from '../../src/services/index.js';
import type { OidcService } from '../../src/services/oidc.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { SECRET_KEY, TEST_AUTH, TestClock, testApp, secretOf, totpAt } from '../helpers/identity.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';
import { startProvider, providerBrowser, type TestProvider } from '../helpers/oidc-provider.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const BASE = 'http://jit.test';
const CALLBACK = `${BASE}/ui/sso/callback`;

describe('sign-in through an identity provider', () => {
  let a: TestProvider;
  let b: TestProvider;
  before(async () => {
    a = await startProvider({
      redirectUris: [CALLBACK],
      accounts: [
        { login: 'alice', preferred_username: 'alice', email: 'alice@example.com', email_verified: true, groups: ['engineering', 'oncall'] },
        { login: 'dave', preferred_username: 'dave', email: 'dave@elsewhere.org', email_verified: true, groups: ['engineering'] },
      ],
    });
    b = await startProvider({
      redirectUris: [CALLBACK],
      accounts: [
        { login: 'alice', preferred_username: 'alice', groups: ['IdP Engineers'] },
        { login: 'carol', preferred_username: 'carol', groups: [] },
      ],
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  const settings = (): OidcSettings => ({
    redirectBase: BASE,
    issuers: [
      { id: 'a', name: 'Provider A', issuer: a.issuer, clientId: a.clientId, clientSecret: a.clientSecret, scopes: ['openid', 'profile', 'email', 'groups'], usernameClaims: ['preferred_username', 'email'], groupsClaim: 'groups', allowedEmailDomains: ['example.com'], groupMap: null, usernamePrefix: 'a.' },
      // No prefix: B's names are bare; a name already taken is refused, never linked.
      { id: 'b', name: 'Provider B', issuer: b.issuer, clientId: b.clientId, clientSecret: b.clientSecret, scopes: ['openid', 'profile', 'groups'], usernameClaims: ['preferred_username'], groupsClaim: 'groups', allowedEmailDomains: [], groupMap: new Map([['IdP Engineers', ['engineering']]]), usernamePrefix: '' },
    ],
  });

  for (const backend of BACKENDS) {
    describe(backend.name, () => {
      let t: TestDb;
      let oidc: OidcService;
      let app: Awaited<ReturnType<typeof testApp>>;
      let services: Services;
      const clock = new TestClock(Date.now());
      const dir = tempDir('jit-ssh-oidc-');
      const key = userKey(dir, 'ed25519');

      before(async () => {
        t = await backend.open();
        const signer = caSigner('ed25519');
        // Pending requests live a day here: the approval below comes 12 h after the request.
        const policy = parsePolicy(WORKFLOW_POLICY.replace('request_ttl: 1h', 'request_ttl: 24h'));
        services = createServices({ auth: { ...TEST_AUTH, tokenTtl: 2 * 86400, maxGroupAge: 12 * 3600 }, webhookSecret: null, oidc: settings() }, t.db, { signer, publicKeys: [publicKeyLine(signer, 'ca')], retiredKeys: [] }, { box: createSecretBox(SECRET_KEY), policy: () => policy, logger: silentLogger, now: clock.now });
        oidc = services.oidc!;
        app = await testApp(services, { clientAddress: () => '198.51.100.9' });
      });
      after(async () => {
        await oidc?.close();
        await t?.cleanup();
      });

      /** Web sign-in as `login` at `issuer`: the provider's page, then the callback with this browser's state cookie. */
      async function webSignIn(issuer: 'a' | 'b', login: string) {
        const { url, state } = await oidc.start({ issuer, purpose: 'web', next: '/ui/requests/new' });
        const back = new URL(await providerBrowser(issuer === 'a' ? a.issuer : b.issuer).signIn(url, login));
        assert.equal(back.origin + back.pathname, CALLBACK);
        return { back, state };
      }

      /** The helper's loopback flow: start with a PKCE challenge, sign in, redeem the code → an API token. */
      async function cliToken(login: string): Promise<string> {
        const verifier = randomBytes(32).toString('base64url');
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        const helperState = randomBytes(16).toString('base64url');
        const { url, state } = await oidc.start({ issuer: 'a', purpose: 'cli', cli: { redirectUri: 'http://127.0.0.1:49152/callback', codeChallenge: challenge, state: helperState } });
        const back = new URL(await providerBrowser(a.issuer).signIn(url, login));
        const out = await oidc.finish(back.searchParams, state, null);
        assert.equal(out.purpose, 'cli');
        const helper = new URL((out as { redirect: string }).redirect);
        assert.equal(helper.origin + helper.pathname, 'http://127.0.0.1:49152/callback');
        assert.equal(helper.searchParams.get('state'), helperState);
        const code = helper.searchParams.get('code')!;
        // Only the holder of the verifier may redeem the code (and a wrong try burns it).
        const res = await app.request('/v1/auth/sso/exchange', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, code_verifier: verifier }) });
        assert.equal(res.status, 200);
        const session = (await res.json()) as { token: string; username: string };
        assert.equal(session.username, `a.${login}`);
        const again = await app.request('/v1/auth/sso/exchange', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, code_verifier: verifier }) });
        assert.equal(again.status, 401, 'a code serves once');
        return session.token;
      }

      const call = async (token: string, method: string, path: string, body?: unknown) => {
        const r = await app.request(path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
        return { status: r.status, body: (await r.json().catch(() => null)) as any };
      };

      test('ok-web: the provider signs alice in; her user is (iss, sub) with the groups from the token, the session says how', async () => {
        const { back, state } = await webSignIn('a', 'alice');
        const out = await oidc.finish(back.searchParams, state, '198.51.100.9');
        assert.equal(out.purpose, 'web');
        if (out.purpose !== 'web') return;
        assert.equal(out.next, '/ui/requests/new');
        const who = await (await services.auth).authenticate(out.session.token, 'web');
        assert.equal(who?.username, 'a.alice');
        assert.deepEqual(who?.groups, ['engineering', 'oncall']);
        assert.deepEqual(who?.auth, { method: 'oidc', issuer: a.issuer });
        assert.equal(who?.groupsFrom?.issuerId, 'a');
        assert.equal(await (await services.auth).authenticate(out.session.token, 'api'), null, 'a web session is no API token');
        const row = await t.db.selectFrom('oidc_identities').selectAll().where('username', '=', 'a.alice').executeTakeFirstOrThrow();
        assert.deepEqual([row.issuer, row.subject, row.idp_groups], [a.issuer, 'alice', ['engineering', 'oncall']]);
        const event = await t.db.selectFrom('audit_events').selectAll().where('action', '=', 'login.ok').where('actor', '=', 'a.alice').executeTakeFirstOrThrow();
        assert.deepEqual((event.details as any).auth, { method: 'oidc', issuer: a.issuer });
        assert.equal((event.details as any).issuer_id, 'a');
        const user = await t.db.selectFrom('users').selectAll().where('name', '=', 'a.alice').executeTakeFirstOrThrow();
        assert.equal(user.password_hash, '!oidc', 'no jit-ssh password exists for her');
      });

      test('ok-policy: groups from the token reach policy: oncall is auto-approved, and not after leaving the group and signing in again', async () => {
        const token = await cliToken('alice');
        const r = await call(token, 'POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'incident 42' });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        assert.equal(r.body.status, 'approved');
        const cert = await call(token, 'POST', '/v1/certificates', { public_key: key.publicLine, request_id: r.body.id });
        assert.equal(cert.status, 201, JSON.stringify(cert.body));
        a.accounts.get('alice')!.groups = ['engineering'];
        try {
          const token2 = await cliToken('alice');
          const r2 = await call(token2, 'POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'incident 43' });
          assert.equal(r2.status, 201);
          assert.equal(r2.body.status, 'pending', 'no longer oncall: an approver must decide');
          const row = await t.db.selectFrom('users').select('groups').where('name', '=', 'a.alice').executeTakeFirstOrThrow();
          assert.deepEqual(row.groups, ['engineering']);
        } finally {
          a.accounts.get('alice')!.groups = ['engineering', 'oncall'];
        }
      });

      test('fail-age: groups older than the allowed age are refused for requests, certificates and approvals until a new sign-in', async () => {
        const lead = await services.users.add({ name: 'lead', groups: ['sre-leads'], password: 'lead-password-long' }, 'os:test');
        const token = await cliToken('alice');
        const approved = await call(token, 'POST', '/v1/requests', { role: 'web-prod', duration: '2h', reason: 'incident 44' });
        assert.equal(approved.body.status, 'approved');
        a.accounts.get('alice')!.groups = ['engineering'];
        const pending = await call(await cliToken('alice'), 'POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'incident 45' });
        a.accounts.get('alice')!.groups = ['engineering', 'oncall'];
        assert.equal(pending.body.status, 'pending');
        clock.advance(12 * 3600 + 60);
        const cert = await call(token, 'POST', '/v1/certificates', { public_key: key.publicLine, request_id: approved.body.id });
        assert.equal(cert.status, 401);
        assert.equal(cert.body.code, 'sign_in_required');
        assert.match(cert.body.detail, /your groups are from a sign-in with a 12h1m ago, more than the 12h allowed: sign in again/);
        const req = await call(token, 'POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'incident 46' });
        assert.equal(req.body.code, 'sign_in_required');
        // The approver is a local user (no age); the requester's groups are too old to approve on.
        clock.advance(30);
        const login = await app.request('/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'lead', password: 'lead-password-long', totp: totpAt(secretOf(lead.otpauth_uri), clock) }) });
        const leadToken = ((await login.json()) as { token: string }).token;
        const approve = await call(leadToken, 'POST', `/v1/requests/${pending.body.id}/approve`, {});
        assert.equal(approve.status, 409);
        assert.match(approve.body.detail, /a\.alice's groups are from a sign-in with a .* ago, more than the 12h allowed: a\.alice must sign in again/);
        // A new sign-in makes them count again.
        const fresh = await cliToken('alice');
        assert.equal((await call(leadToken, 'POST', `/v1/requests/${pending.body.id}/approve`, {})).status, 200);
        const r = await call(fresh, 'POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'incident 47' });
        assert.equal(r.body.status, 'approved');
      });

      test('fail-state: a callback without this browser’s state, or with another state, signs no one in', async () => {
        const { back, state } = await webSignIn('a', 'alice');
        await assert.rejects(oidc.finish(back.searchParams, undefined, null), /unknown, expired or was started in another browser/);
        const forged = new URLSearchParams(back.searchParams);
        forged.set('state', randomBytes(32).toString('base64url'));
        await assert.rejects(oidc.finish(forged, forged.get('state')!, null), /unknown, expired or was started in another browser/);
        await assert.rejects(oidc.finish(back.searchParams, `${state.slice(0, -1)}x`, null), /started in another browser/);
      });

      test('fail-nonce: an ID token whose nonce is not the one sent is refused by the relying party', async () => {
        const { url, state } = await oidc.start({ issuer: 'a', purpose: 'web' });
        const hash = createHash('sha256').update(state).digest();
        const row = await t.db.selectFrom('oidc_flows').select('data').where('key_hash', '=', hash).executeTakeFirstOrThrow();
        await t.db.updateTable('oidc_flows').set({ data: JSON.stringify({ ...(row.data as object), nonce: 'another-nonce' }) }).where('key_hash', '=', hash).execute();
        const back = new URL(await providerBrowser(a.issuer).signIn(url, 'alice'));
        await assert.rejects(oidc.finish(back.searchParams, state, null), /did not pass the checks.*nonce/);
        const failed = await t.db.selectFrom('audit_events').selectAll().where('action', '=', 'login.failed').orderBy('id', 'desc').executeTakeFirstOrThrow();
        assert.equal((failed.details as any).reason, 'token_refused');
      });

      for (const [name, tamper, why] of [
        ['audience', { audience: 'some-other-client' }, /aud/],
        ['issuer', { issuer: 'https://idp.attacker.example' }, /iss/],
        ['expired', { expiredAgo: 3600 }, /exp|expired|timestamp/],
      ] as const) {
        test(`fail-${name}: an ID token with the wrong ${name} is refused`, async () => {
          const { back, state } = await webSignIn('a', 'alice');
          a.tamperNext(tamper);
          await assert.rejects(oidc.finish(back.searchParams, state, null), (e: Error) => {
            assert.match(e.message, /did not pass the checks/);
            assert.match(e.message, why);
            return true;
          });
        });
      }

      test('ok-issuers: the same user name at two issuers is two users; a name already taken is refused, never linked', async () => {
        const { back, state } = await webSignIn('b', 'alice');
        const out = await oidc.finish(back.searchParams, state, null);
        assert.equal(out.purpose === 'web' && out.session.username, 'alice');
        const ids = await t.db.selectFrom('oidc_identities').select(['username', 'issuer', 'subject']).where('subject', '=', 'alice').orderBy('username').execute();
        assert.deepEqual(ids, [
          { username: 'a.alice', issuer: a.issuer, subject: 'alice' },
          { username: 'alice', issuer: b.issuer, subject: 'alice' },
        ]);
        const bob = await t.db.selectFrom('users').select('groups').where('name', '=', 'alice').executeTakeFirstOrThrow();
        assert.deepEqual(bob.groups, ['engineering'], 'group_map applied');
        await services.users.add({ name: 'carol', groups: ['sre-leads'], password: 'carol-password-long' }, 'os:test');
        const c = await webSignIn('b', 'carol');
        await assert.rejects(oidc.finish(c.back.searchParams, c.state, null), /the user name carol already belongs to another account/);
        assert.equal(await t.db.selectFrom('oidc_identities').select('username').where('subject', '=', 'carol').where('issuer', '=', b.issuer).executeTakeFirst(), undefined);
      });

      test('fail-domain: an e-mail outside the allowed domains is refused', async () => {
        const { back, state } = await webSignIn('a', 'dave');
        await assert.rejects(oidc.finish(back.searchParams, state, null), /e-mail address this server does not accept/);
        assert.equal(await t.db.selectFrom('users').select('name').where('name', '=', 'a.dave').executeTakeFirst(), undefined);
      });

      test('ok-api: the issuers are listed; the helper’s loopback redirect must be its own listener', async () => {
        const list = await app.request('/v1/auth/sso');
        assert.deepEqual(await list.json(), { issuers: [{ id: 'a', name: 'Provider A' }, { id: 'b', name: 'Provider B' }] });
        await assert.rejects(oidc.start({ issuer: 'a', purpose: 'cli', cli: { redirectUri: 'https://evil.example/callback', codeChallenge: 'x'.repeat(43), state: 'y'.repeat(22) } }), /redirect_uri must be http:\/\/127\.0\.0\.1:PORT\/callback/);
        await assert.rejects(oidc.start({ issuer: 'nope', purpose: 'web' }), /no identity provider nope/);
      });

      test('ok-device: the server starts the device grant at the provider; the helper’s poll is pending until approved; a made-up handle is refused', async () => {
        const post = async (path: string, body: unknown) => {
          const r = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          return { status: r.status, body: (await r.json()) as any };
        };
        const started = await post('/v1/auth/sso/device', { issuer: 'a' });
        assert.equal(started.status, 200);
        assert.match(started.body.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
        assert.ok(started.body.verification_uri.startsWith(a.issuer));
        assert.ok(started.body.expires_in > 0 && started.body.interval >= 1);
        const poll = await post('/v1/auth/sso/device/token', { handle: started.body.handle });
        assert.deepEqual(poll, { status: 200, body: { status: 'pending', interval: started.body.interval } });
        const unknown = await post('/v1/auth/sso/device/token', { handle: `jit_${'A'.repeat(43)}` });
        assert.equal(unknown.status, 401);
        assert.match(unknown.body.detail, /unknown or has expired/);
        assert.equal((await post('/v1/auth/sso/device/token', { handle: 'x' })).status, 400);
      });
    });
  }
});
