// Serials are unsigned 64-bit as users and sshd write them, but this CA issues
// them below 2^63 (PostgreSQL's bigint). A valid serial of 2^63 or more names
// no certificate of ours: searching for it finds nothing and revoking it is a
// 404, never a database error answered 500 (the bad-input test of a real
// process found /v1/audit/export?serial=18446744073709551616 answered 500).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DomainError } from '../../src/core/errors.js';
import { parseSerial } from '../../src/ssh/serial.js';
import { createAuditService } from '../../src/services/audit.js';
import { createRevocationService } from '../../src/services/revocation.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { caSigner } from '../helpers/keys.js';

test('parseSerial: stored below 2^63, never from 2^63 to 2^64-1, null for anything else', () => {
  assert.deepEqual(parseSerial('1234'), { kind: 'stored', value: '1234' });
  assert.deepEqual(parseSerial('0009223372036854775807'.slice(-19)), { kind: 'stored', value: '9223372036854775807' });
  assert.deepEqual(parseSerial('9223372036854775808'), { kind: 'never' });
  assert.deepEqual(parseSerial('18446744073709551615'), { kind: 'never' });
  for (const bad of ['18446744073709551616', '99999999999999999999', '-1', '1e3', '', ' 12', '123456789012345678901']) assert.equal(parseSerial(bad), null, bad);
});

for (const backend of BACKENDS) {
  describe(`serials outside the stored range (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('fail: a search by a serial of 2^63 or more finds nothing; one past 2^64 is a 400; revoking either is refused as a domain error', async () => {
      const audit = createAuditService({ db: t.db });
      assert.deepEqual((await audit.certificates({ serial: '9223372036854775808' })).certificates, []);
      await assert.rejects(audit.certificates({ serial: '18446744073709551616' }), (e: unknown) => e instanceof DomainError && e.code === 'invalid_input');
      const signer = caSigner('ed25519');
      const revocation = createRevocationService({ db: t.db, signer, caKeys: new Map([[signer.fingerprint, signer.publicKeyBlob]]) });
      await assert.rejects(revocation.revoke({ serial: '18446744073709551615' }, 'laptop stolen', 'os:test'), (e: unknown) => e instanceof DomainError && e.code === 'not_found');
      await assert.rejects(revocation.revoke({ serial: '18446744073709551616' }, 'laptop stolen', 'os:test'), (e: unknown) => e instanceof DomainError && e.code === 'invalid_input');
    });
  });
}
