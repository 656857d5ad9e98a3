// The two documents servers fetch, /v1/ca.pub and /v1/krl, through the app on
// a real database: each carries a version that only increases (across
// restarts, instances and a return to an earlier key list) and a signing time
// that moves on every signing period, both covered by the SSHSIG that
// ssh-keygen checks; ssh-keygen still reads the list as a key file.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { createCaKeysPublisher } from '../../src/services/ca-keys.js';
import { createIssuer } from '../../src/services/issuance.js';
import { SIGNING_PERIOD_MS } from '../../src/services/published-version.js';
import { createRevocationService } from '../../src/services/revocation.js';
import { publicKeyLine, type Signer } from '../../src/ssh/signer.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock } from '../helpers/clock.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';

const dir = tempDir();
const current = caSigner('ed25519');
const previous = caSigner('ed25519');
const retired = caSigner('ed25519');
const line = (s: Signer, comment: string) => publicKeyLine(s, comment);
const HEADER = /^# jit-ssh CA key list, version (\d+), signed at (\d+) \((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\)\n/;

/** An instance of the service on `db`: the app with a CA key list and a KRL, as the server wires them. */
function instance(db: TestDb['db'], clock: TestClock, publicKeys: string[], retiredKeys: string[] = []) {
  const caKeys = createCaKeysPublisher({ db, signer: current, publicKeys, retiredKeys, now: clock.now });
  const revocation = createRevocationService({ db, signer: current, caKeys: new Map([[current.fingerprint, current.publicKeyBlob]]), now: clock.now });
  const app = createApp({
    logger: silentLogger,
    bodyLimit: 1024,
    caKeys: () => caKeys.document(),
    krl: () => revocation.krl(),
    ready: async () => {},
    auth: { login: () => Promise.reject(new Error('not in this test')), authenticate: async () => null, logout: async () => {}, firstFactor: () => Promise.reject(new Error('not in this test')) },
    clientAddress: () => null,
    requests: {} as AppDeps['requests'],
    certificates: {} as AppDeps['certificates'],
    reloadPolicy: async () => ({ ok: false, problems: [] }),
    audit: {} as AppDeps['audit'],
  });
  const get = async (p: string) => {
    const res = await app.request(p);
    assert.equal(res.status, 200, p);
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  };
  const caPub = async () => {
    const { res, body } = await get('/v1/ca.pub');
    const m = HEADER.exec(body.toString());
    assert.ok(m, body.toString());
    assert.equal(res.headers.get('x-ca-keys-version'), m[1]);
    return { text: body.toString(), version: Number(m[1]), signedAt: Number(m[2]), iso: m[3]!, sig: (await get('/v1/ca.pub.sig')).body.toString(), res };
  };
  const krl = async () => {
    const { body } = await get('/v1/krl');
    return { bytes: body, version: Number(body.readBigUInt64BE(12)), generatedAt: Number(body.readBigUInt64BE(20)), sig: (await get('/v1/krl.sig')).body.toString() };
  };
  return { caPub, krl, revocation };
}

