import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { chainHash, checkpoint, checkpointText, CHECKPOINT_NAMESPACE, recordHash, sealStream, verifyStream } from '../../src/audit/chain.js';
import { appendEvent } from '../../src/db/audit-events.js';
import { exportChain, verifyChainExport } from '../../src/audit/offline.js';
import type { Database } from '../../src/db/schema.js';
import { createIssuer } from '../../src/services/issuance.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { BACKENDS, POSTGRES_URL } from '../helpers/db.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';

const signer = caSigner('ed25519');
const dir = tempDir();
const key = userKey(dir, 'ed25519', undefined, 'k');

async function seed(db: Kysely<Database>, n: number): Promise<string[]> {
  const issuer = createIssuer({ db, signer });
  const now = Date.now();
  const serials: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await issuer.issue({ username: `u${i % 3}`, requestId: `r${i}`, role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(now - 60_000), validBefore: new Date(now + 3_600_000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: null });
    serials.push(c.serial);
    await appendEvent(db, { at: new Date(), actor: `u${i % 3}`, action: 'test.event', target: `r${i}`, outcome: 'ok', clientAddress: null, details: { i } });
  }
  return serials;
}

/** Runs `statement` with triggers off, as only a superuser can: what an attacker with the database would do. */
async function tamper(db: Kysely<Database>, statements: Array<ReturnType<typeof sql>>): Promise<void> {
  await db.connection().execute(async (c) => {
    await sql`set session_replication_role = replica`.execute(c);
    try {
      for (const statement of statements) await statement.execute(c);
    } finally {
      await sql`set session_replication_role = origin`.execute(c);
    }
  });
}

