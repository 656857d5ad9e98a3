// One error mapper for every surface: the API and the admin socket answer
// problem+json, the web pages a page; each keeps the status and, when the
// error says how long to wait, Retry-After.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PasswordQueueFullError } from '../../src/auth/password.js';
import { RateLimitedError, UnavailableError } from '../../src/core/errors.js';
import { createAdminApp, type AdminAppDeps } from '../../src/http/admin-app.js';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { AuthService } from '../../src/services/auth.js';
import { webPages, type WebDeps } from '../../src/web/index.js';

/** The API (with the web pages mounted, as the server composes them) over an auth service that fails as told. */
function api(fail: () => Error, logger: Logger = silentLogger) {
  const auth: AuthService = {
    login: () => Promise.reject(fail()),
    firstFactor: () => Promise.reject(fail()),
    authenticate: () => Promise.reject(fail()),
    logout: async () => {},
  };
  const web: WebDeps = {
    logger,
    auth,
    stepUp: {} as WebDeps['stepUp'],
    requests: {} as WebDeps['requests'],
    audit: {} as WebDeps['audit'],
    clientAddress: () => null,
    publicUrl: null,
  };
  return createApp({
    logger,
    bodyLimit: 1024,
    caKeys: () => Promise.reject(new Error('not in this test')),
    krl: () => Promise.reject(new Error('not in this test')),
    ready: async () => {},
    auth,
    clientAddress: () => null,
    requests: {} as AppDeps['requests'],
    certificates: {} as AppDeps['certificates'],
    reloadPolicy: async () => ({ ok: false, problems: [] }),
    audit: {} as AppDeps['audit'],
    pages: webPages(web),
  });
}

const login = (app: ReturnType<typeof api>) =>
  app.request('/v1/auth/login', { method: 'POST', body: JSON.stringify({ username: 'a', password: 'b', totp: '1' }), headers: { 'content-type': 'application/json' } });
/** A page behind the session cookie: the session lookup is what fails. */
const page = (app: ReturnType<typeof api>) => app.request('http://localhost/ui', { headers: { cookie: 'jit_ssh_session=some-token' } });

async function expectProblem(res: Response, status: number) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body['status'], status);
  return body;
}

async function expectPage(res: Response, status: number) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const html = await res.text();
  assert.match(html, /^<!doctype html>/);
  return html;
}

describe('the API', () => {
  test('fail: a rate-limited error is a 429 problem with its Retry-After', async () => {
    const res = await login(api(() => new RateLimitedError('too many failed logins; try again later', 42)));
    const body = await expectProblem(res, 429);
    assert.equal(res.headers.get('retry-after'), '42');
    assert.equal(body['code'], 'rate_limited');
  });

  test("fail: the login queue's 503 keeps its Retry-After", async () => {
    const res = await login(api(() => new PasswordQueueFullError('the server is busy checking other logins; try again shortly', 3)));
    const body = await expectProblem(res, 503);
    assert.equal(res.headers.get('retry-after'), '3');
    assert.equal(body['code'], 'unavailable');
  });
});

describe('the web pages', () => {
  test('fail: a rate-limited error is a 429 page (HTML, the pages\' headers) with its Retry-After', async () => {
    const res = await page(api(() => new RateLimitedError('too many wrong codes; try again later', 60)));
    const html = await expectPage(res, 429);
    assert.equal(res.headers.get('retry-after'), '60');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(html, /<h1>Too many attempts<\/h1>/);
    assert.match(html, /too many wrong codes; try again later/);
  });

  test('fail: an unavailable database is a 503 page with Retry-After', async () => {
    const res = await page(api(() => new UnavailableError('the database does not answer', 5)));
    await expectPage(res, 503);
    assert.equal(res.headers.get('retry-after'), '5');
  });

  test('fail: an unexpected error is a page that tells nothing, logged once; the same error on the API is problem+json', async () => {
    const logged: string[] = [];
    const logger: Logger = { ...silentLogger, error: (msg) => void logged.push(msg) };
    const app = api(() => new Error('secret internals'), logger);
    const html = await expectPage(await page(app), 500);
    assert.match(html, /Something went wrong on the server/);
    assert.doesNotMatch(html, /secret internals/);
    const body = await expectProblem(await login(app), 500);
    assert.doesNotMatch(JSON.stringify(body), /secret internals/);
    assert.deepEqual(logged, ['unhandled error', 'unhandled error']);
  });

  test("fail: the pages' own refusal (a form posted without a session) is an HTML page; an API route that does not exist stays problem+json", async () => {
    const app = api(() => new Error('unused'));
    const html = await expectPage(await app.request('http://localhost/ui/requests/new', { method: 'POST', headers: { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' } }), 401);
    assert.match(html, /Your session has ended/);
    await expectProblem(await app.request('http://localhost/v1/no-such-route'), 404);
  });
});

describe('the admin socket', () => {
  const uid = process.geteuid?.() ?? 1000;
  const admin = (fail: () => Error) =>
    createAdminApp({
      users: { list: () => Promise.reject(fail()) } as unknown as AdminAppDeps['users'],
      audit: {} as AdminAppDeps['audit'],
      revocation: {} as AdminAppDeps['revocation'],
      logger: silentLogger,
      ownUid: uid,
    });
  const asOwner = { peer: { uid, pid: process.pid, name: 'ca' } };

  test('fail: a rate-limited error is a 429 problem with its Retry-After', async () => {
    const res = await admin(() => new RateLimitedError('slow down', 17)).request('/admin/users', {}, asOwner);
    const body = await expectProblem(res, 429);
    assert.equal(res.headers.get('retry-after'), '17');
    assert.equal(body['code'], 'rate_limited');
    assert.equal(body['detail'], 'slow down');
  });

  test('fail: an unavailable database is a 503 problem with Retry-After', async () => {
    const res = await admin(() => new UnavailableError('the database does not answer', 5)).request('/admin/users', {}, asOwner);
    await expectProblem(res, 503);
    assert.equal(res.headers.get('retry-after'), '5');
  });
});
