// Several jit-ssh-ca processes on one PostgreSQL database, the way to outgrow
// one machine (README, "Running several instances"): every piece of state is
// in the database, so whichever instance a load balancer picks answers the
// same. Under load on both: serials unique and every certificate logged; a
// TOTP code accepted once across both; failed logins counted together, so a
// lockout holds on both, also against a parallel burst; approvals decided
// once, whichever instance each approver uses; a revocation on one in the
// other's KRL; and the audit chain, sealed by both, verifies.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { STREAMS, verifyStream } from '../../src/audit/chain.js';
import { openDatabase, type DbHandle } from '../../src/db/index.js';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { enrol, fleet, login, request, totp, type Fleet, type FleetUser } from '../helpers/fleet.js';
import { freshPublicKey, issueWorker, send, serialOf, startLoad, waitFor, type LoadWorker } from '../helpers/load.js';
import { CA_BIN, run, type ServerProcess } from '../helpers/process.js';

const skip = POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run several instances on PostgreSQL';

describe('two instances on one PostgreSQL database', { skip }, () => {
  let dir: string;
  let drop = async () => {};
  let f: Fleet;
  let h: DbHandle;
  const servers: ServerProcess[] = [];
  let users: Record<string, FleetUser> = {};
  const url = (i: number) => servers[i]!.url;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-instances-'));
    const database = await createPostgresDatabase();
    drop = database.drop;
    f = fleet(dir, database.url);
    users = await enrol(database.url, f.secretKey, [
      { name: 'loader', groups: ['load'] },
      { name: 'filer', groups: ['load'] },
      { name: 'replayed', groups: ['load'] },
      { name: 'target', groups: ['load'] },
      { name: 'burst', groups: ['load'] },
      ...['ap1', 'ap2', 'ap3'].map((name) => ({ name, groups: ['approvers'] })),
    ]);
    // Both start together, as after a deploy: their migrations and sealers meet on the same database.
    servers.push(...(await Promise.all([f.start(0), f.start(1)])));
    h = await openDatabase({ databaseUrl: database.url, dataDir: null, poolSize: 2 });
  });

  after(async () => {
    for (const s of servers) if (s.child.exitCode === null) await s.stop();
    await h?.close();
    await drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ok: a session from one instance works on the other; under load on both every serial is unique and every certificate logged', async () => {
    const token = await login(url(0), users['loader']!);
    const grant = (await request(url(1), token, 'load', '8h')).id;
    const filer = await login(url(1), users['filer']!);
    const fileWorker = (server: number): LoadWorker => ({
      op: 'request',
      server,
      call: (u, agent) => send(agent, u, 'POST', '/v1/requests', { role: 'load', duration: '1h', reason: 'several instances' }, filer),
    });
    const workers = [0, 1].flatMap((i) => [...Array.from({ length: 6 }, () => issueWorker(i, token, grant)), fileWorker(i)]);
    const load = startLoad([url(0), url(1)], workers);
    let outcomes;
    try {
      await load.until((o) => o.op === 'issue' && o.status === 201 && o.server === 0, 150, 120_000);
      await load.until((o) => o.op === 'issue' && o.status === 201 && o.server === 1, 150, 120_000);
    } finally {
      outcomes = await load.stop();
    }
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[`${o.server} ${o.op} ${o.status}`] = (tally[`${o.server} ${o.op} ${o.status}`] ?? 0) + 1;
    assert.deepEqual(outcomes.filter((o) => o.status !== 201).map((o) => `${o.server} ${o.op} ${o.status} ${o.error ?? o.body.slice(0, 200)}`), [], 'every answer on both instances is a 201');
    const received = outcomes.map(serialOf).filter((x): x is string => x !== null);
    assert.equal(new Set(received).size, received.length, 'no serial handed out twice');
    const { rows } = await sql<{ serial: string; n: string }>`select serial::text as serial, count(*) over () as n from certificates where request_id = ${grant}`.execute(h.db);
    assert.deepEqual(new Set(rows.map((r) => r.serial)), new Set(received), 'the log holds exactly the certificates clients received');
    const filed = outcomes.filter((o) => o.op === 'request').map((o) => JSON.parse(o.body).id as string);
    const kept = await h.db.selectFrom('grants').select('id').where('id', 'in', filed).execute();
    assert.equal(kept.length, filed.length, 'every request filed on either instance has its grant');
    console.log(`# two instances: ${JSON.stringify(tally)}`);
  });

  test('fail: a TOTP code accepted on one instance is refused on the other; racing the same code over both, exactly one login wins', async () => {
    const u = users['replayed']!;
    const code = totp(u.secret);
    await login(url(0), u, code);
    const replay = await send(undefined, url(1), 'POST', '/v1/auth/login', { username: u.name, password: u.password, totp: code });
    assert.equal(replay.status, 401, replay.body);
    // The next time-step's code, sent to both at once, four times.
    const next = totp(u.secret, 1);
    const race = await Promise.all([0, 1, 0, 1].map((i) => send(undefined, url(i), 'POST', '/v1/auth/login', { username: u.name, password: u.password, totp: next })));
    assert.deepEqual(race.map((r) => r.status).sort(), [200, 401, 401, 401], race.map((r) => r.body).join('\n'));
    const replays = await h.db.selectFrom('audit_events').select('details').where('action', '=', 'login.failed').where('target', '=', u.name).execute();
    assert.equal(replays.filter((e) => e.details['reason'] === 'totp_replay').length, 4, 'each loser is logged as a replay');
  });

  test('fail: failed logins on both instances add up to one lockout, which both enforce; a parallel burst over both gets exactly the threshold checked', async () => {
    const u = users['target']!;
    const wrong = (i: number) => send(undefined, url(i), 'POST', '/v1/auth/login', { username: u.name, password: 'not-the-password', totp: '000000' });
    // The default threshold is 5: three failures here, two there.
    for (const i of [0, 0, 0, 1, 1]) assert.equal((await wrong(i)).status, 401);
    for (const i of [0, 1]) {
      const r = await send(undefined, url(i), 'POST', '/v1/auth/login', { username: u.name, password: u.password, totp: totp(u.secret) });
      assert.equal(r.status, 429, `instance ${i} enforces the lockout: ${r.body}`);
      assert.equal(r.contentType, 'application/problem+json');
      assert.ok(Number(r.retryAfter) > 0 && Number(r.retryAfter) <= 60, `Retry-After ${r.retryAfter}`);
    }
    const b = users['burst']!;
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => send(undefined, url(i % 2), 'POST', '/v1/auth/login', { username: b.name, password: `guess-${i}-long`, totp: '000000' })));
    const statuses = burst.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 25, statuses.join(' '));
    assert.equal((await h.db.selectFrom('audit_events').select('id').where('action', '=', 'login.lockout').where('target', '=', b.name).execute()).length, 1, 'one lockout, not one per instance');
  });

  test('ok: approvals are consistent whichever instance each approver uses: a decision counts once, a request is decided once, its grant made once', async () => {
    const loader = await login(url(0), users['loader']!, totp(users['loader']!.secret, 1));
    const ap = Object.fromEntries(await Promise.all(['ap1', 'ap2', 'ap3'].map(async (n, i) => [n, await login(url(i % 2), users[n]!)] as const)));
    const decide = (i: number, who: string, id: string, verb: 'approve' | 'deny') => send(undefined, url(i), 'POST', `/v1/requests/${id}/${verb}`, { comment: `${verb} from instance ${i}` }, ap[who]);
    for (let round = 0; round < 6; round++) {
      // Two approvals needed. The same approver on both instances at once: one counts, the other is a conflict.
      const dual = (await request(url(round % 2), loader, 'dual')).id;
      const same = await Promise.all([decide(0, 'ap1', dual, 'approve'), decide(1, 'ap1', dual, 'approve')]);
      assert.deepEqual(same.map((r) => r.status).sort(), [200, 409], same.map((r) => r.body).join('\n'));
      // Two more approvers at once, on different instances: the first makes it approved, the second finds it decided.
      const second = await Promise.all([decide(0, 'ap2', dual, 'approve'), decide(1, 'ap3', dual, 'approve')]);
      assert.deepEqual(second.map((r) => r.status).sort(), [200, 409], second.map((r) => r.body).join('\n'));
      assert.equal(JSON.parse(second.find((r) => r.status === 200)!.body).status, 'approved');
      const approvals = await h.db.selectFrom('approvals').select(['approver', 'decision']).where('request_id', '=', dual).execute();
      assert.equal(approvals.length, 2, JSON.stringify(approvals));
      assert.equal(new Set(approvals.map((a) => a.approver)).size, 2);
      assert.equal((await h.db.selectFrom('grants').select('id').where('id', '=', dual).execute()).length, 1);

      // Approve and deny racing on the two instances: one wins; the state agrees with the answer.
      const gated = (await request(url(round % 2), loader, 'gated')).id;
      const [x, y] = await Promise.all([decide(round % 2, 'ap2', gated, 'approve'), decide(1 - (round % 2), 'ap3', gated, 'deny')]);
      assert.deepEqual([x!.status, y!.status].sort(), [200, 409], `${x!.body}\n${y!.body}`);
      const winner = x!.status === 200 ? 'approved' : 'denied';
      const row = await h.db.selectFrom('requests').select('status').where('id', '=', gated).executeTakeFirstOrThrow();
      assert.equal(row.status, winner);
      assert.equal((await h.db.selectFrom('grants').select('id').where('id', '=', gated).execute()).length, winner === 'approved' ? 1 : 0);
      assert.equal((await h.db.selectFrom('approvals').select('approver').where('request_id', '=', gated).execute()).length, 1, 'the loser left no decision behind');
      // Both instances now tell the requester the same.
      const seen = await Promise.all([0, 1].map((i) => send(undefined, url(i), 'GET', `/v1/requests/${gated}`, undefined, loader)));
      assert.deepEqual(seen.map((r) => JSON.parse(r.body).status), [winner, winner]);
    }
  });

  test('ok: a certificate revoked through one instance is in the KRL the other serves', async () => {
    const token = await login(url(1), users['filer']!, totp(users['filer']!.secret, 1));
    const grant = (await request(url(1), token, 'load', '1h')).id;
    const issued = await send(undefined, url(1), 'POST', '/v1/certificates', { public_key: freshPublicKey(), request_id: grant }, token);
    assert.equal(issued.status, 201, issued.body);
    const { serial, certificate } = JSON.parse(issued.body) as { serial: string; certificate: string };
    const revoked = await run(CA_BIN, ['revoke', String(serial), '--reason', 'laptop left in a taxi'], f.env(0));
    assert.equal(revoked.code, 0, revoked.stderr);
    const certPath = path.join(dir, 'revoked-cert.pub');
    writeFileSync(certPath, certificate);
    const krlPath = path.join(dir, 'revoked.krl');
    const krl = await fetch(`${url(1)}/v1/krl`);
    assert.equal(krl.status, 200);
    writeFileSync(krlPath, Buffer.from(await krl.arrayBuffer()));
    const q = spawnSync('ssh-keygen', ['-Q', '-f', krlPath, certPath], { encoding: 'utf8' });
    assert.match(q.stdout, /REVOKED/, `ssh-keygen -Q on the other instance's KRL: ${q.stdout}${q.stderr}`);
  });

  test('ok: with both instances sealing, every record is on one chain, and it verifies', async () => {
    for (const stream of STREAMS) {
      await waitFor(`every ${stream} record sealed`, async () => (await verifyStream(h.db, stream)).unsealed === 0, 30_000, 200);
      const v = await verifyStream(h.db, stream);
      assert.equal(v.ok, true, JSON.stringify(v.problem));
      assert.ok(v.sealed > 0);
    }
    // The CLI's verdict (signed checkpoints included), run against the shared database from either instance's settings.
    for (const i of [0, 1]) {
      const r = await run(CA_BIN, ['audit', 'verify'], f.env(i));
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    }
    for (const s of servers) assert.equal(await s.stop(), 0, 'a clean shutdown');
  });
});
