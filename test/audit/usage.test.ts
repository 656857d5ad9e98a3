import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ingestSshdLog, parseSshdLine } from '../../src/audit/usage.js';
import { createIssuer } from '../../src/services/issuance.js';
import { BACKENDS } from '../helpers/db.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';

const now = new Date('2026-11-23T12:00:00Z');
const defaults = { host: 'unknown', now };
const accepted = (serial: string, id = `alice@jit-ssh req=R serial=${serial}`, port = 50576) =>
  `Accepted publickey for deploy from 10.0.0.5 port ${port} ssh2: ED25519-CERT SHA256:AbC ID ${id} (serial ${serial}) CA ED25519 SHA256:XyZ`;

describe('sshd log lines', () => {
  const cases: Array<[string, string, ReturnType<typeof parseSshdLine>]> = [
    ['ok: sshd -E line (no time stamp) takes the defaults', accepted('42'), { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '42', host: 'unknown', at: now }],
    [
      'ok: rsyslog precise time stamp and host',
      `2026-11-22T15:40:01.123456+01:00 web-1 sshd[811]: ${accepted('42')}`,
      { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '42', host: 'web-1', at: new Date('2026-11-22T14:40:01.123Z') },
    ],
    ['ok: classic syslog line of this year', `Nov 22 15:40:01 web-2 sshd[811]: ${accepted('7')}`, { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '7', host: 'web-2', at: new Date('2026-11-22T15:40:01Z') }],
    ['ok: classic syslog line dated after now is last year', `Dec 31 23:59:59 web-2 sshd[811]: ${accepted('7')}`, { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '7', host: 'web-2', at: new Date('2025-12-31T23:59:59Z') }],
    ['ok: a key ID that imitates sshd\'s text does not hide the real serial', accepted('9', 'evil (serial 1) CA ED25519 SHA256:x'), { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '9', host: 'unknown', at: now }],
    ['fail: a plain key login is not a certificate login', 'Accepted publickey for deploy from 10.0.0.5 port 1 ssh2: ED25519 SHA256:AbC', null],
    ['fail: a refused certificate is not a login', 'error: Certificate invalid: expired', null],
  ];
  for (const [name, line, expected] of cases) test(name, () => assert.deepEqual(parseSshdLine(line, defaults), expected));
});

for (const backend of BACKENDS) {
  describe(`ingesting sshd logs (${backend.name})`, () => {
    test('ok: logins are matched by serial, summed per host and address, and never counted twice', async () => {
      const t = await backend.open();
      try {
        const issuer = createIssuer({ db: t.db, signer: caSigner('ed25519') });
        const key = userKey(tempDir(), 'ed25519');
        const c = await issuer.issue({ username: 'alice', requestId: 'r1', role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
        const log = [
          `2026-11-22T10:00:00Z web-1 sshd[1]: ${accepted(c.serial, undefined, 1000)}`,
          `2026-11-22T11:00:00Z web-1 sshd[2]: ${accepted(c.serial, undefined, 1001)}`,
          `2026-11-22T12:00:00Z web-2 sshd[3]: ${accepted(c.serial, undefined, 1002)}`,
          `2026-11-22T12:00:00Z web-2 sshd[3]: ${accepted('18446744073709551615', undefined, 1003)}`,
          'Nov 22 12:00:01 web-2 sshd[3]: Connection closed by 10.0.0.5 port 1002',
          '',
        ].join('\n');
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), { lines: 5, logins: 4, matched: 3, duplicate: 0, unknown: 1 });
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), { lines: 5, logins: 4, matched: 0, duplicate: 3, unknown: 1 });
        const usage = await t.db.selectFrom('certificate_usage').select(['host', 'first_seen', 'last_seen', 'logins']).where('serial', '=', c.serial).orderBy('host').execute();
        assert.deepEqual(usage, [
          { host: 'web-1', first_seen: new Date('2026-11-22T10:00:00Z'), last_seen: new Date('2026-11-22T11:00:00Z'), logins: 2 },
          { host: 'web-2', first_seen: new Date('2026-11-22T12:00:00Z'), last_seen: new Date('2026-11-22T12:00:00Z'), logins: 1 },
        ]);
      } finally {
        await t.cleanup();
      }
    });
  });
}
