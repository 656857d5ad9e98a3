// JIT_SSH_WORKERS=2: one `jit-ssh-ca serve` process whose node:cluster primary
// forks two workers on one port over one PostgreSQL. Both workers answer;
// only worker 0 runs the background work (sealer, expiry, webhooks) and the
// admin socket; a killed worker is started again while the other keeps
// answering; SIGHUP reaches both; SIGTERM stops all of them. The embedded
// database refuses more than one worker.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { enrol, fleet, login, request, type Fleet, type FleetUser } from '../helpers/fleet.js';
import { freshPublicKey } from '../helpers/load.js';
import { CA_BIN, cleanEnv, run, type ServerProcess } from '../helpers/process.js';

const skip = POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run several workers on PostgreSQL';

/** The live worker processes of `pid` (its other children, e.g. tsx's esbuild service, left out). */
function children(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== pid || fields[0] === 'Z') continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('jit-ssh-ca')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('JIT_SSH_WORKERS=2 on one PostgreSQL database', { skip }, () => {
  let dir: string;
  let drop = async () => {};
  let f: Fleet;
  let server: ServerProcess;
  let users: Record<string, FleetUser> = {};
  const listening = () => server.logs.filter((l) => l['msg'] === 'listening');

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-workers-'));
    const database = await createPostgresDatabase();
    drop = database.drop;
    f = fleet(dir, database.url, { JIT_SSH_WORKERS: '2' });
    users = await enrol(database.url, f.secretKey, [{ name: 'loader', groups: ['load'] }]);
    server = await f.start(0);
    await until('both workers to listen', () => listening().length === 2);
  });

  after(async () => {
    if (server?.child.exitCode === null) await server.stop();
    await drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ok: two workers listen on one port; only worker 0 runs the background work and the admin socket', () => {
    const lines = listening();
    assert.deepEqual(lines.map((l) => l['worker']).sort(), [0, 1]);
    assert.equal(new Set(lines.map((l) => l['url'])).size, 1, 'one port for both');
    const lead = lines.find((l) => l['worker'] === 0)!;
    const other = lines.find((l) => l['worker'] === 1)!;
    assert.equal(lead['background'], true);
    assert.equal(other['background'], false);
    assert.ok(lead['admin_socket']);
    assert.equal(other['admin_socket'], null);
    assert.equal(children(server.child.pid!).length, 2);
  });

  test('ok: the workers answer, and certificates issued through them are logged', async () => {
    const session = await login(server.url, users['loader']!);
    const grant = (await request(server.url, session, 'load')).id;
    const serials: string[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const res = await fetch(`${server.url}/v1/certificates`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` },
          body: JSON.stringify({ public_key: freshPublicKey(), request_id: grant }),
        });
        assert.equal(res.status, 201, await res.clone().text());
        serials.push(((await res.json()) as { serial: string }).serial);
      }),
    );
    assert.equal(new Set(serials).size, 40);
    const listed = await run(CA_BIN, ['audit', 'list', '--user', 'loader', '--format', 'json'], f.env(0, { JIT_SSH_WORKERS: '1' }));
    assert.equal(listed.code, 0, listed.stderr);
    const rows = (JSON.parse(listed.stdout) as { certificates: Array<{ serial: string }> }).certificates;
    for (const s of serials) assert.ok(rows.some((r) => r.serial === s), `serial ${s} has no row`);
  });

  test('ok: a killed worker is started again while the other keeps answering', async () => {
    const before = children(server.child.pid!);
    process.kill(before[1]!, 'SIGKILL');
    // Once the primary has seen it go, the other worker answers every connection meanwhile.
    await until('the primary to see the worker stop', () => server.logs.some((l) => l['msg'] === 'a worker stopped; starting it again'));
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetch(`${server.url}/healthz`, { headers: { connection: 'close' } })).status, 200);
    }
    await until('the worker to be replaced', () => {
      const now = children(server.child.pid!);
      return now.length === 2 && !now.includes(before[1]!);
    });
    assert.ok(server.logs.some((l) => l['msg'] === 'a worker stopped; starting it again'));
    await until('the new worker to listen', () => listening().length === 3);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  });

  test('ok: SIGHUP reloads the policy in every worker', async () => {
    const reloads = () => server.logs.filter((l) => l['msg'] === 'policy reloaded').length;
    const n = reloads();
    server.child.kill('SIGHUP');
    await until('both workers to reload', () => reloads() >= n + 2);
  });

  test('ok: SIGTERM stops the workers and the primary', async () => {
    const workers = children(server.child.pid!);
    assert.equal(await server.stop(), 0);
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), 'a worker outlived the primary');
  });
});

test('fail: more than one worker on the embedded database is refused at start, with the reason', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-workers-embedded-'));
  try {
    const r = await run(CA_BIN, ['serve', '--port', '0'], cleanEnv({ JIT_SSH_DATA_DIR: dir, JIT_SSH_WORKERS: '2' }));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /JIT_SSH_WORKERS \(--workers\): more than 1 needs DATABASE_URL/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
