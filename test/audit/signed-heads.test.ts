// History a database owner cuts or rewrites while the database alone still
// looks intact: the instance's last signed head (a file in its data
// directory) and the witness log of its checkpoints (outside the database)
// catch it; the running service refuses to sign a head that does not extend
// the last one it signed, logs it and stops being ready.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { chainHash, CHECKPOINT_NAMESPACE, checkpointText, recordHash } from '../../src/audit/chain.js';
import { exportChain, verifyChainExport } from '../../src/audit/offline.js';
import { openWitness, readSignedHeads } from '../../src/audit/signed-heads.js';
import { checkWitness, dbChainLookup, readWitness, witnessIndex } from '../../src/audit/witness-check.js';
import { loadServerConfig } from '../../src/config.js';
import { appendEvent } from '../../src/db/audit-events.js';
import type { Database } from '../../src/db/schema.js';
import type { Fields, Logger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { createAuditService, startSealer } from '../../src/services/audit.js';
import { createIssuer } from '../../src/services/issuance.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { BACKENDS } from '../helpers/db.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';
import { cleanEnv } from '../helpers/process.js';
import { tamper } from '../helpers/tamper.js';

const signer = caSigner('ed25519');
const keys = [signer.publicKeyBlob];
const key = userKey(tempDir(), 'ed25519', undefined, 'k');

async function seed(db: Kysely<Database>, n: number): Promise<void> {
  const issuer = createIssuer({ db, signer });
  for (let i = 0; i < n; i++) {
    await issuer.issue({ username: 'u', requestId: `r${i}`, role: 'web', publicKey: key.publicLine, principals: ['deploy'], validAfter: new Date(Date.now() - 60_000), validBefore: new Date(Date.now() + 3_600_000), extensions: [], criticalOptions: {}, clientAddress: null });
    await appendEvent(db, { at: new Date(), actor: 'u', action: 'test.event', target: `r${i}`, outcome: 'ok', clientAddress: null, details: { i } });
  }
}

function capture(): Logger & { lines: Array<{ level: string; msg: string; fields: Fields }> } {
  const lines: Array<{ level: string; msg: string; fields: Fields }> = [];
  const at = (level: string) => (msg: string, fields: Fields = {}) => void lines.push({ level, msg, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const fileLines = (file: string) => (async function* () { yield* readFileSync(file, 'utf8').split('\n'); })();
const exported = async (db: Kysely<Database>) => {
  let text = '';
  for await (const chunk of exportChain(db, new Date())) text += chunk;
  return text.trimEnd().split('\n');
};
const fromArray = (ls: string[]) => (async function* () { yield* ls; })();

/** One instance's sealer, its signed heads and witness log in `dir`. */
async function instance(db: Kysely<Database>, dir: string, logger = capture()) {
  const witness = await openWitness({ headFile: path.join(dir, 'audit-heads.json'), logFile: path.join(dir, 'checkpoints.jsonl'), logger });
  const sealer = startSealer({ db, signer, logger, intervalMs: 3_600_000, checkpointMs: 0, witness });
  const audit = createAuditService({ db, trustedKeys: keys, signedHeads: () => readSignedHeads(path.join(dir, 'audit-heads.json')) });
  return { witness, sealer, audit, logger, log: path.join(dir, 'checkpoints.jsonl'), heads: path.join(dir, 'audit-heads.json') };
}

for (const backend of BACKENDS) {
  describe(`signed heads and witnessed checkpoints (${backend.name})`, () => {
    test('ok: each checkpoint is a JSON line in the witness log that ssh-keygen verifies; the head file follows it; two instances on one database keep their own', async () => {
      const t = await backend.open();
      try {
        const a = await instance(t.db, tempDir());
        const b = await instance(t.db, tempDir());
        await seed(t.db, 3);
        await a.sealer.runOnce();
        await seed(t.db, 2);
        await b.sealer.runOnce();
        await a.sealer.runOnce();
        const lines = readFileSync(a.log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
        assert.deepEqual(lines.map((l) => [l.type, l.stream, l.position]), [['checkpoint', 'certificates', '3'], ['checkpoint', 'audit_events', '3'], ['checkpoint', 'certificates', '5'], ['checkpoint', 'audit_events', '5']].slice(0, lines.length));
        const last = lines.at(-1)!;
        assert.deepEqual(Object.keys(last).sort(), ['at', 'ca_fingerprint', 'chain', 'position', 'signature', 'stream', 'type']);
        const dir = tempDir();
        writeFileSync(path.join(dir, 'allowed'), `jit-ssh-ca ${publicKeyLine(signer)}\n`);
        writeFileSync(path.join(dir, 'cp.sig'), last.signature);
        const out = execFileSync('ssh-keygen', ['-Y', 'verify', '-f', path.join(dir, 'allowed'), '-I', 'jit-ssh-ca', '-n', CHECKPOINT_NAMESPACE, '-s', path.join(dir, 'cp.sig')], {
          input: checkpointText(last.stream, BigInt(last.position), Buffer.from(last.chain, 'hex'), new Date(last.at)),
          encoding: 'utf8',
        });
        assert.match(out, /Good "jit-ssh-checkpoint" signature/);
        const heads = await readSignedHeads(a.heads);
        assert.equal(heads.get(last.stream)?.position, BigInt(last.position));
        assert.equal(heads.get(last.stream)?.chain.toString('hex'), last.chain);
        assert.ok(a.logger.lines.some((l) => l.msg === 'audit checkpoint signed' && l.fields['chain'] === last.chain), 'the service log witnesses it too');
        for (const x of [a, b]) {
          assert.equal((await x.audit.verify()).ok, true);
          assert.deepEqual(x.sealer.status(), { ok: true, problems: [] });
          const w = await checkWitness(readWitness(fileLines(x.log), keys), dbChainLookup(t.db));
          assert.equal(w.ok, true, w.problem ?? '');
          assert.ok(w.checkpoints >= 2);
        }
        await Promise.all([a.sealer.stop(), b.sealer.stop()]);
      } finally {
        await t.cleanup();
      }
    });

    test('fail: the newest records cut with their links and the checkpoints past the new end: the database alone looks intact, the signed head and the witness log do not', async () => {
      const t = await backend.open();
      try {
        const x = await instance(t.db, tempDir());
        await seed(t.db, 5);
        await x.sealer.runOnce();
        await seed(t.db, 5);
        await x.sealer.runOnce();
        const { rows } = await sql<{ serial: string }>`select serial::text as serial from certificates order by seq desc limit 3`.execute(t.db);
        const serials = rows.map((r) => r.serial);
        await tamper(t.db, [
          sql`delete from certificates where serial in (${sql.join(serials)})`,
          sql`delete from chain_links where stream = 'certificates' and position > 7`,
          sql`delete from chain_checkpoints where stream = 'certificates' and position > 7`,
        ]);
        const dbOnly = await createAuditService({ db: t.db, trustedKeys: keys }).verify();
        assert.equal(dbOnly.streams[0]!.ok, true, 'what the database holds is consistent: the hole this closes');
        const v = await x.audit.verify();
        assert.equal(v.ok, false);
        assert.match(v.streams[0]!.problem!.detail, /^the chain ends at position 7, before position 10 this instance signed at \S+: records were cut from its end$/);
        // The witness log names the first checkpoint the log no longer holds: line 3 is certificates at 10.
        const w = await checkWitness(readWitness(fileLines(x.log), keys), dbChainLookup(t.db));
        assert.equal(w.ok, false);
        assert.match(w.problem!, /^line 3: certificates checkpoint at position 10 \(signed \S+\): the log ends at position 7: records were cut from its end$/);
        const offline = await verifyChainExport(fromArray(await exported(t.db)), keys, await witnessIndex(readWitness(fileLines(x.log), keys)));
        assert.equal(offline.ok, false);
        assert.match(offline.problem!, /^checkpoint file line 3: certificates checkpoint at position 10 \(signed \S+\): the export ends at position 7: records were cut from its end$/);
        // New records are sealed on the cut chain, but never signed.
        await seed(t.db, 2);
        await x.sealer.runOnce();
        const cps = await t.db.selectFrom('chain_checkpoints').select('position').where('stream', '=', 'certificates').orderBy('position').execute();
        assert.deepEqual(cps.map((c) => c.position), ['5']);
        assert.equal(x.sealer.status().ok, false);
        assert.match(x.sealer.status().problems[0]!.detail, /records were cut from its end/);
        assert.ok(x.logger.lines.some((l) => l.level === 'error' && /no longer holds the chain head this instance signed/.test(l.msg) && l.fields['stream'] === 'certificates'));
        await x.sealer.stop();
      } finally {
        await t.cleanup();
      }
    });

    test('fail: an old event rewritten, the chain recomputed from it and the later checkpoints deleted: the running sealer refuses to sign the forged head', async () => {
      const t = await backend.open();
      try {
        const x = await instance(t.db, tempDir());
        await seed(t.db, 4);
        await x.sealer.runOnce();
        await tamper(t.db, [sql`update audit_events set details = '{"i": 99}' where id = 2`]);
        const links = await t.db.selectFrom('chain_links').selectAll().where('stream', '=', 'audit_events').orderBy('position').execute();
        let chain: Buffer = Buffer.alloc(32);
        const rewrites: Array<ReturnType<typeof sql>> = [sql`delete from chain_checkpoints where stream = 'audit_events'`];
        for (const l of links) {
          const { rows } = await sql<Record<string, unknown>>`select * from audit_events where id = ${l.record_key}`.execute(t.db);
          const rh = recordHash('audit_events', rows[0]!);
          chain = chainHash(chain, rh);
          rewrites.push(sql`update chain_links set record_hash = ${rh}, chain_hash = ${chain} where stream = 'audit_events' and position = ${l.position}`);
        }
        await tamper(t.db, rewrites);
        assert.equal((await createAuditService({ db: t.db, trustedKeys: keys }).verify()).streams[1]!.ok, true, 'the database alone is consistent');
        await seed(t.db, 1);
        await x.sealer.runOnce();
        const signed = await t.db.selectFrom('chain_checkpoints').select('position').where('stream', '=', 'audit_events').execute();
        assert.deepEqual(signed, [], 'the forged head was not signed');
        assert.match(x.sealer.status().problems.find((p) => p.stream === 'audit_events')!.detail, /^the chain at position 4 is not the one this instance signed at \S+: the history up to it was rewritten$/);
        assert.equal(x.sealer.status().problems.some((p) => p.stream === 'certificates'), false, 'the other logs are still signed');
        const v = await x.audit.verify();
        assert.match(v.streams[1]!.problem!.detail, /the history up to it was rewritten/);
        const w = await checkWitness(readWitness(fileLines(x.log), keys), dbChainLookup(t.db));
        assert.match(w.problem!, /^line 2: audit_events checkpoint at position 4 \(signed \S+\): the log's chain there is not the one signed: the history up to it was rewritten$/);
        await x.sealer.stop();
      } finally {
        await t.cleanup();
      }
    });
  });
}

describe('the running service (embedded)', () => {
  test('fail: when the log no longer holds the head the service signed, it logs it loudly, signs nothing and /readyz says so', async () => {
    const dir = tempDir();
    const logger = capture();
    const server = await startServer(loadServerConfig(cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data') }), { port: '0' }), logger, { signer });
    try {
      await seed(server.database.db, 3);
      await server.sealer.checkpointNow();
      assert.equal((await server.app.request('/readyz')).status, 200);
      const witnessed = readFileSync(path.join(dir, 'data', 'checkpoints.jsonl'), 'utf8').trimEnd().split('\n');
      assert.ok(witnessed.some((l) => JSON.parse(l).stream === 'certificates' && JSON.parse(l).position === '3'));
      await tamper(server.database.db, [
        sql`delete from certificates where seq = (select max(seq) from certificates)`,
        sql`delete from chain_checkpoints where stream = 'certificates'`,
        sql`delete from chain_links where stream = 'certificates' and position = 3`,
      ]);
      await server.sealer.checkpointNow();
      const ready = await server.app.request('/readyz');
      assert.equal(ready.status, 503);
      assert.match(((await ready.json()) as { detail: string }).detail, /^the audit log no longer holds the chain head this instance signed \(certificates: the chain ends at position 2, before position 3/);
      assert.ok(logger.lines.some((l) => l.level === 'error' && /refusing to sign/.test(l.msg)));
      assert.equal((await server.audit.verify()).ok, false);
    } finally {
      await server.close();
    }
  });
});
