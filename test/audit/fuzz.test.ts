// Bad input to what auditors feed the CA: sshd log lines (anyone who can write
// to syslog can forge one) and chain exports checked offline. Parsing never
// throws and never takes long; ingestion never fails on a line, whatever it
// holds; a damaged export never verifies.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkpoint, sealStream } from '../../src/audit/chain.js';
import { exportChain, verifyChainExport } from '../../src/audit/offline.js';
import { ingestSshdLog, parseSshdLine } from '../../src/audit/usage.js';
import { appendEvent } from '../../src/db/audit-events.js';
import { createIssuer } from '../../src/services/issuance.js';
import { BACKENDS, type Backend, type TestDb } from '../helpers/db.js';
import { check, checkAsync, fc, hostileJsonText, hostileText } from '../helpers/fuzz.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';

const now = new Date('2026-11-23T12:00:00Z');
const defaults = { host: 'web-0', now };
const accepted = (serial: string, id = `alice@jit-ssh req=R serial=${serial}`) =>
  `Accepted publickey for deploy from 10.0.0.5 port 50576 ssh2: ED25519-CERT SHA256:AbC ID ${id} (serial ${serial}) CA ED25519 SHA256:XyZ`;
// One database per backend for the whole file: opening the embedded one takes seconds.
const opened = new Map<string, Promise<TestDb>>();
const database = (backend: Backend) => opened.get(backend.name) ?? opened.set(backend.name, backend.open()).get(backend.name)!;
after(async () => {
  for (const t of opened.values()) await (await t).cleanup();
});

const REAL = [`2026-11-22T15:40:01.123456+01:00 web-1 sshd[811]: ${accepted('42')}`, `Nov 22 15:40:01 web-2 sshd[811]: ${accepted('7')}`, accepted('1234567890123')];

/** A line as sshd might have written it, then damaged: characters replaced, inserted or removed, fields swapped for hostile text. */
const sshdLine = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.tuple(fc.constantFrom(...REAL), fc.array(fc.tuple(fc.nat({ max: 200 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 4 })).map(([line, edits]) =>
    edits.reduce((l, [at, s, drop]) => l.slice(0, at % (l.length + 1)) + s + l.slice((at % (l.length + 1)) + drop), line),
  ),
  fc.tuple(hostileText, hostileText, hostileText, fc.oneof(fc.bigInt({ min: 0n, max: (1n << 70n) }).map(String), hostileText), fc.oneof(fc.integer({ min: 0, max: 200_000 }).map(String), hostileText), fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('9999-12-31T23:59:59-23:59', '0000-01-01T00:00:00+01:00', '2026-02-30T25:61:61Z', 'Feb 31 99:99:99', 'Nov  0 00:00:00'), hostileText)).map(
    ([login, from, host, serial, port, stamp]) => `${stamp} ${host} sshd[1]: Accepted publickey for ${login} from ${from} port ${port} ssh2: ED25519-CERT SHA256:x ID ${login} (serial ${serial}) CA ED25519 SHA256:y`,
  ),
);

