// The server killed with SIGKILL in the middle of a load (no shutdown, no
// draining), on the embedded database and on PostgreSQL. After a restart: no
// partial rows (every filed request has its grant and its audit event, every
// certificate its grant), every answer a client got is in the database, the
// chain verifies, and no serial is used twice.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../../src/db/index.js';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { enrol, FLEET_POLICY, login, request } from '../helpers/fleet.js';
import { issueWorker, send, serialOf, startLoad, waitFor, type LoadWorker } from '../helpers/load.js';
import { cleanEnv, startServerProcess, type ServerProcess } from '../helpers/process.js';

const backends = [
  { name: 'embedded', skip: false as const },
  { name: 'postgres', skip: POSTGRES_URL ? (false as const) : 'set TEST_DATABASE_URL to run against PostgreSQL' },
];

/** Files auto-approved requests for the `load` role (a transaction: request, grant, audit event). */
const requestWorker = (token: string): LoadWorker => ({
  op: 'request',
  server: 0,
  call: (url, agent) => send(agent, url, 'POST', '/v1/requests', { role: 'load', duration: '1h', reason: 'crash test' }, token),
});

for (const backend of backends) {
  describe(`SIGKILL mid-load (${backend.name})`, { skip: backend.skip }, () => {
    test('ok: after a restart no partial rows, every answer given is in the database, the chain verifies, no serial reused', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-crash-'));
      let drop = async () => {};
      let server: ServerProcess | undefined;
      try {
        const dataDir = path.join(dir, 'data');
        mkdirSync(dataDir, { mode: 0o700 });
        writeFileSync(path.join(dir, 'policy.yaml'), FLEET_POLICY);
        let databaseUrl: string | null = null;
        let secretKey: string | null = null;
        if (backend.name === 'postgres') {
          ({ url: databaseUrl, drop } = await createPostgresDatabase());
          secretKey = randomBytes(32).toString('base64');
        }
        const env = cleanEnv({
          JIT_SSH_DATA_DIR: dataDir,
          JIT_SSH_POLICY: path.join(dir, 'policy.yaml'),
          JIT_SSH_PASSWORD_COST: '14',
          JIT_SSH_ADDRESS_FAILURE_LIMIT: '100000',
          ...(databaseUrl ? { DATABASE_URL: databaseUrl, JIT_SSH_SECRET_KEY: secretKey! } : {}),
        });
        const users = await enrol(databaseUrl ?? { dataDir }, secretKey, [
          { name: 'alice', groups: ['load'] },
          { name: 'bob', groups: ['load'] },
          { name: 'audrey', groups: ['auditors'] },
        ]);

        server = await startServerProcess(env, 60_000, { stopAfter: false });
        const alice = await login(server.url, users['alice']!);
        const bob = await login(server.url, users['bob']!);
        const grant = (await request(server.url, alice, 'load', '8h')).id;

        const load = startLoad([server.url], [...Array.from({ length: 6 }, () => issueWorker(0, alice, grant)), requestWorker(bob), requestWorker(bob)]);
        await load.until((o) => o.op === 'issue' && o.status === 201, 40);
        await load.until((o) => o.op === 'request' && o.status === 201, 5);
        await server.stop('SIGKILL');
        assert.equal(server.child.signalCode, 'SIGKILL');
        const before = await load.stop();
        for (const o of before) assert.ok([201, 0].includes(o.status), `${o.op} answered ${o.status} ${o.body.slice(0, 200)}`);
        const received = before.map(serialOf).filter((x): x is string => x !== null);
        const filed = before.filter((o) => o.op === 'request' && o.status === 201).map((o) => JSON.parse(o.body) as { id: string; status: string });
        assert.ok(filed.every((r) => r.status === 'approved'));

        // The same installation started again: the embedded database's lock of the dead process is taken over.
        server = await startServerProcess(env, 60_000, { stopAfter: false });
        assert.equal((await send(undefined, server.url, 'GET', '/readyz')).status, 200);
        // Sessions and grants survive; issuance goes on with new serials.
        const after = startLoad([server.url], Array.from({ length: 4 }, () => issueWorker(0, alice, grant)));
        await after.until((o) => o.status === 201, 20);
        const later = (await after.stop()).map(serialOf).filter((x): x is string => x !== null);
        const all = [...received, ...later];
        assert.equal(new Set(all).size, all.length, 'a serial was handed out twice');

        // The restarted sealer chains what the killed one left, and the chain verifies.
        const auditor = await login(server.url, users['audrey']!);
        const verified = await waitFor('the chain sealed and verified', async () => {
          const r = await send(undefined, server!.url, 'GET', '/v1/audit/verify', undefined, auditor);
          const body = JSON.parse(r.body) as { ok: boolean; streams: Array<{ stream: string; ok: boolean; unsealed: number; sealed: number; problem: unknown }> };
          assert.equal(body.ok, true, r.body);
          return body.streams.every((s) => s.unsealed === 0) ? body : null;
        }, 30_000, 200);
        assert.ok(verified.streams.every((s) => s.ok && s.sealed > 0), JSON.stringify(verified));
        assert.equal(await server.stop(), 0);
        server = undefined;

        // The rows, read with the server stopped (the embedded database admits one process).
        const h = await openDatabase({ databaseUrl, dataDir: databaseUrl ? null : dataDir, poolSize: 2 });
        try {
          const serials = new Set((await sql<{ s: string }>`select serial::text as s from certificates`.execute(h.db)).rows.map((r) => r.s));
          assert.deepEqual(all.filter((s) => !serials.has(s)), [], 'certificates received without their row');
          const { rows: partial } = await sql<{ what: string; id: string }>`
            select 'approved request without its grant' as what, r.id from requests r left join grants g on g.id = r.id
              where r.status = 'approved' and r.extends_grant is null and g.id is null
            union all
            select 'grant without its approved request', g.id from grants g left join requests r on r.id = g.id
              where r.id is null or r.status <> 'approved'
            union all
            select 'request without its audit event', r.id from requests r
              where not exists (select 1 from audit_events e where e.action = 'request.create' and e.target = r.id)
            union all
            select 'certificate without its grant', c.serial::text from certificates c left join grants g on g.id = c.request_id
              where g.id is null`.execute(h.db);
          assert.deepEqual(partial, [], 'partial rows');
          const ids = new Set((await sql<{ id: string }>`select id from requests`.execute(h.db)).rows.map((r) => r.id));
          assert.deepEqual(filed.map((r) => r.id).filter((id) => !ids.has(id)), [], 'requests answered 201 but not in the database');
          console.log(`# ${backend.name}: ${received.length} certificates and ${filed.length} requests answered before the kill, ${serials.size} certificates logged, ${later.length} issued after the restart`);
        } finally {
          await h.close();
        }
      } finally {
        if (server && server.child.exitCode === null) await server.stop('SIGKILL');
        await drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
