// Passkeys over the real services and both databases, with a software
// authenticator (test/helpers/authenticator.ts) answering as a browser would:
// registration, the passkey step of a sign-in, step-ups bound to a request,
// single-use challenges, the signature counter (a cloned key is refused and
// recorded), and the policy's refusals for users without a passkey.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signInText } from '../../src/audit/report.js';
import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import { DomainError } from '../../src/core/errors.js';
import { signCountVerdict } from '../../src/core/webauthn.js';
import type { Principal } from '../../src/services/auth.js';
import type { RequestView } from '../../src/services/requests.js';
import { COUNTER_REFUSED, type Site } from '../../src/services/webauthn.js';
import { softAuthenticator, type SoftAuthenticator } from '../helpers/authenticator.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { listEvents } from '../helpers/events.js';
import { identity, TestClock } from '../helpers/identity.js';

const SITE: Site = { rpId: 'ca.example.test', origin: 'https://ca.example.test' };

const POLICY = `
mfa:
  login: totp
  approval: webauthn
roles:
  web-prod:
    principals: [deploy]
    requesters: [group:engineering]
    approval:
      approvers: [group:sre-leads]
      required: 1
  vault:
    principals: [vault]
    requesters: [group:engineering]
    require_mfa: webauthn
    auto_approve:
      - groups: [engineering]
`;

test('ok: the signature counter rule (core)', () => {
  const cases: Array<[number, number, string]> = [
    [0, 0, 'ok'], // no counter kept: the single-use challenge guards
    [0, 1, 'ok'],
    [5, 6, 'ok'],
    [5, 500, 'ok'],
    [5, 5, 'not_increasing'], // the same assertion, or a copy that signed as often
    [5, 4, 'not_increasing'], // a copy that signed less often
    [5, 0, 'not_increasing'], // a counter gone back to zero
  ];
  for (const [stored, received, want] of cases) assert.equal(signCountVerdict(stored, received), want, `${stored} → ${received}`);
});

