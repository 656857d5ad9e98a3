import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { insertCertificates, type CertificateRecord } from '../../src/db/certificates.js';
import { isUniqueViolation } from '../../src/db/errors.js';
import { migrate } from '../../src/db/index.js';
import { migrationProvider } from '../../src/db/migrations/index.js';
import { MAX_SERIAL } from '../../src/ssh/serial.js';
import { countCertificates, findCertificateBySerial } from '../helpers/certificate-rows.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';

function record(overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    serial: 1234n,
    keyId: 'alice@jit-ssh req=r1 serial=1234',
    username: 'alice',
    requestId: 'r1',
    role: 'web-prod',
    principals: ['deploy', 'web'],
    validAfter: new Date('2026-01-01T00:00:00Z'),
    validBefore: new Date('2026-01-01T02:00:00Z'),
    extensions: ['permit-pty'],
    criticalOptions: { 'source-address': '10.0.0.0/8' },
    publicKeyType: 'ssh-ed25519',
    publicKeyFingerprint: 'SHA256:abc',
    caKeyFingerprint: 'SHA256:ca',
    certificate: 'ssh-ed25519-cert-v01@openssh.com AAAA',
    clientAddress: '127.0.0.1',
    issuedAt: new Date('2026-01-01T00:01:00Z'),
    ...overrides,
  };
}

for (const backend of BACKENDS) {
  describe(`certificates table (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: migrations are recorded and a second run applies nothing', async () => {
      assert.deepEqual(await migrate(t.db), []);
      const { rows } = await sql<{ name: string }>`select name from jit_ssh_migrations`.execute(t.db);
      assert.deepEqual(rows.map((r) => r.name), Object.keys(await migrationProvider.getMigrations()));
      assert.equal(rows[0]?.name, '2026-11-22-01-certificates');
    });

    test('ok: a row round-trips with every field intact', async () => {
      const rec = record({ serial: 77n });
      await insertCertificates(t.db, [rec]);
      assert.deepEqual(await findCertificateBySerial(t.db, 77n), rec);
    });

    test('ok: the largest serial (2^63-1) is stored and read back exactly', async () => {
      await insertCertificates(t.db, [record({ serial: MAX_SERIAL })]);
      const got = await findCertificateBySerial(t.db, MAX_SERIAL);
      assert.equal(got?.serial, 9223372036854775807n);
      // And PostgreSQL itself sees the exact value, not a float approximation.
      const { rows } = await sql<{ s: string }>`select serial::text as s from certificates where serial = 9223372036854775807`.execute(t.db);
      assert.equal(rows[0]?.s, '9223372036854775807');
    });

    test('fail: a serial is unique; the violation is recognisable by its constraint', async () => {
      await insertCertificates(t.db, [record({ serial: 555n })]);
      const err = await insertCertificates(t.db, [record({ serial: 555n })]).then(() => null, (e) => e);
      assert.ok(err, 'second insert must fail');
      assert.ok(isUniqueViolation(err, 'certificates_pkey'), `unexpected error ${err}`);
    });

    test('fail: the table refuses serial < 2, no principals and an empty validity window', async () => {
      await assert.rejects(insertCertificates(t.db, [record({ serial: 1n })]), /certificates_serial_range/);
      await assert.rejects(insertCertificates(t.db, [record({ serial: 901n, principals: [] })]), /certificates_principals/);
      const at = new Date('2026-01-01T00:00:00Z');
      await assert.rejects(insertCertificates(t.db, [record({ serial: 902n, validAfter: at, validBefore: at })]), /certificates_validity/);
      assert.equal(await findCertificateBySerial(t.db, 901n), undefined);
    });

    test('ok: the indexes auditors need exist', async () => {
      const { rows } = await sql<{ indexname: string }>`select indexname from pg_indexes where tablename = 'certificates' order by indexname`.execute(t.db);
      const names = rows.map((r) => r.indexname);
      for (const ix of ['certificates_pkey', 'certificates_username_issued_at', 'certificates_request_id', 'certificates_role_issued_at', 'certificates_issued_at', 'certificates_principals', 'certificates_public_key_fingerprint']) {
        assert.ok(names.includes(ix), `missing index ${ix} (have ${names.join(', ')})`);
      }
      assert.ok((await countCertificates(t.db)) >= 2);
    });
  });
}
