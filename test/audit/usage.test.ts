import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { queryCertificates } from '../../src/audit/queries.js';
import { EMPTY_INGEST, ingestSshdLog, parseSshdLine, parseSshdRefusal } from '../../src/audit/usage.js';
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
    // OpenSSH 9.8 moved the per-connection work, and its log lines, to sshd-session (10.0: and sshd-auth).
    [
      'ok: OpenSSH 9.8+ sshd-session line, journal short-iso',
      `2026-11-22T15:40:01+0000 web-1 sshd-session[4242]: ${accepted('42')}`,
      { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '42', host: 'web-1', at: new Date('2026-11-22T15:40:01Z') },
    ],
    ['ok: OpenSSH 9.8+ sshd-session line, classic syslog', `Nov 22 15:40:01 web-2 sshd-session[811]: ${accepted('7')}`, { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '7', host: 'web-2', at: new Date('2026-11-22T15:40:01Z') }],
    ['ok: a security-key certificate login', accepted('8').replace('ED25519-CERT', 'ED25519-SK-CERT'), { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '8', host: 'unknown', at: now }],
    ['ok: another program\'s prefix does not name the host (the default stays)', `2026-11-22T15:40:01Z web-9 sshdx[1]: ${accepted('5')}`, { login: 'deploy', source: '10.0.0.5', port: 50576, serial: '5', host: 'unknown', at: now }],
    ['fail: a 10.1 refusal is not a login', refusing('42', 'Certificate invalid: expired'), null],
  ];
  for (const [name, line, expected] of cases) test(name, () => assert.deepEqual(parseSshdLine(line, defaults), expected));
});

// The forms OpenSSH 10.1 writes (auth2-pubkeyfile.c for TrustedUserCAKeys, with "via FILE:LINE";
// auth2-pubkey.c for AuthorizedPrincipals* refusals, without), with log.c's "error: " level prefix.
function refusing(serial: string, reason: string, opts: { id?: string; via?: string | null } = {}): string {
  const via = opts.via === undefined ? ' via /etc/ssh/jit-ssh/ca.pub:1' : opts.via === null ? '' : ` via ${opts.via}`;
  return `error: Refusing certificate ID "${opts.id ?? `alice@jit-ssh req=R serial=${serial}`}" serial=${serial} signed by ED25519 CA SHA256:XyZ${via}: ${reason}`;
}

