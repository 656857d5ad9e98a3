// Host certificates through the HTTP app on a real database (embedded and
// PostgreSQL): an operator's token enrolls a server's host keys once, for its
// own names only, before it expires; the renewal credential renews; every
// certificate is an OpenSSH host certificate in the issuance log (kind host),
// chained, and the log (user certificates included) still verifies.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { recordHash, sealStream, verifyStream } from '../../src/audit/chain.js';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { openDatabase } from '../../src/db/index.js';
import { certificateContent } from '../../src/db/certificates.js';
import { silentLogger } from '../../src/log.js';
import { createServices } from '../../src/services/index.js';
import { createIssuer } from '../../src/services/issuance.js';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { SECRET_KEY, TEST_AUTH, TestClock, testApp } from '../helpers/identity.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';

const dir = tempDir();
const hostKey = (name: string) => {
  const f = path.join(dir, `ssh_host_${name}_key`);
  execFileSync('ssh-keygen', ['-q', '-t', name === 'ecdsa' ? 'ecdsa' : 'ed25519', '-N', '', '-f', f], { stdio: 'ignore' });
  return execFileSync('cat', [`${f}.pub`], { encoding: 'utf8' }).trim();
};
const ED = hostKey('ed25519');
const EC = hostKey('ecdsa');
const userCa = caSigner('ed25519');
const hostCa = caSigner('ed25519');
const keys = { signer: userCa, publicKeys: [publicKeyLine(userCa, 'jit-ssh-ca')], retiredKeys: [] };
const hostKeys = { signer: hostCa, publicKeys: [publicKeyLine(hostCa, 'jit-ssh-host-ca')], retiredKeys: [] };

function instance(db: TestDb['db'], clock: TestClock) {
  const services = createServices({ auth: TEST_AUTH, webhookSecret: null, hostCertTtl: 30 * 86400 }, db, keys, { box: createSecretBox(SECRET_KEY), logger: silentLogger, now: clock.now, hostKeys });
  return { services, app: testApp(services, { clientAddress: () => '192.0.2.10', hosts: true }) };
}

async function post(app: Awaited<ReturnType<typeof instance>['app']>, p: string, body: unknown) {
  const r = await app.request(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as any };
}

