// The headers every answer carries, and those none may: the server writes them
// where Node writes the answer (HardenedServerResponse), app.request() gets
// them from the middleware; both must give the same answers, header for header.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { serve } from '@hono/node-server';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { HardenedServerResponse, onHardenedServer, SECURITY_HEADERS } from '../../src/http/response-headers.js';
import { silentLogger } from '../../src/log.js';

const app = createApp({
  logger: silentLogger,
  bodyLimit: 1024,
  caKeys: () => Promise.reject(new Error('not in this test')),
  ready: async () => {},
  auth: { login: () => Promise.reject(new Error('not in this test')), authenticate: async () => null, logout: async () => {}, firstFactor: () => Promise.reject(new Error('not in this test')) },
  clientAddress: () => null,
  requests: {} as AppDeps['requests'],
  certificates: {} as AppDeps['certificates'],
  reloadPolicy: async () => ({ ok: false, problems: [] }),
  audit: {} as AppDeps['audit'],
  krl: () => Promise.reject(new Error('not in this test')),
});
// Routes that try to get around the rules.
app.get('/v1/leaky', (c) => c.json({ x: 1 }, 200, { 'Access-Control-Allow-Origin': '*', 'access-control-allow-credentials': 'true', 'X-Frame-Options': 'ALLOWALL', 'Cache-Control': 'max-age=60' }));
app.get('/v1/leaky-later', async (c, next) => {
  await next();
  c.res.headers.set('Access-Control-Expose-Headers', 'x-secret');
  c.res.headers.set('Referrer-Policy', 'unsafe-url');
});
app.get('/v1/leaky-later', (c) => c.text('later'));
app.get('/v1/where', (c) => c.json({ hardened: onHardenedServer(c) }));
app.get('/page', (c) => c.html('<p>hi</p>', 200, { 'Cache-Control': 'private' }));
app.get('/v1/boom', () => {
  throw new Error('internal detail');
});

let server: Server;
let base: string;
before(async () => {
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0, serverOptions: { ServerResponse: HardenedServerResponse as typeof ServerResponse } }, () => resolve()) as Server;
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** The headers that say something about the answer (not the connection's, the date, or the length). */
function meaningful(h: Headers): Record<string, string> {
  const skip = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
  return Object.fromEntries([...h].filter(([k]) => !skip.has(k)).map(([k, v]) => [k, k === 'x-request-id' ? '(an id)' : v]));
}

const CASES: Array<[string, RequestInit]> = [
  ['/healthz', {}],
  ['/v1/nothing', {}],
  ['/v1/leaky', {}],
  ['/v1/leaky-later', {}],
  ['/page', {}],
  ['/v1/boom', {}],
  ['/v1/requests', { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } }],
  ['/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' }],
];

test('ok: the server and app.request() answer with the same headers, every security header on each, no Access-Control-* on any', async () => {
  for (const [path, init] of CASES) {
    const viaServer = await fetch(base + path, init);
    const viaApp = await app.request(path, init);
    const got = meaningful(viaServer.headers);
    assert.deepEqual(got, meaningful(viaApp.headers), path);
    assert.equal(viaServer.status, viaApp.status, path);
    for (const [k, v] of SECURITY_HEADERS) assert.equal(got[k], v, `${path}: ${k}`);
    assert.deepEqual(Object.keys(got).filter((k) => k.startsWith('access-control-')), [], path);
    assert.equal(got['x-request-id'], '(an id)', path);
    await viaServer.arrayBuffer();
  }
});

test('ok: on the server the rules are applied where Node writes the answer, the middleware stands aside', async () => {
  assert.deepEqual(await (await fetch(`${base}/v1/where`)).json(), { hardened: true });
  assert.deepEqual(await (await app.request('/v1/where')).json(), { hardened: false });
});

test('ok: Cache-Control no-store on /v1 answers that set none; one a route set is kept; none added elsewhere', async () => {
  const cc = async (path: string) => (await fetch(base + path)).headers.get('cache-control');
  assert.equal(await cc('/v1/nothing'), 'no-store');
  assert.equal(await cc('/v1/boom'), 'no-store');
  assert.equal(await cc('/v1/leaky'), 'max-age=60');
  assert.equal(await cc('/page'), 'private');
  assert.equal(await cc('/healthz'), null);
});

test('ok: a request id the caller gave is echoed when acceptable, else replaced', async () => {
  assert.equal((await fetch(`${base}/healthz`, { headers: { 'X-Request-Id': 'abc-123' } })).headers.get('x-request-id'), 'abc-123');
  assert.match((await fetch(`${base}/healthz`, { headers: { 'X-Request-Id': 'a b' } })).headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
});
