import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { createIssuer, keyIdFor, type IssueInput } from '../../src/services/issuance.js';
import { countCertificates, findCertificateBySerial } from '../helpers/certificate-rows.js';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { parseUserPublicKey } from '../../src/ssh/pubkey.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { caSigner, securityKeyLine, tempDir, userKey } from '../helpers/keys.js';

const signer = caSigner('ed25519');
const dir = tempDir();
const alice = userKey(dir, 'ed25519', undefined, 'alice');

function input(overrides: Partial<IssueInput> = {}): IssueInput {
  const now = Math.floor(Date.now() / 1000);
  return {
    username: 'alice',
    requestId: '01JREQ',
    role: 'web-prod',
    publicKey: alice.publicLine,
    principals: ['deploy'],
    validAfter: new Date((now - 60) * 1000),
    validBefore: new Date((now + 3600) * 1000),
    extensions: ['permit-pty'],
    criticalOptions: {},
    clientAddress: '192.0.2.7',
    ...overrides,
  };
}

for (const backend of BACKENDS) {
  describe(`issuance pipeline (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: the returned certificate is exactly the one logged, with its fields', async () => {
      const issuer = createIssuer({ db: t.db, signer });
      const out = await issuer.issue(input());
      const row = await findCertificateBySerial(t.db, BigInt(out.serial));
      assert.ok(row, 'no log row for the returned certificate');
      assert.equal(row.certificate, out.certificate);
      assert.equal(row.keyId, `alice@jit-ssh req=01JREQ serial=${out.serial}`);
      assert.equal(out.key_id, row.keyId);
      assert.equal(row.caKeyFingerprint, signer.fingerprint);
      assert.equal(row.publicKeyFingerprint, parseUserPublicKey(alice.publicLine).fingerprint);
      assert.equal(row.clientAddress, '192.0.2.7');
      assert.equal(row.role, 'web-prod');
      const parsed = parseCertificate(Buffer.from(out.certificate.split(' ')[1]!, 'base64'));
      assert.equal(parsed.signatureValid, true);
      assert.equal(parsed.serial.toString(), out.serial);
      assert.deepEqual(parsed.principals, ['deploy']);
      assert.equal(new Date(Number(parsed.validBefore) * 1000).toISOString().replace('.000', ''), out.valid_before);
      assert.equal(row.validBefore.toISOString().replace('.000', ''), out.valid_before);
      assert.ok(BigInt(out.serial) >= 2n);
    });

    test('ok: FIDO security-key public keys get certificates too', async () => {
      const issuer = createIssuer({ db: t.db, signer });
      for (const kind of ['sk-ed25519', 'sk-ecdsa'] as const) {
        const out = await issuer.issue(input({ publicKey: securityKeyLine(kind) }));
        assert.match(out.certificate, /^sk-(ssh-ed25519|ecdsa-sha2-nistp256)-cert-v01@openssh\.com /);
      }
    });

    test('fail: no log row, no certificate — a failing write returns nothing', async () => {
      // A trigger makes every insert fail, as a full disk or a lost connection would.
      await sql`create function refuse_insert() returns trigger language plpgsql as $$ begin raise exception 'log unavailable'; end $$`.execute(t.db);
      await sql`create trigger refuse before insert on certificates for each row execute function refuse_insert()`.execute(t.db);
      try {
        const before = await countCertificates(t.db);
        const issuer = createIssuer({ db: t.db, signer });
        await assert.rejects(issuer.issue(input()), /log unavailable/);
        assert.equal(await countCertificates(t.db), before);
      } finally {
        await sql`drop trigger refuse on certificates`.execute(t.db);
        await sql`drop function refuse_insert()`.execute(t.db);
      }
    });

    test('ok: a colliding serial is replaced by a fresh one; the certificate carries the logged serial', async () => {
      const first = await createIssuer({ db: t.db, signer, serial: () => 4242n }).issue(input());
      assert.equal(first.serial, '4242');
      const serials = [4242n, 4243n];
      const second = await createIssuer({ db: t.db, signer, serial: () => serials.shift()! }).issue(input());
      assert.equal(second.serial, '4243');
      assert.equal(parseCertificate(Buffer.from(second.certificate.split(' ')[1]!, 'base64')).serial, 4243n);
      assert.equal(second.key_id, keyIdFor('alice', '01JREQ', 4243n));
    });

    test('fail: a serial that keeps colliding gives up instead of looping', async () => {
      await assert.rejects(createIssuer({ db: t.db, signer, serial: () => 4242n }).issue(input()), (e: { code?: string }) => e.code === '23505');
    });

    test('fail: bad keys and specs are refused before anything is signed or logged', async () => {
      const before = await countCertificates(t.db);
      const issuer = createIssuer({ db: t.db, signer });
      await assert.rejects(issuer.issue(input({ publicKey: 'ssh-ed25519 AAAA' })), { code: 'invalid_public_key' });
      await assert.rejects(issuer.issue(input({ principals: [] })), { code: 'invalid_certificate' });
      await assert.rejects(issuer.issue(input({ principals: ['root,admin'] })), { code: 'invalid_certificate' });
      await assert.rejects(issuer.issue(input({ validBefore: new Date(0) })), { code: 'invalid_certificate' });
      assert.equal(await countCertificates(t.db), before);
    });

    test('ok: concurrent issuance gives every certificate its own serial and row', async () => {
      const issuer = createIssuer({ db: t.db, signer });
      const before = await countCertificates(t.db);
      const out = await Promise.all(Array.from({ length: 40 }, () => issuer.issue(input())));
      assert.equal(new Set(out.map((o) => o.serial)).size, 40);
      assert.equal(await countCertificates(t.db), before + 40);
    });
  });
}
