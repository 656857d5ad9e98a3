// The web pages' defences at the HTTP level (app.request, no browser):
// security headers, cookie flags, CSRF and Origin refusals, and who may reach
// every /ui route — the route table is read from the app, so a new route
// without an entry here fails the test.

import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listEvents } from '../helpers/events.js';
import { CONTENT_SECURITY_POLICY } from '../../src/web/security.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock, totpAt } from '../helpers/identity.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { ORIGIN, webIdentity, type TestUser } from './helpers.js';

type Web = Awaited<ReturnType<typeof webIdentity>>;
type Client = ReturnType<Web['client']>;

describe('web pages: headers, cookies, CSRF, Origin', () => {
  let t: TestDb;
  let clock: TestClock;
  let w: Web;
  const users: Record<string, TestUser> = {};

  before(async () => {
    t = await BACKENDS[0]!.open();
    clock = new TestClock();
    w = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY });
    users['eng'] = await w.addUser('eng', ['engineering']);
    users['boss'] = await w.addUser('boss', ['sre-leads', 'auditors']);
  });
  after(() => t.cleanup());

  const loggedIn = async (name: string, base = ORIGIN) => {
    const b = w.client(base);
    assert.equal((await b.login(users[name]!)).status, 303);
    await b.get('/ui');
    return b;
  };
  const myRequests = async (name: string) => (await w.requests.history({ username: name, groups: [], isAdmin: false, isAuditor: false, expiresAt: new Date(8e15), auth: PASSWORD_TOTP }, name, 100)).length;

  test('ok: every page carries a strict CSP and the usual security headers, and has no inline script or style', async () => {
    const b = await loggedIn('boss');
    const anon = w.client();
    const pages: Array<[Client, string]> = [[anon, '/'], [anon, '/ui/login'], [b, '/ui'], [b, '/ui/requests/new'], [b, '/ui/queue'], [b, '/ui/audit'], [b, '/ui/audit/certificates'], [b, '/ui/audit/events'], [b, '/ui/audit/integrity'], [b, '/ui/audit/report'], [b, '/ui/no-such-page']];
    for (const [client, path] of pages) {
      const res = await client.get(path);
      assert.ok(res.status === 200 || (path === '/ui/no-such-page' && res.status === 404), `${path}: ${res.status}`);
      const h = res.headers;
      assert.equal(h.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
      assert.equal(h.get('x-content-type-options'), 'nosniff', path);
      assert.equal(h.get('referrer-policy'), 'no-referrer', path);
      assert.ok(h.get('x-frame-options'), path);
      assert.equal(h.get('cross-origin-opener-policy'), 'same-origin', path);
      assert.match(h.get('permissions-policy') ?? '', /camera=\(\)/, path);
      assert.equal(h.get('cache-control'), 'no-store', path);
      assert.match(h.get('content-type') ?? '', /^text\/html; charset=UTF-8/i, path);
      const html = await res.text();
      assert.ok(html.startsWith('<!doctype html><html lang="en">'), path);
      assert.doesNotMatch(html, /<script(?![^>]*\ssrc="\/ui\/static\/)/, `${path}: inline script`);
      assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, `${path}: inline style or handler`);
    }
    assert.equal(CONTENT_SECURITY_POLICY, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    // The static files (stylesheet, script, icon): right types, cacheable for good (their names carry a content hash).
    const html = (await (await b.get('/ui')).text());
    for (const [, path] of html.matchAll(/(?:href|src)="(\/ui\/static\/[^"]+)"/g)) {
      const res = await b.get(path!);
      assert.equal(res.status, 200, path);
      const types: Record<string, RegExp> = { css: /^text\/css/, js: /^text\/javascript/, svg: /^image\/svg\+xml/ };
      assert.match(res.headers.get('content-type')!, types[path!.split('.').pop()!]!);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    }
  });

  test('ok: over http the session cookie is HttpOnly, SameSite=Strict, Path=/; the token never shows in a page', async () => {
    const b = w.client();
    await b.get('/ui/login');
    clock.advance(30);
    const res = await b.post('/ui/login', { csrf: b.csrf(), username: 'eng', password: users['eng']!.password, totp: totpAt(users['eng']!.secret, clock) });
    assert.equal(res.status, 303);
    const session = res.headers.getSetCookie().find((l) => l.startsWith('jit_ssh_session='))!;
    assert.ok(session, res.headers.getSetCookie().join('\n'));
    const attrs = session.split('; ').slice(1);
    assert.ok(attrs.includes('HttpOnly') && attrs.includes('SameSite=Strict') && attrs.includes('Path=/'), session);
    assert.ok(attrs.includes('Max-Age=3600'), session);
    assert.ok(!attrs.some((a) => /^(Secure|Domain=)/i.test(a)), session);
    const token = b.jar.get('jit_ssh_session')!;
    assert.match(token, /^jit_[A-Za-z0-9_-]{43}$/);
    const home = await (await b.get('/ui')).text();
    assert.ok(!home.includes(token), 'the session token is in the page');
    assert.notEqual(b.csrf(), token);
    // Each session has its own CSRF token.
    const other = await loggedIn('eng');
    assert.notEqual(other.csrf(), b.csrf());
  });

  test('ok: behind https (JIT_SSH_PUBLIC_URL) cookies are __Host- prefixed and Secure; an unprefixed cookie is ignored', async () => {
    const https = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY, publicUrl: 'https://ca.example.com' });
    const b = https.client('https://ca.example.com');
    const form = await b.get('/ui/login');
    const loginCookie = form.headers.getSetCookie()[0]!;
    assert.match(loginCookie, /^__Host-jit_ssh_login=[A-Za-z0-9_-]{43}; Max-Age=3600; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    clock.advance(30);
    const res = await b.post('/ui/login', { csrf: b.csrf(), username: 'eng', password: users['eng']!.password, totp: totpAt(users['eng']!.secret, clock) });
    assert.equal(res.status, 303, b.html);
    const session = res.headers.getSetCookie().find((l) => l.startsWith('__Host-jit_ssh_session='))!;
    assert.ok(session && / Secure;/.test(session) && / HttpOnly;/.test(session) && /SameSite=Strict/.test(session) && / Path=\//.test(session) && !/Domain=/i.test(session), session);
    assert.equal((await b.get('/ui')).status, 200);
    // The same token under the plain name (as an http page or a subdomain could set it) is not a session here.
    const token = b.jar.get('__Host-jit_ssh_session')!;
    const plain = await https.app.request('https://ca.example.com/ui', { headers: { cookie: `jit_ssh_session=${token}` } });
    assert.equal(plain.status, 303);
    assert.match(plain.headers.get('location')!, /^\/ui\/login/);
  });

  test('fail: a form without the CSRF token, or with another session\'s, is refused and changes nothing', async () => {
    const b = await loggedIn('eng');
    const other = await loggedIn('eng');
    const body = { role: 'web-prod', duration: '3h', reason: 'rotate the TLS certificates', action: 'submit' };
    for (const csrf of [undefined, '', 'x'.repeat(43), other.csrf()]) {
      const res = await b.post('/ui/requests/new', csrf === undefined ? body : { ...body, csrf });
      assert.equal(res.status, 403, String(csrf));
      assert.match(b.html, /security token is missing or out of date/);
    }
    assert.equal(await myRequests('eng'), 0, 'a request was filed without a valid CSRF token');
    // Logging out needs the token too: without it the session lives on.
    assert.equal((await b.post('/ui/logout', {})).status, 403);
    assert.equal((await b.get('/ui')).status, 200);
    // The login form's own token (double submit): without its cookie, or with a different value, no session.
    const anon = w.client();
    await anon.get('/ui/login');
    anon.jar.clear();
    clock.advance(30);
    // With a right password and code: only the token stands between this post and a session.
    const noCookie = await anon.post('/ui/login', { csrf: 'x'.repeat(43), username: 'eng', password: users['eng']!.password, totp: totpAt(users['eng']!.secret, clock) });
    assert.equal(noCookie.status, 403);
    assert.ok(!noCookie.headers.getSetCookie().some((l) => l.includes('jit_ssh_session=jit_')));
    // And with a valid token the same session works, so the refusals above were the token's doing.
    assert.equal((await b.post('/ui/requests/new', { ...body, csrf: b.csrf() })).status, 303);
    assert.equal(await myRequests('eng'), 1);
  });

  test('fail: posts from another origin, or with no Origin and no Referer, are refused even with a valid token', async () => {
    const b = await loggedIn('eng');
    const before = await myRequests('eng');
    const body = { csrf: b.csrf(), role: 'web-prod', duration: '3h', reason: 'rotate the TLS certificates', action: 'submit' };
    const refused: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: 'http://localhost:8080' },
      { origin: ORIGIN, 'sec-fetch-site': 'cross-site' },
      { origin: ORIGIN, 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of refused) {
      const res = await b.post('/ui/requests/new', body, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.match(b.html, /not sent from this site/);
    }
    // No Origin: the Referer decides; with neither the post is refused.
    const bare = await w.app.request(`${ORIGIN}/ui/requests/new`, { method: 'POST', body: new URLSearchParams(body).toString(), headers: { cookie: `jit_ssh_session=${b.jar.get('jit_ssh_session')}`, 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(bare.status, 403);
    const evilLogin = await w.client().post('/ui/login', { csrf: 'x', username: 'eng', password: 'x', totp: '1' }, { origin: 'http://evil.example' });
    assert.equal(evilLogin.status, 403);
    assert.equal(await myRequests('eng'), before, 'a cross-origin post filed a request');
    const referred = await w.app.request(`${ORIGIN}/ui/requests/new`, {
      method: 'POST',
      body: new URLSearchParams(body).toString(),
      headers: { cookie: `jit_ssh_session=${b.jar.get('jit_ssh_session')}`, 'content-type': 'application/x-www-form-urlencoded', referer: `${ORIGIN}/ui/requests/new` },
    });
    assert.equal(referred.status, 303);
    assert.equal(await b.post('/ui/requests/new', { ...body, action: 'preview' }, { 'sec-fetch-site': 'same-origin' }).then((r) => r.status), 200);
    // `Origin: null` (what a no-referrer policy makes browsers send) passes only when the browser itself says same-origin.
    assert.equal(await b.post('/ui/requests/new', { ...body, action: 'preview' }, { origin: 'null', 'sec-fetch-site': 'same-origin' }).then((r) => r.status), 200);
    assert.equal(await b.post('/ui/requests/new', { ...body, action: 'preview' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }).then((r) => r.status), 403);
    // With JIT_SSH_PUBLIC_URL, only that origin counts, whatever Host the request names.
    const proxied = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY, publicUrl: 'https://ca.example.com' });
    const res = await proxied.app.request(`${ORIGIN}/ui/login`, { method: 'POST', body: 'csrf=x', headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 403);
  });

  test('fail: forms must be urlencoded; an unparsable or other body is refused', async () => {
    const b = await loggedIn('eng');
    const multipart = new FormData();
    multipart.set('csrf', b.csrf());
    const res = await w.app.request(`${ORIGIN}/ui/requests/new`, { method: 'POST', body: multipart, headers: { cookie: `jit_ssh_session=${b.jar.get('jit_ssh_session')}`, origin: ORIGIN } });
    assert.equal(res.status, 415);
  });

  test('ok: a login form refused for its token offers a fresh one that works, even when an older login cookie is still held', async () => {
    const b = w.client();
    await b.get('/ui/login');
    const stale = b.jar.get('jit_ssh_login')!;
    // A form from another login page (say, a tab opened before the cookie was replaced).
    const refused = await b.post('/ui/login', { csrf: 'y'.repeat(43), username: 'eng', password: users['eng']!.password, totp: '000000' });
    assert.equal(refused.status, 403);
    assert.ok(b.jar.get('jit_ssh_login'), 'the answer deleted the login cookie');
    assert.equal(b.jar.get('jit_ssh_login'), b.csrf(), 'the re-shown form and the cookie disagree');
    assert.notEqual(b.csrf(), stale, 'a refused token was offered again');
    clock.advance(30);
    const retry = await b.post('/ui/login', { csrf: b.csrf(), username: 'eng', password: users['eng']!.password, totp: totpAt(users['eng']!.secret, clock) });
    assert.equal(retry.status, 303, b.html);
  });

  test('ok: logging in again in the same browser ends the session it replaces', async () => {
    const b = await loggedIn('eng');
    const first = b.jar.get('jit_ssh_session')!;
    // A login form shown before the first login, in another tab: its post logs in again.
    await b.post('/ui/login', { csrf: 'stale', username: 'eng', password: 'x', totp: '000000' });
    clock.advance(30);
    assert.equal((await b.post('/ui/login', { csrf: b.csrf(), username: 'eng', password: users['eng']!.password, totp: totpAt(users['eng']!.secret, clock) })).status, 303);
    const second = b.jar.get('jit_ssh_session')!;
    assert.notEqual(second, first);
    assert.ok(await w.auth.authenticate(second, 'web'));
    assert.equal(await w.auth.authenticate(first, 'web'), null, 'the replaced session still works, and no logout can reach it');
  });

  test('ok: the API never takes the session cookie or its token, and the pages never take an API token', async () => {
    const b = await loggedIn('boss');
    const token = b.jar.get('jit_ssh_session')!;
    const cookie = `jit_ssh_session=${token}`;
    const before = await myRequests('boss');
    for (const [method, path, body] of [['GET', '/v1/requests', undefined], ['GET', '/v1/audit/events', undefined], ['POST', '/v1/requests', JSON.stringify({ role: 'web-prod', duration: '1h', reason: 'ride the cookie' })]] as const) {
      const res = await w.app.request(`${ORIGIN}${path}`, { method, body, headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' } });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    }
    assert.equal(await myRequests('boss'), before);
    // Nor as a bearer token: with it, a stolen cookie would approve through the API with no step-up code.
    assert.equal((await w.app.request(`${ORIGIN}/v1/requests`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    const pending = (await w.requests.history({ username: 'eng', groups: [], isAdmin: false, isAuditor: true, expiresAt: new Date(8e15), auth: PASSWORD_TOTP }, 'eng', 100)).find((r) => r.status === 'pending');
    assert.ok(pending, 'needs a pending request of eng');
    const approve = await w.app.request(`${ORIGIN}/v1/requests/${pending.id}/approve`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    assert.equal(approve.status, 401);
    assert.equal((await w.requests.get({ username: 'boss', groups: ['sre-leads'], isAdmin: false, isAuditor: true, expiresAt: new Date(8e15), auth: PASSWORD_TOTP }, pending.id)).status, 'pending');
    // The pages take neither a bearer header nor an API token put in the cookie.
    const page = await w.app.request(`${ORIGIN}/ui`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(page.status, 303);
    assert.match(page.headers.get('location')!, /^\/ui\/login/);
    clock.advance(30);
    const api = await w.auth.login({ username: 'boss', password: users['boss']!.password, totp: totpAt(users['boss']!.secret, clock), clientAddress: null });
    assert.equal((await w.app.request(`${ORIGIN}/v1/requests`, { headers: { authorization: `Bearer ${api.token}` } })).status, 200);
    const planted = await w.app.request(`${ORIGIN}/ui`, { headers: { cookie: `jit_ssh_session=${api.token}` } });
    assert.equal(planted.status, 303);
  });

  test('fail: a form larger than the body limit gets an error page with the pages\' headers, not JSON', async () => {
    const b = await loggedIn('eng');
    const res = await b.post('/ui/requests/new', { csrf: b.csrf(), role: 'web-prod', reason: 'x'.repeat(70_000), action: 'preview' });
    assert.equal(res.status, 413);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(b.html, /<h1>Too large<\/h1>/);
    // The API keeps problem+json.
    const api = await w.app.request(`${ORIGIN}/v1/auth/login`, { method: 'POST', body: 'x'.repeat(70_000), headers: { 'content-type': 'application/json' } });
    assert.equal(api.status, 413);
    assert.equal(api.headers.get('content-type'), 'application/problem+json');
  });

  test('ok: logout revokes the session server-side and clears the cookie', async () => {
    const logouts = (await listEvents(t.db, { action: 'logout', actor: 'eng' })).length;
    const b = await loggedIn('eng');
    const token = b.jar.get('jit_ssh_session')!;
    assert.ok(await w.auth.authenticate(token, 'web'));
    const res = await b.post('/ui/logout', { csrf: b.csrf() });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/ui/login');
    assert.match(res.headers.getSetCookie().join('\n'), /jit_ssh_session=; Max-Age=0/);
    assert.equal(await w.auth.authenticate(token, 'web'), null, 'the session still works after logout');
    const replay = await w.app.request(`${ORIGIN}/ui`, { headers: { cookie: `jit_ssh_session=${token}` } });
    assert.equal(replay.status, 303);
    assert.equal((await listEvents(t.db, { action: 'logout', actor: 'eng' })).length, logouts + 1);
  });
});