describe('sshd 10.1 refusal lines', () => {
  const cases: Array<[string, string, ReturnType<typeof parseSshdRefusal>]> = [
    ['ok: expired, via the TrustedUserCAKeys file, no time stamp', refusing('42', 'Certificate invalid: expired'), { serial: '42', keyId: 'alice@jit-ssh req=R serial=42', reason: 'Certificate invalid: expired', host: 'unknown', at: null }],
    [
      'ok: sshd-session, journal short-iso, another login name',
      `2026-12-01T09:00:00.5+00:00 db-1 sshd-session[77]: ${refusing('7', 'Certificate invalid: name is not a listed principal')}`,
      { serial: '7', keyId: 'alice@jit-ssh req=R serial=7', reason: 'Certificate invalid: name is not a listed principal', host: 'db-1', at: new Date('2026-12-01T09:00:00.500Z') },
    ],
    [
      'ok: refused by the principals command (no "via")',
      `Nov  1 09:00:00 web-1 sshd-session[77]: ${refusing('9', 'Certificate does not contain an authorized principal', { via: null })}`,
      { serial: '9', keyId: 'alice@jit-ssh req=R serial=9', reason: 'Certificate does not contain an authorized principal', host: 'web-1', at: new Date('2026-11-01T09:00:00Z') },
    ],
    ['ok: unknown critical option (an older sshd and verify-required)', refusing('3', 'Certificate contains unsupported critical options'), { serial: '3', keyId: 'alice@jit-ssh req=R serial=3', reason: 'Certificate contains unsupported critical options', host: 'unknown', at: null }],
    [
      'ok: a key ID imitating sshd\'s words does not change the serial or the reason',
      refusing('11', 'Certificate invalid: expired', { id: 'x" serial=1 signed by ED25519 CA SHA256:a: Certificate invalid: not yet valid' }),
      { serial: '11', keyId: 'x" serial=1 signed by ED25519 CA SHA256:a: Certificate invalid: not yet valid', reason: 'Certificate invalid: expired', host: 'unknown', at: null },
    ],
    ['fail: a login is not a refusal', accepted('42'), null],
    ['fail: sshd 9.x refusal lines carry no serial', 'error: Certificate invalid: expired', null],
    ['fail: a serial too long for 64 bits', refusing('123456789012345678901', 'Certificate invalid: expired'), null],
    ['fail: a control character', refusing('4', 'Certificate invalid: expired\u0007'), null],
  ];
  for (const [name, line, expected] of cases) test(name, () => assert.deepEqual(parseSshdRefusal(line, defaults), expected));
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
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), { ...EMPTY_INGEST, lines: 5, logins: 4, matched: 3, duplicate: 0, unknown: 1 });
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), { ...EMPTY_INGEST, lines: 5, logins: 4, matched: 0, duplicate: 3, unknown: 1 });
        const usage = await t.db.selectFrom('certificate_usage').select(['host', 'first_seen', 'last_seen', 'logins']).where('serial', '=', c.serial).orderBy('host').execute();
        assert.deepEqual(usage, [
          { host: 'web-1', first_seen: new Date('2026-11-22T10:00:00Z'), last_seen: new Date('2026-11-22T11:00:00Z'), logins: 2 },
          { host: 'web-2', first_seen: new Date('2026-11-22T12:00:00Z'), last_seen: new Date('2026-11-22T12:00:00Z'), logins: 1 },
        ]);
      } finally {
        await t.cleanup();
      }
    });

    test('ok: 10.1 refusals are recorded as refusals, once, and shown with the certificate; logins stay logins', async () => {
      const t = await backend.open();
      try {
        const issuer = createIssuer({ db: t.db, signer: caSigner('ed25519') });
        const key = userKey(tempDir(), 'ed25519');
        const issue = (requestId: string) => issuer.issue({ username: 'alice', requestId, role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
        const refused = await issue('r1');
        const used = await issue('r2');
        const log = [
          `2026-11-22T10:00:00Z db-1 sshd-session[1]: ${refusing(refused.serial, 'Certificate invalid: name is not a listed principal')}`,
          `2026-11-22T10:05:00Z db-1 sshd-session[2]: ${refusing(refused.serial, 'Certificate does not contain an authorized principal', { via: null })}`,
          // The same refusal twice in one log (overlapping reads), and a line without a time, read twice.
          `2026-11-22T10:05:00Z db-1 sshd-session[2]: ${refusing(refused.serial, 'Certificate does not contain an authorized principal', { via: null })}`,
          refusing(refused.serial, 'Certificate invalid: expired'),
          refusing(refused.serial, 'Certificate invalid: expired'),
          `2026-11-22T10:06:00Z db-1 sshd-session[3]: ${refusing('77', 'Certificate invalid: expired')}`,
          `2026-11-22T10:07:00Z web-1 sshd-session[4]: ${accepted(used.serial)}`,
        ].join('\n');
        const want = { ...EMPTY_INGEST, lines: 7, logins: 1, matched: 1, refusals: 6, refusals_matched: 3, refusals_duplicate: 2, refusals_unknown: 1 };
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), want);
        assert.deepEqual(await ingestSshdLog(t.db, log, defaults), { ...want, matched: 0, duplicate: 1, refusals_matched: 0, refusals_duplicate: 5 });
        const rows = await t.db.selectFrom('certificate_refusals').select(['serial', 'host', 'reason', 'at']).orderBy('at').execute();
        assert.deepEqual(rows, [
          { serial: refused.serial, host: 'db-1', reason: 'Certificate invalid: name is not a listed principal', at: new Date('2026-11-22T10:00:00Z') },
          { serial: refused.serial, host: 'db-1', reason: 'Certificate does not contain an authorized principal', at: new Date('2026-11-22T10:05:00Z') },
          { serial: refused.serial, host: 'unknown', reason: 'Certificate invalid: expired', at: null },
        ]);
        // A refusal is not a use.
        assert.equal(await t.db.selectFrom('certificate_usage').select('serial').where('serial', '=', refused.serial).executeTakeFirst(), undefined);
        const { certificates } = await queryCertificates(t.db, { user: 'alice' });
        const bySerial = new Map(certificates.map((c) => [c.serial, c]));
        const r = bySerial.get(refused.serial)!;
        assert.equal(r.refusals, 3);
        assert.equal(r.first_used, null);
        // The untimed line counts as of its recording (now, well after the timed ones).
        assert.deepEqual(r.last_refusal, { at: null, host: 'unknown', reason: 'Certificate invalid: expired' });
        const u = bySerial.get(used.serial)!;
        assert.equal(u.refusals, 0);
        assert.equal(u.last_refusal, null);
        assert.notEqual(u.first_used, null);
      } finally {
        await t.cleanup();
      }
    });
  });
}