for (const backend of BACKENDS) {
  describe(`host certificates (${backend.name})`, () => {
    let t: TestDb;
    const clock = new TestClock(Date.now());
    let app: Awaited<ReturnType<typeof instance>['app']>;
    let services: ReturnType<typeof instance>['services'];
    before(async () => {
      t = await backend.open();
      const i = instance(t.db, clock);
      services = i.services;
      app = await i.app;
    });
    after(() => t.cleanup());

    test('ok: /v1/host-ca.pub serves the host CA key, not the CA key', async () => {
      const r = await app.request('/v1/host-ca.pub');
      assert.equal(r.status, 200);
      const text = await r.text();
      assert.ok(text.includes(publicKeyLine(hostCa)), text);
      assert.ok(!text.includes(userCa.publicKeyBlob.toString('base64')));
    });

    test('ok: host and user certificates share one chain; it verifies, and user rows hash as before kind existed', async () => {
      const issuer = createIssuer({ db: t.db, signer: userCa });
      const now = Math.floor(Date.now() / 1000);
      const alice = userKey(dir, 'ed25519', undefined, `alice-${backend.name}`);
      await issuer.issue({ username: 'alice', requestId: null, role: null, publicKey: alice.publicLine, principals: ['deploy'], validAfter: new Date((now - 60) * 1000), validBefore: new Date((now + 3600) * 1000), extensions: [], criticalOptions: {}, clientAddress: null });
      await services.hosts.sign({ publicKey: ED, names: ['web-2'] }, 'os:test');
      while ((await sealStream(t.db, 'certificates', new Date())) > 0);
      const v = await verifyStream(t.db, 'certificates');
      assert.equal(v.ok, true, JSON.stringify(v.problem));
      assert.ok(v.sealed >= 2);
      const user = await t.db.selectFrom('certificates').selectAll().where('kind', '=', 'user').executeTakeFirstOrThrow();
      const { kind, ...withoutKind } = user as Record<string, unknown>;
      assert.equal(kind, 'user');
      assert.ok(recordHash('certificates', user).equals(recordHash('certificates', withoutKind)));
      // A host row's kind is part of its hash: turning it into a user row is seen.
      const host = await t.db.selectFrom('certificates').selectAll().where('kind', '=', 'host').executeTakeFirstOrThrow();
      assert.ok(!recordHash('certificates', host).equals(recordHash('certificates', { ...host, kind: 'user' })));
      void certificateContent;
      const list = await services.audit.certificates({ kind: 'host' });
      assert.ok(list.certificates.length >= 1);
      assert.ok(list.certificates.every((c) => c.kind === 'host'));
      assert.ok((await services.audit.certificates({ kind: 'user' })).certificates.every((c) => c.kind === 'user'));
      await assert.rejects(async () => services.audit.certificates({ kind: 'robot' }), /kind must be user or host/);
    });
    test('ok: a token enrolls its host keys once; the certificates are host certificates for its names', async () => {
      const tok = await services.hosts.createToken({ names: ['web-1.example.com', 'web-1'] }, 'os:test');
      assert.match(tok.token, /^jhe_/);
      const r = await post(app, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED, EC] });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.certificates.length, 2);
      assert.match(r.body.renewal_credential, /^jhr_/);
      for (const c of r.body.certificates) {
        const parsed = parseCertificate(Buffer.from(c.certificate.split(' ')[1], 'base64'));
        assert.equal(parsed.certType, 2);
        assert.deepEqual(parsed.principals, ['web-1.example.com', 'web-1']);
        assert.ok(parsed.signatureKey.equals(hostCa.publicKeyBlob), 'signed by the host CA');
        const days = (Date.parse(c.valid_before) - clock.now().getTime()) / 86_400_000;
        assert.ok(days > 29.9 && days <= 30, `30 days, got ${days}`);
      }
      // Logged: kind host, and the secrets only as hashes.
      const rows = await t.db.selectFrom('certificates').selectAll().where('kind', '=', 'host').where('key_id', 'like', `%enroll=${tok.id}%`).execute();
      assert.equal(rows.length, 2);
      const row = await t.db.selectFrom('host_enrollments').selectAll().where('id', '=', tok.id).executeTakeFirstOrThrow();
      assert.ok(row.used_at);
      assert.ok(!Buffer.from(row.token_hash).toString().includes(tok.token));
      assert.notEqual(Buffer.from(row.token_hash).toString('base64url'), tok.token.slice(4));

      const again = await post(app, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED] });
      assert.equal(again.status, 401);
      assert.equal(again.type, 'application/problem+json');
      assert.match(again.body.detail, /unknown, used or expired/);

      // Renewal: the credential renews, for the same names; a wrong one is refused.
      clock.advance(20 * 86400);
      const renewed = await post(app, '/v1/hosts/renew', { renewal_credential: r.body.renewal_credential, public_keys: [ED] });
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
      assert.deepEqual(renewed.body.certificates[0].principals, ['web-1.example.com', 'web-1']);
      assert.ok(Date.parse(renewed.body.renew_until) > Date.parse(r.body.renew_until));
      const wrong = await post(app, '/v1/hosts/renew', { renewal_credential: 'jhr_' + 'A'.repeat(43), public_keys: [ED] });
      assert.equal(wrong.status, 401);
      // Past the end of its certificates, the credential renews nothing.
      clock.advance(31 * 86400);
      const late = await post(app, '/v1/hosts/renew', { renewal_credential: r.body.renewal_credential, public_keys: [ED] });
      assert.equal(late.status, 401);
    });

    test('fail: a token cannot enroll a name it was not made for, and stays usable', async () => {
      const tok = await services.hosts.createToken({ names: ['db-1'] }, 'os:test');
      const r = await post(app, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED], names: ['db-1', 'web-1'] });
      assert.equal(r.status, 403);
      assert.equal(r.type, 'application/problem+json');
      assert.match(r.body.detail, /not made for web-1/);
      const ok = await post(app, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED], names: ['db-1'] });
      assert.equal(ok.status, 201);
    });

    test('fail: an expired token enrolls nothing', async () => {
      const tok = await services.hosts.createToken({ names: ['old-1'], ttl: 600 }, 'os:test');
      clock.advance(601);
      const r = await post(app, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED] });
      assert.equal(r.status, 401);
      assert.equal(await t.db.selectFrom('certificates').select('serial').where(sql<boolean>`principals @> array['old-1']::text[]`).executeTakeFirst(), undefined);
    });

    test('fail: bad input is a clear problem', async () => {
      const tok = await services.hosts.createToken({ names: ['x-1'] }, 'os:test');
      for (const [body, detail] of [
        [{ public_keys: [ED] }, /token must be/],
        [{ token: tok.token, public_keys: [] }, /non-empty list/],
        [{ token: tok.token, public_keys: ['ssh-ed25519 notbase64!'] }, /base64/],
        [{ token: tok.token, public_keys: [ED], names: ['bad name'] }, /not a host name/],
      ] as const) {
        const r = await post(app, '/v1/hosts/enroll', body);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.match(r.body.detail, detail);
      }
      await assert.rejects(services.hosts.createToken({ names: ['y'], ttl: 30 * 86400 }, 'os:test'), /between 1m and 7d/);
    });

  });
}

// Two instances of the app on one PostgreSQL, each with its own pool: the same
// token sent to both at once enrolls exactly once.
describe('host enrollment replay across two instances (postgres)', { skip: BACKENDS.some((b) => b.name === 'postgres') ? false : 'no TEST_DATABASE_URL' }, () => {
  let t: TestDb;
  let second: Awaited<ReturnType<typeof openDatabase>>;
  before(async () => {
    t = await BACKENDS.find((b) => b.name === 'postgres')!.open();
    second = await openDatabase({ databaseUrl: t.url!, dataDir: null, poolSize: 4 });
  });
  after(async () => {
    await second?.close();
    await t?.cleanup();
  });

  test('fail: of two concurrent enrollments with one token, one succeeds and one is refused', async () => {
    const clock = new TestClock(Date.now());
    const a = instance(t.db, clock);
    const b = instance(second.db, clock);
    const [appA, appB] = await Promise.all([a.app, b.app]);
    for (let round = 0; round < 5; round++) {
      const tok = await a.services.hosts.createToken({ names: [`race-${round}`] }, 'os:test');
      const results = await Promise.all([post(appA, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED] }), post(appB, '/v1/hosts/enroll', { token: tok.token, public_keys: [ED] })]);
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 401], JSON.stringify(results.map((r) => r.body)));
      const rows = await t.db.selectFrom('certificates').select('serial').where(sql<boolean>`principals @> array[${`race-${round}`}]::text[]`).execute();
      assert.equal(rows.length, 1);
    }
  });
});
void writeFileSync;
