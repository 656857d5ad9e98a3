// A legitimate login during a flood of failing ones, against the real
// `jit-ssh-ca serve` process with the default password cost (scrypt at
// 64 MiB): 64 clients keep guessing at once, each guess from its own address
// (named through a trusted proxy, as behind a load balancer) and for its own
// name, so no per-name or per-address limit applies. The good login still
// succeeds within a few logins' time, not behind the flood.

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { enrol, totp } from '../helpers/fleet.js';
import { cleanEnv, startServerProcess } from '../helpers/process.js';
import { createPostgresDatabase, POSTGRES_URL } from '../helpers/db.js';

function post(agent: http.Agent, url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const target = new URL('/v1/auth/login', url);
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request({ agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end(payload);
  });
}

describe('a good login during a flood of failing logins (real server process)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-flood-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('ok: 64 clients guessing from thousands of addresses; the good login succeeds in a few seconds', async () => {
    const data = path.join(dir, 'data');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    // On PostgreSQL when there is one (the deployment this is about); the embedded database otherwise.
    const pg = POSTGRES_URL ? await createPostgresDatabase() : null;
    const secretKey = Buffer.alloc(32, 7).toString('base64');
    after(() => pg?.drop());
    const { ora } = await enrol(pg ? pg.url : { dataDir: data }, pg ? secretKey : null, [{ name: 'ora', groups: [] }]);
    // The default password cost and limits; the test plays the proxy on 127.0.0.1.
    const server = await startServerProcess(cleanEnv({ JIT_SSH_DATA_DIR: data, JIT_SSH_TRUSTED_PROXIES: '127.0.0.1', ...(pg ? { DATABASE_URL: pg.url, JIT_SSH_SECRET_KEY: secretKey } : {}) }));
    // The guessers keep their connections; the good client is another one, on a connection of its own.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 80 });
    const own = () => new http.Agent({ keepAlive: false });
    try {
      const alone = performance.now();
      const first = await post(own(), server.url, { username: 'ora', password: ora!.password, totp: totp(ora!.secret) }, { 'X-Forwarded-For': '192.0.2.1' });
      assert.equal(first.status, 200, first.body);
      const aloneMs = performance.now() - alone;

      let flooding = true;
      let sent = 0;
      const statuses: Record<number, number> = {};
      const guesser = async (w: number) => {
        while (flooding) {
          const n = sent++;
          const address = `198.18.${(n >> 8) & 255}.${n & 255}`;
          const r = await post(agent, server.url, { username: `guess-${w}-${n}`, password: 'winter-2026-guess', totp: '000000' }, { 'X-Forwarded-For': address });
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
      };
      const guessers = Array.from({ length: 64 }, (_, w) => guesser(w));
      await new Promise((r) => setTimeout(r, 2000));
      const started = performance.now();
      // The next time-step's code: the first login used this one's.
      const good = await post(own(), server.url, { username: 'ora', password: ora!.password, totp: totp(ora!.secret, 1) }, { 'X-Forwarded-For': '192.0.2.1' });
      const tookMs = performance.now() - started;
      await new Promise((r) => setTimeout(r, 500));
      flooding = false;
      await Promise.all(guessers);
      console.log(`# flood: ${sent} guesses ${JSON.stringify(statuses)}; the good login took ${Math.round(tookMs)} ms (${Math.round(aloneMs)} ms alone)`);

      assert.equal(good.status, 200, good.body);
      // Behind the flood it would wait for every guess queued before it: past the 10 s deadline (503).
      assert.ok(tookMs < 8000, `the good login took ${Math.round(tookMs)} ms during the flood, ${Math.round(aloneMs)} ms alone`);
      assert.ok(sent > 200, `only ${sent} guesses were sent: no flood`);
      // (0: a kept connection the server closed as the guesser reused it, the client's race.)
      for (const s of Object.keys(statuses).map(Number)) assert.ok(s === 401 || s === 503 || s === 0, `a guess was answered ${s}: ${JSON.stringify(statuses)}`);
      assert.ok((statuses[401] ?? 0) > 0);
    } finally {
      agent.destroy();
      assert.equal(await server.stop(), 0);
    }
  });
});