/** `ssh-keygen -Y verify` of `signature` over `message` by the current CA key, for `namespace`. */
function verifies(message: string | Buffer, signature: string, namespace: string): boolean {
  const allowed = path.join(dir, 'allowed');
  const sig = path.join(dir, 'sig');
  writeFileSync(allowed, `jit-ssh-ca ${line(current, '')}\n`);
  writeFileSync(sig, signature);
  return spawnSync('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'jit-ssh-ca', '-n', namespace, '-s', sig], { input: message }).status === 0;
}

for (const backend of BACKENDS) {
  describe(`signed documents (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: /v1/ca.pub is a TrustedUserCAKeys file with a version and a signing time, all under its signature', async () => {
      const clock = new TestClock();
      const ca = instance(t.db, clock, [line(current, 'jit-ssh-ca'), line(previous, 'previous')], [line(retired, 'old')]);
      const doc = await ca.caPub();
      assert.match(doc.res.headers.get('content-type')!, /^text\/plain/);
      assert.equal(doc.res.headers.get('cache-control'), 'no-cache');
      // The first signing of a new version is at its publication; later ones at each period's start.
      assert.equal(doc.signedAt, Math.floor(clock.ms / 1000));
      assert.equal(new Date(doc.iso).getTime(), doc.signedAt * 1000);
      const [, ...rest] = doc.text.split('\n');
      const retiredBlob = line(retired, '').trim();
      assert.deepEqual(rest, [line(current, 'jit-ssh-ca'), line(previous, 'previous'), `# retired ${retiredBlob}`, '']);
      // ssh-keygen reads exactly the two trusted keys of it (comment lines are skipped, as sshd skips them).
      const file = path.join(dir, 'ca.pub');
      writeFileSync(file, doc.text);
      const listed = spawnSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' });
      assert.equal(listed.status, 0, listed.stderr);
      assert.deepEqual(listed.stdout.trim().split('\n').map((l) => l.split(' ')[1]), [current.fingerprint, previous.fingerprint]);
      // The signature covers the header: another version or signing time does not verify.
      assert.ok(verifies(doc.text, doc.sig, 'jit-ssh-ca-keys'));
      assert.ok(!verifies(doc.text.replace(`version ${doc.version},`, `version ${doc.version + 1},`), doc.sig, 'jit-ssh-ca-keys'));
      assert.ok(!verifies(doc.text.replace(`signed at ${doc.signedAt}`, `signed at ${doc.signedAt + 60}`), doc.sig, 'jit-ssh-ca-keys'));
    });

    test('ok: the CA key list version only increases: across restarts, a return to an earlier list, and instances sharing the database', async () => {
      const clock = new TestClock();
      const before = (await instance(t.db, clock, [line(current, 'jit-ssh-ca')]).caPub()).version;
      // A restart with an announced key: a new version.
      const announced = instance(t.db, clock, [line(current, 'jit-ssh-ca'), line(previous, 'next')]);
      assert.equal((await announced.caPub()).version, before + 1);
      assert.equal((await announced.caPub()).version, before + 1, 'the same list keeps its version');
      // Back to the earlier list (an abandoned rotation): still forward, never its old number.
      const back = instance(t.db, clock, [line(current, 'jit-ssh-ca')]);
      assert.equal((await back.caPub()).version, before + 2);
      // Two instances with the same list, in the same signing period, serve the same bytes.
      const twin = instance(t.db, clock, [line(current, 'jit-ssh-ca')]);
      const [a, b] = [await back.caPub(), await twin.caPub()];
      assert.equal(a.text, b.text);
      assert.ok(verifies(a.text, b.sig, 'jit-ssh-ca-keys'), 'a body from one instance meets the signature of another');
    });

    test('ok: both documents are signed afresh each signing period; their versions move only when their content does', async () => {
      const clock = new TestClock();
      const ca = instance(t.db, clock, [line(current, 'jit-ssh-ca')]);
      const [list1, krl1] = [await ca.caPub(), await ca.krl()];
      assert.ok(verifies(krl1.bytes, krl1.sig, 'jit-ssh-krl'));
      assert.equal(krl1.generatedAt, list1.signedAt);

      // Within the period: the very same documents.
      clock.advance(SIGNING_PERIOD_MS / 1000 / 3);
      assert.equal((await ca.caPub()).text, list1.text);
      assert.deepEqual((await ca.krl()).bytes, krl1.bytes);

      // The next period: the same versions, signed later.
      clock.advance(SIGNING_PERIOD_MS / 1000);
      const [list2, krl2] = [await ca.caPub(), await ca.krl()];
      assert.equal(list2.version, list1.version);
      const periodStart = Math.floor(clock.ms / SIGNING_PERIOD_MS) * (SIGNING_PERIOD_MS / 1000);
      assert.ok(periodStart > list1.signedAt);
      assert.equal(list2.signedAt, periodStart);
      assert.equal(krl2.version, krl1.version);
      assert.equal(krl2.generatedAt, periodStart);
      assert.ok(verifies(krl2.bytes, krl2.sig, 'jit-ssh-krl'));
      assert.ok(!verifies(krl2.bytes, krl1.sig, 'jit-ssh-krl'), 'the signing time is under the signature');

      // A revocation: a new KRL version at once, generated no earlier than the revocation.
      const key = userKey(dir, 'ed25519', undefined, `u${backend.name}`);
      const issued = await createIssuer({ db: t.db, signer: current, now: clock.now }).issue({ username: 'alice', requestId: null, role: null, publicKey: key.publicLine, principals: ['alice'], validAfter: new Date(clock.ms - 60_000), validBefore: new Date(clock.ms + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
      clock.advance(7);
      await ca.revocation.revoke({ serial: issued.serial }, 'laptop stolen', 'test');
      const krl3 = await ca.krl();
      assert.equal(krl3.version, krl2.version + 1);
      assert.equal(krl3.generatedAt, Math.floor(clock.ms / 1000));
      // A second instance agrees on it, byte for byte.
      assert.deepEqual((await instance(t.db, clock, [line(current, 'jit-ssh-ca')]).krl()).bytes, krl3.bytes);
    });
  });
}
