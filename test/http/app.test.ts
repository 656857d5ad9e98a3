import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DomainError } from '../../src/core/errors.js';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { createLogger } from '../../src/log.js';
import { openDatabase } from '../../src/db/index.js';

function build(overrides: Partial<AppDeps> = {}) {
  const lines: string[] = [];
  const app = createApp({
    logger: createLogger('debug', (l) => lines.push(l)),
    bodyLimit: 1024,
    // /v1/ca.pub and /v1/krl on a real database: test/http/signed-documents.test.ts.
    caKeys: () => Promise.reject(new Error('not in this test')),
    ready: async () => {},
    // These tests do not log in; test/http/auth.test.ts drives the real service.
    auth: { login: () => Promise.reject(new Error('not in this test')), authenticate: async () => null, logout: async () => {}, firstFactor: () => Promise.reject(new Error('not in this test')) },
    clientAddress: () => null,
    requests: {} as AppDeps['requests'], // only reached after authentication, which always fails here
    certificates: {} as AppDeps['certificates'],
    reloadPolicy: async () => ({ ok: false, problems: [] }),
    audit: {} as AppDeps['audit'],
    krl: () => Promise.reject(new Error('not in this test')),
    ...overrides,
  });
  return { app, lines };
}

async function expectProblem(res: Response, status: number): Promise<Record<string, unknown>> {
  assert.equal(res.status, status);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body['status'], status);
  assert.equal(typeof body['title'], 'string');
  assert.equal(typeof body['detail'], 'string');
  return body;
}

test('ok: /healthz answers without touching the database', async () => {
  const { app } = build({ ready: () => Promise.reject(new Error('db down')) });
  const res = await app.request('/healthz');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('ok/fail: /readyz follows the database', async () => {
  const db = await openDatabase({ databaseUrl: null, dataDir: null });
  const { app } = build({ ready: () => db.ping() });
  assert.equal((await app.request('/readyz')).status, 200);
  await db.close();
  const body = await expectProblem(await app.request('/readyz'), 503);
  assert.match(String(body['detail']), /database/);
});

test('fail: unknown routes answer problem+json 404', async () => {
  const { app } = build();
  const body = await expectProblem(await app.request('/v1/nothing'), 404);
  assert.equal(body['title'], 'Not Found');
});

test('fail: a body over the limit is refused with 413 before any handler runs', async () => {
  const { app } = build();
  const res = await app.request('/v1/anything', { method: 'POST', body: 'x'.repeat(5000), headers: { 'content-type': 'application/json' } });
  await expectProblem(res, 413);
});

test('ok: request ids are kept when sane, replaced otherwise, and returned', async () => {
  const { app } = build();
  const kept = await app.request('/healthz', { headers: { 'X-Request-Id': 'abc-123' } });
  assert.equal(kept.headers.get('x-request-id'), 'abc-123');
  const replaced = await app.request('/healthz', { headers: { 'X-Request-Id': 'a'.repeat(300) } });
  assert.match(replaced.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
  const body = await expectProblem(await app.request('/nope', { headers: { 'X-Request-Id': 'trace-1' } }), 404);
  assert.equal(body['request_id'], 'trace-1');
});

test('fail: unexpected errors leak nothing to the caller; domain errors keep their message and code', async () => {
  const { app, lines } = build();
  app.get('/v1/boom', () => {
    throw new Error('connection to 10.1.2.3 password=hunter2 failed');
  });
  app.get('/v1/domain', () => {
    throw new DomainError('invalid_public_key', 'DSA keys are not accepted');
  });
  const res = await app.request('/v1/boom');
  const text = await res.clone().text();
  await expectProblem(res, 500);
  assert.ok(!text.includes('hunter2') && !text.includes('10.1.2.3'), text);
  assert.ok(lines.some((l) => JSON.parse(l).msg === 'unhandled error'));
  const body = await expectProblem(await app.request('/v1/domain'), 400);
  assert.equal(body['code'], 'invalid_public_key');
  assert.equal(body['detail'], 'DSA keys are not accepted');
});

test('ok: access logs are JSON lines without headers, query strings or bodies', async () => {
  const { app, lines } = build();
  await app.request('/healthz?token=qs-secret', { headers: { Authorization: 'Bearer tok-secret', 'X-Request-Id': 'r-9' } });
  const entry = lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'http' && e.request_id === 'r-9');
  assert.ok(entry, lines.join(''));
  assert.equal(entry.path, '/healthz');
  assert.equal(entry.status, 200);
  assert.ok(!lines.join('').includes('secret'));
});

test('ok: API answers are not cached and carry security headers', async () => {
  const { app } = build();
  const res = await app.request('/v1/nothing');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
});