describe('sshd log lines', () => {
  test('parsing any line gives null or a login whose every field a database column holds', () => {
    check('sshd line', sshdLine, (line) => {
      const seen = parseSshdLine(line, defaults);
      if (!seen) return;
      assert.match(seen.serial, /^\d{1,20}$/);
      assert.ok(Number.isInteger(seen.port) && seen.port >= 0 && seen.port <= 65535, `port ${seen.port}`);
      assert.match(seen.at.toISOString(), /^\d{4}-/, 'a time with a four-digit year');
      for (const text of [seen.login, seen.source, seen.host]) assert.match(text, /^[^\s\x00-\x1f\x7f]{1,256}$/);
    }, 3000);
  });

  test('regression: a huge line of look-alikes is refused at once (the pattern took 15 s on a 1 MB line)', () => {
    const unit = 'Accepted publickey for a from b port 1 ssh2: X-CERT SHA256:x ID ';
    const started = performance.now();
    assert.equal(parseSshdLine(unit.repeat(Math.ceil(1_000_000 / unit.length)), defaults), null);
    assert.equal(parseSshdLine(unit.repeat(8192 / unit.length - 1), defaults), null);
    assert.ok(performance.now() - started < 1000, `${Math.round(performance.now() - started)} ms`);
  });

  test('regression: lines with NUL, control characters, impossible ports or times are not logins', () => {
    for (const line of [
      `9999-12-31T23:59:59-23:59 web-1 sshd[1]: ${accepted('42')}`,
      `0000-01-01T00:00:00+01:00 web-1 sshd[1]: ${accepted('42')}`,
      `2026-01-01T00:00:00Z web\x00 sshd[1]: ${accepted('42')}`,
      accepted('42').replace('deploy', 'de\x00ploy'),
      accepted('42').replace('10.0.0.5', '10.0.0.5\x1b[2J'),
      accepted('42').replace('50576', '99999'),
    ]) {
      assert.equal(parseSshdLine(line, defaults), null, JSON.stringify(line));
    }
    assert.equal(parseSshdLine(`${accepted('42')}\r`, defaults)?.serial, '42', 'a CRLF log still reads');
  });

  for (const backend of BACKENDS) {
    describe(`ingesting any text (${backend.name})`, () => {
      let t: TestDb;
      let serial = '';
      before(async () => {
        t = await database(backend);
        const key = userKey(tempDir(), 'ed25519');
        const c = await createIssuer({ db: t.db, signer: caSigner('ed25519') }).issue({ username: 'alice', requestId: 'r1', role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
        serial = c.serial;
      });

      test('never fails, and counts every certificate login it finds', async () => {
        // The serial of a real certificate, so lines reach the insert; hostile text around it.
        const lines = fc.array(fc.oneof(sshdLine, sshdLine.map((l) => l.replace(/\(serial [^)]*\)/, `(serial ${serial})`))), { minLength: 1, maxLength: 8 });
        let ours = 0;
        await checkAsync('ingest', lines, async (ls) => {
          const text = ls.join('\n');
          const got = await ingestSshdLog(t.db, text, defaults);
          const logins = text.split('\n').filter((l) => parseSshdLine(l, defaults) !== null).length;
          assert.equal(got.logins, logins);
          assert.equal(got.matched + got.duplicate + got.unknown, logins);
          ours += got.matched + got.duplicate;
        }, 150);
        assert.ok(ours > 10, `only ${ours} lines reached the database`);
      });
    });
  }
});

describe('chain exports checked offline', () => {
  let t: TestDb;
  const signer = caSigner('ed25519');
  let lines: string[] = [];
  const check2 = (ls: string[]) => verifyChainExport((async function* () { yield* ls; })(), [signer.publicKeyBlob]);

  before(async () => {
    t = await database(BACKENDS[0]!);
    const key = userKey(tempDir(), 'ed25519');
    const issuer = createIssuer({ db: t.db, signer });
    for (let i = 0; i < 4; i++) {
      await issuer.issue({ username: `u${i}`, requestId: `r${i}`, role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3_600_000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: null });
      await appendEvent(t.db, { at: new Date(), actor: `u${i}`, action: 'test.event', target: `r${i}`, outcome: 'ok', clientAddress: null, details: { i } });
    }
    for (const stream of ['certificates', 'audit_events'] as const) {
      await sealStream(t.db, stream, new Date());
      await checkpoint(t.db, stream, signer, new Date());
    }
    let text = '';
    for await (const chunk of exportChain(t.db, new Date())) text += chunk;
    lines = text.trimEnd().split('\n');
  });

  test('lines of any JSON or none never make the check throw, and vouch for no record', async () => {
    const header = lines[0]!;
    const arb = fc.tuple(fc.boolean(), fc.array(fc.oneof(hostileJsonText, fc.constantFrom('null', '[]', '1', '"x"', '{}', '{"type":"link"}', '{"type":"link","stream":"certificates","position":"1"}', '{"type":"checkpoint","stream":"audit_events","position":"0","at":null}')), { maxLength: 8 }));
    await checkAsync('random export', arb, async ([withHeader, body]) => {
      const result = await check2(withHeader ? [header, ...body] : body);
      assert.equal(typeof result.ok, 'boolean');
      if (result.ok) assert.ok(result.streams.every((s) => s.records === 0), JSON.stringify(result));
      else assert.ok(result.problem && result.problem.length > 0);
    }, 500);
  });

  test('a damaged real export never verifies, unless the damage touched nothing the signatures cover', async () => {
    assert.equal((await check2(lines)).ok, true);
    /** What an export vouches for: the records in chain order and the signed checkpoints, as values (not as the text they were written in). */
    const sorted = (x: unknown): unknown => (Array.isArray(x) ? x.map(sorted) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, sorted(v)])) : x);
    const covered = (ls: string[]) => {
      const links: string[] = [];
      const checkpoints = new Set<string>();
      for (const l of ls) {
        if (l.trim() === '') continue;
        const v = JSON.parse(l);
        if (v.type === 'link') links.push(`${v.stream} ${BigInt(v.position)} ${JSON.stringify(sorted(v.record))}`);
        if (v.type === 'checkpoint') checkpoints.add(`${v.stream} ${BigInt(v.position)} ${v.chain} ${new Date(v.at).toISOString()} ${String(v.signature).replace(/\s/g, '')}`);
      }
      return [...links, ...[...checkpoints].sort()];
    };
    const original = covered(lines).join('\n');
    const n = lines.length;
    const edit = fc.oneof(
      fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: 2000 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 3 })).map(([i, at, s, drop]) =>
        lines.map((l, j) => (j === i ? l.slice(0, at % l.length) + s + l.slice((at % l.length) + drop) : l)),
      ),
      fc.nat({ max: n - 1 }).map((i) => lines.filter((_, j) => j !== i)),
      fc.nat({ max: n - 1 }).map((i) => [...lines.slice(0, i + 1), lines[i]!, ...lines.slice(i + 1)]),
      fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 })).map(([a, b]) => lines.map((l, j) => (j === a ? lines[b]! : j === b ? lines[a]! : l))),
      fc.tuple(fc.nat({ max: n }), hostileJsonText).map(([at, l]) => [...lines.slice(0, at), l, ...lines.slice(at)]),
    );
    await checkAsync('damaged export', edit, async (ls) => {
      const result = await check2(ls);
      if (result.ok) assert.equal(covered(ls).join('\n'), original, `a damaged export verified:\n${ls.join('\n')}`);
    }, 400);
  });

  test('regression: a line of JSON null, an array or a checkpoint without a time is a finding, not a TypeError', async () => {
    for (const bad of ['null', '[1]', '7']) {
      assert.deepEqual(await check2([bad]), { ok: false, streams: [], problem: 'line 1 is not a JSON object' });
      assert.match((await check2([lines[0]!, bad])).problem!, /^line 2 is not a JSON object$/);
    }
    const cp = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
    const noTime = lines.map((l, i) => (i === cp ? JSON.stringify({ ...JSON.parse(l), at: 'yesterday' }) : l));
    assert.match((await check2(noTime)).problem!, /checkpoint at position \d+ has no valid time$/);
  });
});