for (const backend of BACKENDS) {
  describe(`passkeys (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    const wa = () => id.services.webauthn;
    let key: SoftAuthenticator;
    let engUser: { name: string; password: string; secret: string };

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, {}, { policy: POLICY });
      engUser = await id.addUser('eng', ['engineering']);
      await id.addUser('lead', ['sre-leads']);
      await id.addUser('nokey', ['sre-leads']);
    });
    after(() => t.cleanup());

    const register = async (username: string, authenticator: SoftAuthenticator, binding = `session-${username}`, name = 'laptop') => {
      const options = await wa().registrationOptions({ username, binding, site: SITE });
      return wa().register({ username, binding, site: SITE, response: JSON.stringify(authenticator.register(options, SITE.origin)), name, clientAddress: '203.0.113.9' });
    };
    const signIn = async (username: string, authenticator: SoftAuthenticator, binding: string) => {
      await wa().beginLogin({ username, binding, auth: PASSWORD_TOTP, next: '/ui/queue' });
      const pending = await wa().loginOptions({ binding, site: SITE });
      assert.ok(pending);
      return { pending, response: authenticator.assert(pending.options, SITE.origin) };
    };
    const principal = async (token: string): Promise<Principal> => (await id.auth.authenticate(token, 'web'))!;

    test('ok: a passkey is registered; its registration answer cannot be used a second time', async () => {
      key = softAuthenticator();
      const options = await wa().registrationOptions({ username: 'lead', binding: 'session-lead', site: SITE });
      assert.equal(options.rp.id, SITE.rpId);
      assert.equal(options.authenticatorSelection?.userVerification, 'required');
      const answer = JSON.stringify(key.register(options, SITE.origin));
      const v = await wa().register({ username: 'lead', binding: 'session-lead', site: SITE, response: answer, name: 'laptop', clientAddress: '203.0.113.9' });
      assert.equal(v.id, key.credentialId);
      assert.equal(v.name, 'laptop');
      assert.deepEqual((await wa().passkeys('lead')).map((p) => p.id), [key.credentialId]);
      await assert.rejects(wa().register({ username: 'lead', binding: 'session-lead', site: SITE, response: answer, name: 'again', clientAddress: null }), (e: DomainError) => e.code === 'invalid_input');
      // Another user's session cannot register with a challenge of lead's.
      const o2 = await wa().registrationOptions({ username: 'lead', binding: 'session-lead', site: SITE });
      await assert.rejects(wa().register({ username: 'eng', binding: 'session-lead', site: SITE, response: JSON.stringify(softAuthenticator().register(o2, SITE.origin)), name: '', clientAddress: null }), (e: DomainError) => e.code === 'invalid_input');
      const events = await listEvents(t.db, { action: 'webauthn.register' });
      assert.deepEqual(events.map((e) => [e.actor, e.details['credential']]), [['lead', key.credentialId]]);
    });

    test('fail: an answer for another origin or RP id is refused', async () => {
      const options = await wa().registrationOptions({ username: 'eng', binding: 'session-eng', site: SITE });
      await assert.rejects(
        wa().register({ username: 'eng', binding: 'session-eng', site: SITE, response: JSON.stringify(softAuthenticator().register(options, 'https://evil.example')), name: '', clientAddress: null }),
        (e: DomainError) => e.code === 'invalid_input',
      );
      assert.equal((await wa().passkeys('eng')).length, 0);
    });

    test('ok: the passkey step of a sign-in opens a session that names the passkey', async () => {
      const { pending, response } = await signIn('lead', key, 'pending-1');
      assert.equal(pending.username, 'lead');
      assert.deepEqual(pending.options.allowCredentials?.map((c) => c.id), [key.credentialId]);
      const out = await wa().finishLogin({ binding: 'pending-1', site: SITE, response: JSON.stringify(response), clientAddress: '203.0.113.9', ttl: 3600 });
      assert.equal(out.next, '/ui/queue');
      const p = await principal(out.token);
      assert.deepEqual(p.auth, { method: 'password+totp', webauthn: key.credentialId });
      const ok = (await listEvents(t.db, { action: 'login.ok', actor: 'lead' })).at(-1)!;
      assert.deepEqual(ok.details['auth'], { method: 'password+totp', webauthn: key.credentialId });
      // The same answer again: the pending sign-in is used up.
      await assert.rejects(wa().finishLogin({ binding: 'pending-1', site: SITE, response: JSON.stringify(response), clientAddress: null, ttl: 3600 }), (e: DomainError) => e.code === 'unauthenticated');
    });

    test('fail: a replayed assertion (captured, sent again for a new sign-in) is refused and recorded', async () => {
      const first = await signIn('lead', key, 'pending-2');
      await wa().finishLogin({ binding: 'pending-2', site: SITE, response: JSON.stringify(first.response), clientAddress: null, ttl: 3600 });
      await wa().beginLogin({ username: 'lead', binding: 'pending-3', auth: PASSWORD_TOTP, next: '/ui' });
      await assert.rejects(wa().finishLogin({ binding: 'pending-3', site: SITE, response: JSON.stringify(first.response), clientAddress: null, ttl: 3600 }), (e: DomainError) => e.code === 'unauthenticated');
      const failed = (await listEvents(t.db, { action: 'webauthn.failed', actor: 'lead' })).at(-1)!;
      assert.equal(failed.details['reason'], 'invalid'); // its challenge is not this sign-in's
    });

    test('fail: a cloned passkey (a copy with a lower signature counter) is refused and recorded; the real one still works', async () => {
      const before = (await wa().passkeys('lead'))[0]!;
      const copy = key.clone(1);
      const { response } = await signIn('lead', copy, 'pending-4');
      await assert.rejects(wa().finishLogin({ binding: 'pending-4', site: SITE, response: JSON.stringify(response), clientAddress: '203.0.113.66', ttl: 3600 }), (e: DomainError) => e.code === 'unauthenticated' && e.message === COUNTER_REFUSED);
      const failed = (await listEvents(t.db, { action: 'webauthn.failed', actor: 'lead' })).at(-1)!;
      assert.deepEqual([failed.details['reason'], failed.details['credential'], failed.details['stored'], failed.details['received'], failed.client_address], ['sign_count', key.credentialId, key.signCount, 2, '203.0.113.66']);
      assert.equal((await wa().passkeys('lead'))[0]!.last_used_at, before.last_used_at, 'the refused copy changed the credential');
      const real = await signIn('lead', key, 'pending-5');
      assert.ok((await wa().finishLogin({ binding: 'pending-5', site: SITE, response: JSON.stringify(real.response), clientAddress: null, ttl: 3600 })).token);
    });

    test('ok: an authenticator that keeps no counter (always 0) is accepted each time', async () => {
      const flat = softAuthenticator({ counting: false });
      await register('eng', flat, 'session-eng', 'synced');
      for (const b of ['pending-e1', 'pending-e2']) {
        const { response } = await signIn('eng', flat, b);
        assert.ok((await wa().finishLogin({ binding: b, site: SITE, response: JSON.stringify(response), clientAddress: null, ttl: 3600 })).token);
      }
    });

    test('fail: without a passkey, the passkey step is refused with mfa_required', async () => {
      await wa().beginLogin({ username: 'nokey', binding: 'pending-n', auth: PASSWORD_TOTP, next: '/ui' });
      await assert.rejects(wa().loginOptions({ binding: 'pending-n', site: SITE }), (e: DomainError) => e.code === 'mfa_required');
      await assert.rejects(wa().stepUpOptions({ username: 'nokey', binding: 's', target: 'R', site: SITE }), (e: DomainError) => e.code === 'mfa_required');
    });

    test('ok: approving under mfa.approval webauthn takes a passkey step-up for that request only; a code is refused with mfa_required', async () => {
      // A passkey that is not registered to the user signs nobody in.
      const stranger = await signIn('eng', softAuthenticator(), 'pending-e3');
      await assert.rejects(wa().finishLogin({ binding: 'pending-e3', site: SITE, response: JSON.stringify(stranger.response), clientAddress: null, ttl: 3600 }), (e: DomainError) => e.code === 'unauthenticated');
      const eng = { principal: { username: 'eng', groups: ['engineering'], isAdmin: false, isAuditor: false, expiresAt: new Date(clock.ms + 3600_000), auth: PASSWORD_TOTP }, clientAddress: null };
      const r1 = (await id.requests.create(eng, { role: 'web-prod', duration: '1h', reason: 'deploy the payments fix' }, false)) as RequestView;
      const r2 = (await id.requests.create(eng, { role: 'web-prod', duration: '1h', reason: 'deploy the search fix now' }, false)) as RequestView;
      const lead: Principal = { username: 'lead', groups: ['sre-leads'], isAdmin: false, isAuditor: false, expiresAt: new Date(clock.ms + 3600_000), auth: PASSWORD_TOTP };
      // No step-up at all: refused, and the message names the passkey.
      await assert.rejects(id.requests.approve({ principal: lead, clientAddress: null }, r1.id, 'ok'), (e: DomainError) => e.code === 'step_up_required' && /passkey/.test(e.message));
      // A TOTP step-up where policy asks for a passkey: refused.
      const totpProof = { method: 'totp' as const, step: 1, purpose: 'request.approve', target: r1.id, at: clock.now().toISOString() };
      await assert.rejects(id.requests.approve({ principal: lead, clientAddress: null, stepUp: totpProof }, r1.id, 'ok'), (e: DomainError) => e.code === 'mfa_required');
      // A passkey step-up for r1, bound to lead's session: verified once.
      const options = await wa().stepUpOptions({ username: 'lead', binding: 'session-lead', target: r1.id, site: SITE });
      const answer = JSON.stringify(key.assert(options, SITE.origin));
      // Not for another request, nor from another session.
      await assert.rejects(wa().verifyStepUp({ username: 'lead', binding: 'session-lead', target: r2.id, purpose: 'request.approve', site: SITE, response: answer, clientAddress: null }), (e: DomainError) => e.code === 'step_up_failed');
      await assert.rejects(wa().verifyStepUp({ username: 'lead', binding: 'other-session', target: r1.id, purpose: 'request.approve', site: SITE, response: answer, clientAddress: null }), (e: DomainError) => e.code === 'step_up_failed');
      const proof = await wa().verifyStepUp({ username: 'lead', binding: 'session-lead', target: r1.id, purpose: 'request.approve', site: SITE, response: answer, clientAddress: null });
      assert.deepEqual([proof.method, proof.credential, proof.target], ['webauthn', key.credentialId, r1.id]);
      await assert.rejects(wa().verifyStepUp({ username: 'lead', binding: 'session-lead', target: r1.id, purpose: 'request.approve', site: SITE, response: answer, clientAddress: null }), (e: DomainError) => e.code === 'step_up_failed');
      // The proof does not serve for r2.
      await assert.rejects(id.requests.approve({ principal: lead, clientAddress: null, stepUp: proof }, r2.id, 'ok'), (e: DomainError) => e.code === 'forbidden');
      const done = await id.requests.approve({ principal: lead, clientAddress: null, stepUp: proof }, r1.id, 'ok');
      assert.equal(done.status, 'approved');
      const ev = (await listEvents(t.db, { action: 'request.approve', target: r1.id }))[0]!;
      assert.deepEqual({ ...(ev.details['step_up'] as object), at: undefined }, { method: 'webauthn', credential: key.credentialId, at: undefined });
      // The access review shows how the approval was confirmed: with which passkey.
      const report = await id.services.audit.report({ since: new Date(clock.ms - 86400_000).toISOString(), until: new Date(clock.ms + 60_000).toISOString() });
      const line = report.grants.rows.find((g) => g.grant_id === r1.id)!;
      assert.deepEqual(line.sign_in.approvers, [{ approver: 'lead', auth: { method: 'password+totp' }, step_up: { method: 'webauthn', credential: key.credentialId } }]);
      assert.ok(signInText(line).includes(`lead: password+totp, approved with passkey ${key.credentialId.slice(0, 12)}`), signInText(line));
    });

    test('ok: a role with require_mfa: webauthn takes requests only from sessions opened with a passkey', async () => {
      const eng = (auth: Principal['auth']) => ({ principal: { username: 'eng', groups: ['engineering'], isAdmin: false, isAuditor: false, expiresAt: new Date(clock.ms + 3600_000), auth }, clientAddress: null });
      await assert.rejects(id.requests.create(eng(PASSWORD_TOTP), { role: 'vault', duration: '1h', reason: 'rotate the vault unseal keys' }, false), (e: DomainError) => e.code === 'mfa_required' && /passkey/.test(e.message));
      const flat = (await wa().passkeys('eng'))[0]!;
      const r = await id.requests.create(eng({ ...PASSWORD_TOTP, webauthn: flat.id }), { role: 'vault', duration: '1h', reason: 'rotate the vault unseal keys' }, false);
      assert.equal(r.status, 'approved');
      // Over the API (a password + code session) the same refusal, as problem+json 403.
      const api = await id.as(engUser);
      const res = await api('POST', '/v1/requests', { role: 'vault', duration: '1h', reason: 'rotate the vault unseal keys' });
      assert.deepEqual([res.status, res.body.code], [403, 'mfa_required']);
    });

    test('ok: an administrator’s MFA reset (user reset-mfa) removes the person’s passkeys, recorded with the reset', async () => {
      const ids = (await wa().passkeys('lead')).map((p) => p.id);
      assert.ok(ids.length > 0);
      await id.users.resetMfa('lead', 'os:test');
      assert.deepEqual(await wa().passkeys('lead'), []);
      const reset = (await listEvents(t.db, { action: 'user.reset_mfa', target: 'lead' })).at(-1)!;
      assert.deepEqual(reset.details['passkeys_removed'], [...ids].sort());
    });
  });
}
