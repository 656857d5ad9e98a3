// The auditor's and operator's commands as they are run on the CA host, against
// real logins on a real sshd: ingest its log, list and export what was issued,
// revoke a stolen certificate, publish the KRL and watch sshd refuse it; then,
// with the server stopped, verify the log and catch tampering.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/index.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { CA_BIN, cleanEnv, run, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { startSshd, trySsh, type Sshd } from '../helpers/sshd.js';

const USER = os.userInfo().username;

describe('jit-ssh-ca audit, revoke and krl', () => {
  const dir = tempDir();
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    `roles:
  shell:
    principals: [${USER}]
    requesters: [group:engineering]
    max_duration: 1h
    auto_approve:
      - groups: [engineering]
        max_duration: 1h
    certificate:
      extensions: [permit-pty]
`,
  );
  const dataDir = path.join(dir, 'data');
  const env = cleanEnv({ JIT_SSH_DATA_DIR: dataDir, JIT_SSH_POLICY: policy, JIT_SSH_PASSWORD_COST: '14' });
  const krlFile = path.join(dir, 'revoked.krl');
  const ca = (...args: string[]) => run(CA_BIN, args, env);
  let server: ServerProcess;
  let sshd: Sshd;
  let caPub = '';
  const certs: Array<{ serial: string; keyPath: string; certPath: string }> = [];
  after(async () => {
    await sshd?.stop();
    await server?.stop();
  });

  test('setup: a user gets two certificates; the first KRL is written before sshd is told about it', async () => {
    const add = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'engineering', '--password-stdin'], env, 'alice-password-long');
    assert.equal(add.code, 0, add.stderr);
    server = await startServerProcess(env, 60_000, { stopAfter: false });
    caPub = await (await fetch(`${server.url}/v1/ca.pub`)).text();
    const code = execFileSync('oathtool', ['--totp', '-b', secretOf(add.stdout.trim())], { encoding: 'utf8' }).trim();
    const login = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'alice-password-long', totp: code }) });
    const { token } = (await login.json()) as { token: string };
    const post = async (p: string, body: unknown) => (await fetch(`${server.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) })).json() as Promise<Record<string, any>>;
    const req = await post('/v1/requests', { role: 'shell', duration: '30m', reason: 'audit trail test' });
    assert.equal(req['status'], 'approved');
    for (const name of ['laptop', 'desktop']) {
      const key = userKey(dir, 'ed25519', undefined, name);
      const cert = await post('/v1/certificates', { public_key: key.publicLine, request_id: req['id'] });
      const certPath = `${key.path}-cert.pub`;
      writeFileSync(certPath, cert['certificate'] + '\n');
      certs.push({ serial: cert['serial'], keyPath: key.path, certPath });
    }
    const krl = await ca('krl', '--out', krlFile);
    assert.equal(krl.code, 0, krl.stderr);
    assert.match(krl.stderr, /^KRL version 1, 0 revoked certificates still within validity, written to /);
    sshd = await startSshd({ caKeys: caPub.trim().split('\n'), revokedKeys: krlFile }, { stopAfter: false });
  });

  test('ok: sshd logins are ingested once, matched by serial, and shown as used', async () => {
    for (const c of certs) {
      const r = await trySsh({ port: sshd.port, keyPath: c.keyPath, certPath: c.certPath, user: USER, command: 'true' });
      assert.equal(r.code, 0, r.stderr);
    }
    await sshd.waitForLog(new RegExp(`\\(serial ${certs[1]!.serial}\\)`));
    const logFile = path.join(dir, 'auth.log');
    // One login of a certificate from another CA, as sshd would log it.
    writeFileSync(logFile, sshd.log() + `Accepted publickey for ${USER} from 10.1.2.3 port 4242 ssh2: ED25519-CERT SHA256:abc ID other@ca (serial 77) CA ED25519 SHA256:def\n`);
    // And a refusal of the second certificate by another server running OpenSSH 10.1 (its journal, short-iso).
    const refused = certs[1]!;
    const keyId = JSON.parse((await ca('audit', 'list', '--serial', refused.serial, '--format', 'json')).stdout).certificates[0].key_id as string;
    writeFileSync(logFile, `2026-11-22T10:00:00+0000 db-1 sshd-session[4711]: error: Refusing certificate ID "${keyId}" serial=${refused.serial} signed by ED25519 CA SHA256:def via /etc/ssh/jit-ssh/ca.pub:1: Certificate invalid: name is not a listed principal\n`, { flag: 'a' });
    const first = await ca('audit', 'ingest-sshd', logFile, '--hostname', 'web-1', '--json');
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual({ ...JSON.parse(first.stdout), lines: 0 }, { lines: 0, logins: 3, matched: 2, duplicate: 0, unknown: 1, refusals: 1, refusals_matched: 1, refusals_duplicate: 0, refusals_unknown: 0 });
    // Read again, from stdin: nothing is counted twice.
    const again = await run(CA_BIN, ['audit', 'ingest-sshd', '-', '--hostname', 'web-1'], env, readFileSync(logFile, 'utf8'));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /3 certificate logins: 0 recorded, 2 already recorded, 1 by certificates this CA did not issue; 1 certificate refusals: 0 recorded, 1 already recorded, 0 of certificates this CA did not issue\n$/);
    const shown = await ca('audit', 'list', '--serial', refused.serial, '--format', 'json');
    const view = JSON.parse(shown.stdout).certificates[0] as Record<string, unknown>;
    assert.equal(view['refusals'], 1);
    assert.deepEqual(view['last_refusal'], { at: '2026-11-22T10:00:00.000Z', host: 'db-1', reason: 'Certificate invalid: name is not a listed principal' });
    assert.match((await ca('audit', 'list', '--serial', refused.serial)).stdout, / used,refused\n$/);

    const list = await ca('audit', 'list', '--user', 'alice', '--format', 'json');
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout).certificates as Array<Record<string, string | null>>;
    assert.deepEqual(listed.map((c) => c['serial']).sort(), certs.map((c) => c.serial).sort());
    assert.ok(listed.every((c) => c['first_used'] !== null && c['role'] === 'shell'));

    const csv = await ca('audit', 'list', '--format', 'csv', '--role', 'shell');
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.trimEnd().split('\r\n');
    assert.match(rows[0]!, /^serial,issued_at,user,role,principals,/);
    assert.equal(rows.length, 3);
    const tableOut = await ca('audit', 'list', '--serial', certs[0]!.serial);
    assert.match(tableOut.stdout, new RegExp(`^SERIAL +ISSUED +USER +ROLE +PRINCIPALS +UNTIL +FLAGS\\n${certs[0]!.serial} .* alice +shell +${USER} .* used\\n$`));
    const none = await ca('audit', 'list', '--user', 'nobody');
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^no certificates match\n$/);
  });

  test('ok: a revoked certificate is in the signed KRL and sshd refuses it; the other still logs in', async () => {
    const [stolen, kept] = [certs[0]!, certs[1]!];
    const revoke = await ca('revoke', stolen.serial, '--reason', 'laptop stolen at the airport');
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, `revoked 1 certificate: ${stolen.serial}\n`);
    const twice = await ca('revoke', stolen.serial, '--reason', 'laptop stolen at the airport');
    assert.match(twice.stdout, /nothing changed/);

    const sigFile = `${krlFile}.sig`;
    const krl = await ca('krl', '--out', krlFile, '--sig', sigFile);
    assert.equal(krl.code, 0, krl.stderr);
    assert.match(krl.stderr, /^KRL version 2, 1 revoked certificate still within validity/);
    // ssh-keygen's own reading of the KRL, and its check of the detached signature.
    const q = spawnSync('ssh-keygen', ['-Q', '-f', krlFile, stolen.certPath, kept.certPath], { encoding: 'utf8' });
    assert.equal(q.stdout, `${stolen.certPath} (${stolen.certPath}): REVOKED\n${kept.certPath} (${kept.certPath}): ok\n`);
    const allowed = path.join(dir, 'allowed_signers');
    writeFileSync(allowed, caPub.trim().split('\n').filter((l) => !l.startsWith('#')).map((l) => `jit-ssh-ca ${l}\n`).join(''));
    const verify = spawnSync('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'jit-ssh-ca', '-n', 'jit-ssh-krl', '-s', sigFile], { input: readFileSync(krlFile), encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    // What the HTTP API serves is the same KRL, and the CA key list has its own signature.
    // (Both are signed afresh every minute: the KRL's bytes from 28 on skip its signing time.)
    const served = Buffer.from(await (await fetch(`${server.url}/v1/krl`)).arrayBuffer());
    assert.deepEqual(served.subarray(0, 20), readFileSync(krlFile).subarray(0, 20));
    assert.deepEqual(served.subarray(28), readFileSync(krlFile).subarray(28));
    const [list, listSig] = [await (await fetch(`${server.url}/v1/ca.pub`)).text(), await (await fetch(`${server.url}/v1/ca.pub.sig`)).text()];
    writeFileSync(path.join(dir, 'ca.pub.sig'), listSig);
    const caSig = spawnSync('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'jit-ssh-ca', '-n', 'jit-ssh-ca-keys', '-s', path.join(dir, 'ca.pub.sig')], { input: list, encoding: 'utf8' });
    assert.equal(caSig.status, 0, caSig.stderr);

    const from = sshd.log().length;
    const refused = await trySsh({ port: sshd.port, keyPath: stolen.keyPath, certPath: stolen.certPath, user: USER, command: 'echo in' });
    assert.notEqual(refused.code, 0);
    await sshd.waitForLog(/revoked/i, from);
    const ok = await trySsh({ port: sshd.port, keyPath: kept.keyPath, certPath: kept.certPath, user: USER, command: 'echo in' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'in\n');

    const events = await ca('audit', 'events', '--action', 'certificate.revoke', '--json');
    const ev = JSON.parse(events.stdout).events as Array<{ actor: string; details: Record<string, unknown> }>;
    assert.equal(ev.length, 2);
    assert.equal(ev[1]!.actor, `os:${USER}`);
    assert.deepEqual(ev[1]!.details['serials'], [stolen.serial]);
    const listed = JSON.parse((await ca('audit', 'list', '--serial', stolen.serial, '--json')).stdout).certificates;
    assert.notEqual(listed[0].revoked_at, null);
  });

  test('ok: export writes every event as a JSON line; verify passes once the log is sealed', async () => {
    const out = path.join(dir, 'events.jsonl');
    const exp = await ca('audit', 'export', '--stream', 'events', '--out', out);
    assert.equal(exp.code, 0, exp.stderr);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 5, JSON.stringify(lines.map((l) => l.action)));
    assert.ok(lines.every((l) => l.stream === 'events' && typeof l.id === 'string'));
    assert.deepEqual(new Set(lines.map((l) => l.action)), new Set(['user.add', 'login.ok', 'request.create', 'certificate.revoke']));
    // A starting instance signs the heads at once; checkpoints otherwise come every minute, and the
    // one at start-up may have fallen between the two certificates on a loaded machine.
    assert.equal(await server.stop(), 0);
    server = await startServerProcess(env, 60_000, { stopAfter: false });
    await sleep(1500);
    const v = await ca('audit', 'verify');
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^certificates: intact, 2 records on the chain, [12] signed checkpoints\naudit_events: intact, \d+ records on the chain/);
    // The chain leaves the CA host as a file, and is checked with nothing but the CA's public keys.
    const chainFile = path.join(dir, 'chain.jsonl');
    const chain = await ca('audit', 'export', '--chain', '--out', chainFile);
    assert.equal(chain.code, 0, chain.stderr);
    writeFileSync(path.join(dir, 'ca.pub'), caPub);
    const offline = await run(CA_BIN, ['audit', 'verify', '--file', chainFile, '--ca-keys', path.join(dir, 'ca.pub')], cleanEnv());
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, /^certificates: 2 records, [12] signed checkpoints\n/); // every position signed
    writeFileSync(chainFile, readFileSync(chainFile, 'utf8').replace('"alice"', '"mallory"'));
    const altered = await run(CA_BIN, ['audit', 'verify', '--file', chainFile, '--ca-keys', path.join(dir, 'ca.pub')], cleanEnv());
    assert.equal(altered.code, 1);
    assert.match(altered.stderr, /NOT INTACT: certificates: checkpoint at position [12] does not match the records/);
  });

  test('ok: the access review names the grant, its certificates, the logins and the revocation', async () => {
    const md = await ca('audit', 'report', '--since', '1h');
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /^# /);
    assert.match(md.stdout, /laptop stolen at the airport/);
    const json = JSON.parse((await ca('audit', 'report', '--format', 'json')).stdout);
    assert.equal(json.totals.certificates, 2);
    assert.equal(json.never_used.usage_data, true);
    assert.equal(json.revocations.rows[0].serial, certs[0]!.serial);
    const csvFile = path.join(dir, 'review.csv');
    const csv = await ca('audit', 'report', '--format', 'csv', '--out', csvFile);
    assert.equal(csv.code, 0, csv.stderr);
    const rows = readFileSync(csvFile, 'utf8').trimEnd().split('\r\n');
    assert.equal(rows.length, 2);
    assert.match(rows[1]!, /,alice,shell,.*,audit trail test,.*,2,/);
  });

  test('ok/fail: with the server stopped, verify reads the database itself and names an altered record', async () => {
    await sshd.stop();
    assert.equal(await server.stop(), 0);
    const intact = await ca('audit', 'verify', '--json');
    assert.equal(intact.code, 0, intact.stderr);
    assert.equal(JSON.parse(intact.stdout).ok, true);
    const h = await openDatabase({ databaseUrl: null, dataDir });
    try {
      await h.db.connection().execute(async (c) => {
        await sql`set session_replication_role = replica`.execute(c);
        await sql`update certificates set valid_before = valid_before + interval '30 days' where serial = ${certs[1]!.serial}`.execute(c);
      });
    } finally {
      await h.close();
    }
    const v = await ca('audit', 'verify');
    assert.equal(v.code, 1);
    assert.equal(v.stderr, `certificates: NOT INTACT: certificates record ${certs[1]!.serial} (position 2) was altered\n`);
  });

  test('ok/fail: the newest events cut with their links and checkpoints: verify, against the head the server signed and the checkpoints it witnessed, names the cut; so does the offline check', async () => {
    const h = await openDatabase({ databaseUrl: null, dataDir });
    const witnessed = path.join(dataDir, 'checkpoints.jsonl');
    const signed = JSON.parse(readFileSync(path.join(dataDir, 'audit-heads.json'), 'utf8')).streams.audit_events.position as string;
    try {
      // Put back the record the test before altered: from here on only the cut is wrong.
      await h.db.connection().execute(async (c) => {
        await sql`set session_replication_role = replica`.execute(c);
        await sql`update certificates set valid_before = valid_before - interval '30 days' where serial = ${certs[1]!.serial}`.execute(c);
      });
    } finally {
      await h.close();
    }
    const intact = await ca('audit', 'verify', '--checkpoint', witnessed);
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stdout, /\nworkflow: intact, 1 requests, 0 approvals, 1 grants and 1 revocations agree with their chained history\n/);
    assert.match(intact.stdout, /\ncheckpoints: the log holds and extends all \d+ witnessed in .*checkpoints\.jsonl \(newest: .*audit_events \d+/);
    const cut = await openDatabase({ databaseUrl: null, dataDir });
    try {
      await cut.db.connection().execute(async (c) => {
        await sql`set session_replication_role = replica`.execute(c);
        await sql`delete from audit_events where id::text in (select record_key from chain_links where stream = 'audit_events' and position >= ${signed})`.execute(c);
        await sql`delete from chain_links where stream = 'audit_events' and position >= ${signed}`.execute(c);
        await sql`delete from chain_checkpoints where stream = 'audit_events' and position >= ${signed}`.execute(c);
      });
    } finally {
      await cut.close();
    }
    const before = BigInt(signed) - 1n;
    const v = await ca('audit', 'verify', '--checkpoint', witnessed);
    assert.equal(v.code, 1);
    assert.match(v.stderr, new RegExp(`^audit_events: NOT INTACT: the chain ends at position ${before}, before position ${signed} this instance signed at \\S+: records were cut from its end\n`));
    assert.match(v.stderr, new RegExp(`checkpoints\\.jsonl: NOT INTACT: line \\d+: audit_events checkpoint at position ${signed} \\(signed \\S+\\): the log ends at position ${before}: records were cut from its end\n$`));
    const exportFile = path.join(dir, 'cut.jsonl');
    assert.equal((await ca('audit', 'export', '--chain', '--out', exportFile)).code, 0);
    const offline = await run(CA_BIN, ['audit', 'verify', '--file', exportFile, '--ca-keys', path.join(dir, 'ca.pub'), '--checkpoint', witnessed], cleanEnv());
    assert.equal(offline.code, 1, offline.stdout);
    assert.match(offline.stderr, new RegExp(`NOT INTACT: checkpoint file line \\d+: audit_events checkpoint at position ${signed} \\(signed \\S+\\): the export ends at position ${before}: records were cut from its end\n$`));
  });

  test('fail: bad command lines and unknown records get one line on stderr and a non-zero exit', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['revoke', '123'], 2, /^jit-ssh-ca: --reason TEXT is required/],
      [['revoke', '--reason', 'x y z'], 2, /^jit-ssh-ca: name exactly one of/],
      [['revoke', '123', '--user', 'alice', '--reason', 'x y z'], 2, /^jit-ssh-ca: name exactly one of/],
      [['revoke', '123456', '--reason', 'lost it'], 1, /^jit-ssh-ca: no certificate with serial 123456$/],
      [['revoke', 'abc', '--reason', 'lost it'], 1, /^jit-ssh-ca: serial must be a decimal number$/],
      [['audit', 'list', '--format', 'xml'], 2, /^jit-ssh-ca: --format must be one of table, json, csv/],
      [['audit', 'list', '--since', 'yesterday'], 1, /^jit-ssh-ca: since must be an RFC 3339 time or a duration/],
      [['audit', 'frobnicate'], 2, /^jit-ssh-ca: usage: jit-ssh-ca audit list\|events/],
      [['audit', 'ingest-sshd', path.join(dir, 'missing.log')], 1, /^jit-ssh-ca: cannot read .*missing\.log: ENOENT$/],
      [['audit', 'export', '--stream', 'logins'], 2, /^jit-ssh-ca: --stream must be certificates or events/],
      [['audit', 'verify', '--checkpoint', path.join(dir, 'missing.jsonl')], 1, /^jit-ssh-ca: cannot read .*missing\.jsonl: ENOENT$/],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await ca(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trimEnd(), stderr, args.join(" "));
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, args.join(' '));
    }
  });
});
