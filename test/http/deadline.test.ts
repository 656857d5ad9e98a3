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
