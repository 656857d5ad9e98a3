// The per-request deadline: a request whose work hangs (a database that does
// not answer) is answered 503 within the deadline, and what the work would
// have answered is never sent.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { deadline } from '../../src/http/middleware/deadline.js';
import type { AppEnv } from '../../src/http/types.js';

function appWith(work: () => Promise<Response>, ms: number) {
  const app = new Hono<AppEnv>();
  app.use(deadline({ ms, skip: (c) => c.req.path.startsWith('/long'), onTimeout: (c) => c.json({ late: true }, 503, { 'Retry-After': '5' }) }));
  app.get('/work', () => work());
  app.get('/long', () => work());
  return app;
}

test('fail: work that outlives the deadline is answered 503 at the deadline; its own answer, when it comes, is dropped', async () => {
  let finish!: () => void;
  let finished = false;
  const app = appWith(
    () =>
      new Promise<Response>((resolve) => {
        finish = () => {
          finished = true;
          resolve(new Response('a certificate', { status: 201 }));
        };
      }),
    100,
  );
  const t0 = Date.now();
  const res = await app.request('/work');
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '5');
  assert.deepEqual(await res.json(), { late: true });
  assert.ok(Date.now() - t0 < 2_000);
  finish();
  await new Promise((r) => setImmediate(r));
  assert.equal(finished, true);
});

test('ok: work within the deadline is answered as usual; a failure inside it is its own answer', async () => {
  const ok = appWith(async () => new Response('fine', { status: 201 }), 1_000);
  assert.equal((await ok.request('/work')).status, 201);
  const failing = appWith(async () => {
    throw new Error('boom');
  }, 1_000);
  assert.equal((await failing.request('/work')).status, 500);
});

test('ok: skipped paths and a zero deadline wait for the work', async () => {
  const slow = () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response('done', { status: 200 })), 150));
  assert.equal((await appWith(slow, 50).request('/long')).status, 200);
  assert.equal((await appWith(slow, 0).request('/work')).status, 200);
});

test('ok/fail: many requests in flight, finishing in any order: each is answered by its own work or at its own deadline', async () => {
  // Work i takes (i % 4) * 60 ms against a 150 ms deadline: 0, 60 and 120 ms finish, 180 ms does not.
  const timed = new Hono<AppEnv>();
  timed.use(deadline({ ms: 150, onTimeout: (c) => c.json({ late: true }, 503) }));
  timed.get('/w/:ms', (c) => new Promise<Response>((resolve) => setTimeout(() => resolve(c.text(`took ${c.req.param('ms')}`)), Number(c.req.param('ms')))));
  for (let round = 0; round < 2; round++) {
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => Promise.resolve(timed.request(`/w/${(i % 4) * 60}`)).then(async (r: Response) => [i, r.status, await r.text()] as const)));
    for (const [i, status, body] of answers) {
      if (i % 4 === 3) assert.equal(status, 503, `request ${i}`);
      else assert.deepEqual([status, body], [200, `took ${(i % 4) * 60}`], `request ${i}`);
    }
    assert.ok(Date.now() - started < 1_000, 'the late ones are answered at their deadline, not when their work ends');
    // The second round starts after the queue has emptied (its timer stopped) and must work the same.
    await new Promise((r) => setTimeout(r, 300));
  }
});
