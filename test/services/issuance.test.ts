// The issuance pipeline end to end on each database: the body vetted (the key
// first) before any lookup, and a signed certificate that is not exactly its
// terms caught before it is logged — no certificate row, no audit event,
// nothing returned.

import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parsePolicy } from '../../src/core/policy.js';
import type { Principal } from '../../src/services/auth.js';
import { CertificateCheckError, createCertificateService, createIssuer, type IssueInput } from '../../src/services/issuance.js';
import type { Signer } from '../../src/ssh/signer.js';
import { countCertificates } from '../helpers/certificate-rows.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');
const ca = caSigner('ed25519');

/** Faulty signers: each returns something other than a good signature over the body it was given. */
const FAULTY: Array<[string, Signer, RegExp]> = [
  // One bit of the signature flipped.
  ['a flipped signature byte', { ...ca, sign: async (data) => { const s = await ca.sign(data); s[s.length - 1]! ^= 0x01; return s; } }, /signature does not verify/],
  // Rewrites the body it is handed (the principal "deploy" becomes "admins") and signs that, validly.
  ['a body with other principals', { ...ca, sign: async (data) => { data.set(Buffer.from('admins'), data.indexOf('deploy')); return ca.sign(data); } }, /principals admins, not deploy/],
  // Signs with a key other than the one it names.
  ['another signing key', { ...ca, sign: (data) => caSigner('ed25519').sign(data) }, /signature does not verify/],
];

async function rowCounts(t: TestDb): Promise<{ certificates: number; events: number }> {
  const { n } = await t.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return { certificates: await countCertificates(t.db), events: Number(n) };
}

for (const backend of BACKENDS) {
  describe(`issuance pipeline: vet, check after signing (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let oncall: Awaited<ReturnType<typeof id.as>>;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      oncall = await id.as(await id.addUser('oncall', ['engineering', 'oncall']));
    });
    after(() => t.cleanup());

    const grant = async () => {
      const r = await oncall('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'deploy the release' });
      assert.equal(r.body.status, 'approved');
      return r.body.id as string;
    };

    test('fail: a garbage key is a 400 naming the key problem, whatever the request id says', async () => {
      const grantId = await grant();
      for (const request_id of ['nope', '', 42, null, '\0', 'x'.repeat(100), '01JNOSUCHGRANT000000000000', grantId]) {
        const res = await oncall('POST', '/v1/certificates', { public_key: 'ssh-dss AAAA', request_id });
        assert.equal(res.status, 400, JSON.stringify(request_id));
        assert.equal(res.body.code, 'invalid_public_key', JSON.stringify(request_id));
        assert.match(res.body.detail, /public key data is truncated or not an SSH public key/);
      }
      const dsa = await oncall('POST', '/v1/certificates', { public_key: userKey(tempDir(), 'dsa').publicLine, request_id: 'nope' });
      assert.equal(dsa.status, 400);
      assert.match(dsa.body.detail, /DSA keys are not accepted/);
      // A good key with a malformed or missing id is answered as before.
      assert.equal((await oncall('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: 'nope' })).status, 404);
      assert.equal((await oncall('POST', '/v1/certificates', { public_key: laptop.publicLine })).status, 400);
      assert.equal((await oncall('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: grantId })).status, 201);
    });

    test('fail: the key is vetted before the grant — a bad key for an ended grant is a 400, not a 409', async () => {
      const grantId = await grant();
      clock.advance(2 * 3600);
      assert.equal((await oncall('POST', '/v1/certificates', { public_key: laptop.publicLine, request_id: grantId })).status, 409);
      const res = await oncall('POST', '/v1/certificates', { public_key: `ssh-ed25519 ${'A'.repeat(40)}`, request_id: grantId });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'invalid_public_key');
    });

    test("fail: a grant's certificate that is not its terms is caught after signing; nothing is logged or returned", async () => {
      const grantId = await grant();
      const principal: Principal = { username: 'oncall', groups: ['engineering', 'oncall'], isAdmin: false, isAuditor: false, expiresAt: new Date(clock.ms + 3600_000), auth: PASSWORD_TOTP };
      const policy = parsePolicy(WORKFLOW_POLICY);
      for (const [label, signer, why] of FAULTY) {
        const service = createCertificateService({ db: t.db, issuer: createIssuer({ db: t.db, signer, now: clock.now }), policy: () => policy, now: clock.now });
        const before = await rowCounts(t);
        await assert.rejects(service.issue({ principal, clientAddress: '192.0.2.7' }, { public_key: laptop.publicLine, request_id: grantId }), (e: unknown) => {
          assert.ok(e instanceof CertificateCheckError, `${label}: ${String(e)}`);
          assert.match(e.message, why, label);
          return true;
        });
        assert.deepEqual(await rowCounts(t), before, `${label}: no certificate row, no audit event`);
      }
      // The same request with an honest signer goes through.
      const honest = createCertificateService({ db: t.db, issuer: createIssuer({ db: t.db, signer: ca, now: clock.now }), policy: () => policy, now: clock.now });
      const before = await rowCounts(t);
      const out = await honest.issue({ principal, clientAddress: '192.0.2.7' }, { public_key: laptop.publicLine, request_id: grantId });
      assert.deepEqual(out.principals, ['deploy']);
      assert.equal((await rowCounts(t)).certificates, before.certificates + 1);
    });

    test('fail: terms given whole are checked the same way; concurrent faulty issuances log nothing', async () => {
      const now = Math.floor(clock.ms / 1000);
      const input: IssueInput = { username: 'alice', requestId: null, role: null, publicKey: laptop.publicLine, principals: ['deploy'], validAfter: new Date((now - 60) * 1000), validBefore: new Date((now + 600) * 1000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: null };
      for (const [label, signer, why] of FAULTY) {
        const issuer = createIssuer({ db: t.db, signer, now: clock.now });
        const before = await rowCounts(t);
        const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => issuer.issue(input)));
        for (const o of outcomes) {
          assert.equal(o.status, 'rejected', label);
          assert.ok(o.reason instanceof CertificateCheckError, `${label}: ${String(o.reason)}`);
          assert.match(o.reason.message, why, label);
        }
        assert.deepEqual(await rowCounts(t), before, label);
      }
    });
  });
}