for (const backend of BACKENDS) {
  describe(`hash chain (${backend.name})`, () => {
    test('ok: sealed records verify; unsealed ones are counted, not failed; checkpoints verify with ssh-keygen', async () => {
      const t = await backend.open();
      try {
        await seed(t.db, 12);
        assert.deepEqual(await verifyStream(t.db, 'certificates'), { stream: 'certificates', ok: true, sealed: 0, unsealed: 12, checkpoints: 0, problem: null });
        assert.equal(await sealStream(t.db, 'certificates', new Date(), 5), 5);
        assert.equal(await sealStream(t.db, 'certificates', new Date()), 7);
        assert.equal(await sealStream(t.db, 'certificates', new Date()), 0);
        assert.equal(await sealStream(t.db, 'audit_events', new Date()), 12);
        const at = new Date();
        assert.equal(await checkpoint(t.db, 'certificates', signer, at), 12n);
        assert.equal(await checkpoint(t.db, 'certificates', signer, at), null, 'an already signed head is not signed again');
        const v = await verifyStream(t.db, 'certificates');
        assert.deepEqual(v, { stream: 'certificates', ok: true, sealed: 12, unsealed: 0, checkpoints: 1, problem: null });
        assert.equal((await verifyStream(t.db, 'audit_events')).sealed, 12);
        // Offline: the checkpoint text, its signature and the CA key are all an auditor needs.
        const cp = await t.db.selectFrom('chain_checkpoints').selectAll().executeTakeFirstOrThrow();
        writeFileSync(path.join(dir, 'allowed'), `jit-ssh-ca ${publicKeyLine(signer)}\n`);
        writeFileSync(path.join(dir, 'cp.sig'), cp.signature);
        const out = execFileSync('ssh-keygen', ['-Y', 'verify', '-f', path.join(dir, 'allowed'), '-I', 'jit-ssh-ca', '-n', CHECKPOINT_NAMESPACE, '-s', path.join(dir, 'cp.sig')], {
          input: checkpointText('certificates', 12n, Buffer.from(cp.chain_hash), cp.at),
          encoding: 'utf8',
        });
        assert.match(out, /Good "jit-ssh-checkpoint" signature/);
      } finally {
        await t.cleanup();
      }
    });

    const tampering: Array<[string, (serials: string[]) => Array<ReturnType<typeof sql>>, RegExp]> = [
      ['fail: an altered record is named', (s) => [sql`update certificates set principals = '{root}' where serial = ${s[4]}`], /^certificates record (\d+) \(position 5\) was altered$/],
      ['fail: a deleted record is named', (s) => [sql`delete from certificates where serial = ${s[2]}`], /^certificates record (\d+) \(position 3\) is missing$/],
      ['fail: a deleted link is found', () => [sql`delete from chain_links where stream = 'certificates' and position = 6`], /^the chain has no link at position 6/],
      ['fail: a forged link (record and hash both rewritten) breaks the chain', (s) => [sql`update chain_links set record_hash = sha256('x'::bytea) where stream = 'certificates' and record_key = ${s[7]}`], /^certificates record \d+ \(position 8\) was altered$/],
      ['fail: a removed tail is caught by the signed checkpoint', (s) => [sql`delete from chain_links where stream = 'certificates' and position >= 9`, sql`delete from certificates where serial in (${s[8]}, ${s[9]})`], /^signed checkpoint at position 10 has no link/],
    ];
    for (const [name, statement, problem] of tampering) {
      test(name, async () => {
        const t = await backend.open();
        try {
          const serials = await seed(t.db, 10);
          await sealStream(t.db, 'certificates', new Date());
          await checkpoint(t.db, 'certificates', signer, new Date());
          await tamper(t.db, statement(serials));
          const v = await verifyStream(t.db, 'certificates');
          assert.equal(v.ok, false);
          assert.match(v.problem!.detail, problem);
          const named = problem.exec(v.problem!.detail)?.[1];
          if (named) assert.ok(serials.includes(named));
        } finally {
          await t.cleanup();
        }
      });
    }

    test('fail: a chain rewritten from an altered record onwards is caught by the checkpoint signature', async () => {
      const t = await backend.open();
      try {
        const serials = await seed(t.db, 6);
        await sealStream(t.db, 'certificates', new Date());
        const at = new Date();
        await checkpoint(t.db, 'certificates', signer, at);
        // An attacker with the database alters record 3, then recomputes every hash after it, checkpoint included.
        await tamper(t.db, [sql`update certificates set principals = '{root}' where serial = ${serials[2]}`]);
        const links = await t.db.selectFrom('chain_links').selectAll().where('stream', '=', 'certificates').orderBy('position').execute();
        let chain: Buffer = Buffer.alloc(32);
        const rewrites: Array<ReturnType<typeof sql>> = [];
        for (const l of links) {
          const { rows } = await sql<Record<string, unknown>>`select * from certificates where serial = ${l.record_key}`.execute(t.db);
          const rh = recordHash('certificates', rows[0]!);
          chain = chainHash(chain, rh);
          rewrites.push(sql`update chain_links set record_hash = ${rh}, chain_hash = ${chain} where stream = 'certificates' and position = ${l.position}`);
        }
        rewrites.push(sql`update chain_checkpoints set chain_hash = ${chain} where stream = 'certificates'`);
        await tamper(t.db, rewrites);
        const unsigned = await verifyStream(t.db, 'certificates');
        assert.equal(unsigned.ok, true, 'without the CA keys a full rewrite is consistent: the signature is what catches it');
        const v = await verifyStream(t.db, 'certificates', { trustedKeys: [signer.publicKeyBlob] });
        assert.equal(v.ok, false);
        assert.match(v.problem!.detail, /^signed checkpoint at position 6 has a bad signature: signature does not verify$/);
        const other = caSigner('ed25519');
        const untrusted = await verifyStream(t.db, 'certificates', { trustedKeys: [other.publicKeyBlob] });
        assert.match(untrusted.problem!.detail, /which is not a trusted CA key$/);
      } finally {
        await t.cleanup();
      }
    });

    test('fail: a record slipped in behind the sealed part of the chain is named', async () => {
      const t = await backend.open();
      try {
        await sql`insert into audit_events (at, actor, action, target, outcome, details)
          select now(), 'u', 'test.bulk', g::text, 'ok', '{}'::jsonb from generate_series(1, 5010) g`.execute(t.db);
        while ((await sealStream(t.db, 'audit_events', new Date())) > 0);
        await appendEvent(t.db, { at: new Date(), actor: 'u', action: 'test.event', target: null, outcome: 'ok', clientAddress: null, details: {} });
        const fresh = await verifyStream(t.db, 'audit_events');
        assert.deepEqual([fresh.ok, fresh.sealed, fresh.unsealed], [true, 5010, 1], 'a record newer than the chain is counted, not failed: the sealer will take it');
        // Far behind the head, where the sealer never looks again.
        await sql`insert into audit_events (id, at, actor, action, target, outcome, details) overriding system value
          values (0, now(), 'mallory', 'test.forged', null, 'ok', '{}')`.execute(t.db);
        const v = await verifyStream(t.db, 'audit_events');
        assert.equal(v.ok, false);
        assert.equal(v.problem!.record, '0');
        assert.match(v.problem!.detail, /^audit_events record 0 is not on the chain and never will be/);
      } finally {
        await t.cleanup();
      }
    });

    test('fail: a record dated before the chain head it is sealed after, or after its sealing, is named by the sealer as it seals it and by verify', async () => {
      const t = await backend.open();
      try {
        await seed(t.db, 3);
        await sealStream(t.db, 'audit_events', new Date());
        // Anyone who may insert (the service's role too) writes an event dated three days back, after newer ones.
        await appendEvent(t.db, { at: new Date(Date.now() - 3 * 86_400_000), actor: 'mallory', action: 'login.ok', target: 'mallory', outcome: 'ok', clientAddress: null, details: {} });
        await appendEvent(t.db, { at: new Date(), actor: 'u', action: 'test.event', target: null, outcome: 'ok', clientAddress: null, details: {} });
        const flagged: string[] = [];
        assert.equal(await sealStream(t.db, 'audit_events', new Date(), 1000, (p) => flagged.push(p)), 2, 'it is sealed all the same: a refusal would stall the chain');
        const backdated = /^audit_events record (\d+) \(position 4\) is dated \S+, before the chain head it was sealed after \(\S+\): it was written after the fact$/;
        assert.equal(flagged.length, 1, flagged.join('\n'));
        assert.match(flagged[0]!, backdated);
        const v = await verifyStream(t.db, 'audit_events');
        assert.equal(v.ok, false);
        assert.match(v.problem!.detail, backdated);
        assert.equal(v.problem!.record, backdated.exec(v.problem!.detail)![1]);
        await checkpoint(t.db, 'audit_events', signer, new Date());
        let text = '';
        for await (const chunk of exportChain(t.db, new Date())) text += chunk;
        const offline = await verifyChainExport((async function* () { yield* text.trimEnd().split('\n'); })(), [signer.publicKeyBlob]);
        assert.match(offline.problem ?? '', /^audit_events: record at position 4 is dated \S+, before the records before it \(\S+\): it was written after the fact$/);

        // A certificate dated days ahead is named itself, and does not make the honest ones after it look backdated.
        const ahead = createIssuer({ db: t.db, signer, now: () => new Date(Date.now() + 2 * 86_400_000) });
        await ahead.issue({ username: 'u', requestId: 'r', role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(), validBefore: new Date(Date.now() + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
        await seed(t.db, 2);
        const flaggedCerts: string[] = [];
        await sealStream(t.db, 'certificates', new Date(), 1000, (p) => flaggedCerts.push(p));
        assert.equal(flaggedCerts.length, 1, flaggedCerts.join('\n'));
        assert.match(flaggedCerts[0]!, /^certificates record \d+ \(position 4\) is dated \S+, after it was sealed \(\S+\): its time is false$/);
        assert.match((await verifyStream(t.db, 'certificates')).problem!.detail, /^certificates record \d+ \(position 4\) is dated \S+, after it was sealed/);
      } finally {
        await t.cleanup();
      }
    });

    test('ok/fail: an export of the chain is checked offline with only the CA key; edits, gaps and foreign keys are caught', async () => {
      const t = await backend.open();
      try {
        await seed(t.db, 5);
        for (const stream of ['certificates', 'audit_events'] as const) {
          await sealStream(t.db, stream, new Date());
          await checkpoint(t.db, stream, signer, new Date());
        }
        await seed(t.db, 2);
        await sealStream(t.db, 'certificates', new Date());
        let text = '';
        for await (const chunk of exportChain(t.db, new Date())) text += chunk;
        const lines = text.trimEnd().split('\n');
        const check = (ls: string[], keys = [signer.publicKeyBlob]) => verifyChainExport((async function* () { yield* ls; })(), keys);
        const ok = await check(lines);
        assert.equal(ok.ok, true, ok.problem ?? '');
        assert.deepEqual(ok.streams, [
          { stream: 'certificates', records: 7, checkpoints: 1, signed_through: '5' },
          { stream: 'audit_events', records: 5, checkpoints: 1, signed_through: '5' },
        ]);
        const edited = lines.map((l) => (l.includes('"position":"3"') && l.includes('"type":"link"') && l.includes('"stream":"certificates"') ? l.replace('"deploy"', '"root"') : l));
        assert.match((await check(edited)).problem!, /^certificates: checkpoint at position 5 does not match the records/);
        const gap = lines.filter((l) => !(l.includes('"type":"link"') && l.includes('"stream":"certificates"') && l.includes('"position":"2"')));
        assert.match((await check(gap)).problem!, /^certificates: the export has no record at position 2/);
        const unsigned = lines.filter((l) => !l.includes('"type":"checkpoint"'));
        assert.match((await check(unsigned)).problem!, /^certificates: no signed checkpoint vouches for its 7 records/);
        assert.match((await check(lines, [caSigner('ed25519').publicKeyBlob])).problem!, /which is not a trusted CA key$/);
        assert.match((await check(lines.slice(1))).problem!, /not a jit-ssh-chain\/1 export/);
      } finally {
        await t.cleanup();
      }
    });

    test('fail: a gap wider than a page of the walk is still found, in the database and in an export', async () => {
      const t = await backend.open();
      try {
        await sql`insert into audit_events (at, actor, action, target, outcome, details)
          select now(), 'u', 'test.bulk', g::text, 'ok', '{}'::jsonb from generate_series(1, 4600) g`.execute(t.db);
        while ((await sealStream(t.db, 'audit_events', new Date())) > 0);
        await checkpoint(t.db, 'audit_events', signer, new Date());
        assert.equal((await verifyStream(t.db, 'audit_events')).ok, true);
        await tamper(t.db, [sql`delete from chain_links where stream = 'audit_events' and position between 1000 and 3500`]);
        const v = await verifyStream(t.db, 'audit_events');
        assert.equal(v.ok, false);
        assert.match(v.problem!.detail, /^the chain has no link at position 1000 /);
        let text = '';
        for await (const chunk of exportChain(t.db, new Date())) text += chunk;
        const offline = await verifyChainExport((async function* () { yield* text.trimEnd().split('\n'); })(), [signer.publicKeyBlob]);
        assert.match(offline.problem!, /^audit_events: the export has no record at position 1000 \(line \d+ is position 3501\)/);
      } finally {
        await t.cleanup();
      }
    });

    test('ok/fail: the hash the issuer stored is what gets chained; a row without one is hashed from itself; a wrong one is caught', async () => {
      const t = await backend.open();
      try {
        const serials = await seed(t.db, 3);
        const { rows } = await sql<Record<string, unknown>>`select * from certificates where serial = ${serials[0]}`.execute(t.db);
        assert.deepEqual(Buffer.from(rows[0]!['record_hash'] as Uint8Array), recordHash('certificates', rows[0]!), 'the stored hash is the hash of the row as read back');
        // Written by something other than the issuer: no stored hash.
        await sql`insert into certificates (serial, key_id, username, principals, valid_after, valid_before, extensions, critical_options, public_key_type, public_key_fingerprint, ca_key_fingerprint, certificate)
          values (77, 'k', 'ops', '{deploy}', now(), now() + interval '1 hour', '{}', '{}', 'ssh-ed25519', 'SHA256:a', 'SHA256:b', 'c')`.execute(t.db);
        // A row whose stored hash does not match what it holds (a writer lying, or a row changed before sealing).
        await tamper(t.db, [sql`update certificates set username = 'mallory' where serial = ${serials[2]}`]);
        while ((await sealStream(t.db, 'certificates', new Date())) > 0);
        const v = await verifyStream(t.db, 'certificates');
        assert.equal(v.ok, false);
        assert.equal(v.problem!.record, serials[2]);
        assert.match(v.problem!.detail, /was altered$/);
        assert.equal(v.sealed, 2, 'the records before it, the issuer\'s and the one hashed from itself, check out');
      } finally {
        await t.cleanup();
      }
    });

    test('ok: sealers on two instances and writers at once: every record sealed exactly once', async () => {
      const t = await backend.open();
      try {
        await Promise.all([seed(t.db, 20), sealStream(t.db, 'certificates', new Date()), seed(t.db, 20), sealStream(t.db, 'certificates', new Date())]);
        while ((await sealStream(t.db, 'certificates', new Date())) > 0);
        const v = await verifyStream(t.db, 'certificates');
        assert.deepEqual([v.ok, v.sealed, v.unsealed], [true, 40, 0]);
      } finally {
        await t.cleanup();
      }
    });
  });
}

describe('least privilege (postgres)', { skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL' }, () => {
  test('fail: the service role may add to the logs but never change or remove them', async () => {
    const t = await BACKENDS.find((b) => b.name === 'postgres')!.open();
    try {
      const serials = await seed(t.db, 1);
      await t.db.connection().execute(async (c) => {
        await sql`set role jit_ssh_service`.execute(c);
        try {
          await assert.rejects(sql`update certificates set username = 'x'`.execute(c), /permission denied/);
          await assert.rejects(sql`delete from audit_events`.execute(c), /permission denied/);
          await assert.rejects(sql`delete from chain_links`.execute(c), /permission denied/);
          await assert.rejects(sql`truncate certificates`.execute(c), /permission denied/);
          const { rows } = await sql<{ n: string }>`select count(*) as n from certificates where serial = ${serials[0]}`.execute(c);
          assert.equal(rows[0]!.n, '1');
        } finally {
          await sql`reset role`.execute(c);
        }
      });
    } finally {
      await t.cleanup();
    }
  });
});

describe('sealers on several instances (postgres)', { skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL' }, () => {
  test('ok: a sealer finding another at work leaves the stream to it at once instead of waiting; the records are sealed when it is done', async () => {
    const t = await BACKENDS.find((b) => b.name === 'postgres')!.open();
    try {
      await seed(t.db, 3);
      // Another instance's sealer, in the middle of its transaction.
      await t.db.transaction().execute(async (other) => {
        await sql`select pg_advisory_xact_lock(hashtext('jit-ssh-chain:certificates'))`.execute(other);
        const t0 = Date.now();
        assert.equal(await sealStream(t.db, 'certificates', new Date()), 0);
        assert.ok(Date.now() - t0 < 2_000, 'it did not queue behind the lock');
        assert.equal(await sealStream(t.db, 'audit_events', new Date()), 3, 'the other stream is not held');
      });
      assert.equal(await sealStream(t.db, 'certificates', new Date()), 3);
      const v = await verifyStream(t.db, 'certificates');
      assert.deepEqual([v.ok, v.sealed, v.unsealed], [true, 3, 0]);
    } finally {
      await t.cleanup();
    }
  });
});
