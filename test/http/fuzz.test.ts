// Bad input to every route, on a real database: each route the app registers
// (read from its own route table, so a new route is fuzzed without anyone
// listing it) gets hostile path parameters, query strings, headers, tokens,
// session cookies, CSRF tokens and bodies; the endpoints that take input also
// get nearly valid input with one field made hostile. Whatever comes in:
//
// - the answer is below 500, and nothing is logged as an unhandled error;
// - a refusal is problem+json with a status and a detail (the API), or an
//   error page saying what went wrong (the web pages under /ui);
// - a redirect stays on this site;
// - a refusal changed nothing: users, sessions, requests, approvals, grants,
//   certificates, revocations and queued notifications are as they were (the
//   audit log and the login-failure counters are meant to grow).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { parsePolicy } from '../../src/core/policy.js';
import type { Database } from '../../src/db/schema.js';
import { createAdminApp, LABEL_HEADER } from '../../src/http/admin-app.js';
import type { AdminPeer } from '../../src/http/admin-socket.js';
import { createApp } from '../../src/http/app.js';
import { webPages } from '../../src/web/index.js';
import { createCaKeysPublisher } from '../../src/services/ca-keys.js';
import type { Logger } from '../../src/log.js';
import { createUserAdmin } from '../../src/services/users.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { checkAsync, damaged, fc, hostileJsonText, hostileText, hostileUriComponent } from '../helpers/fuzz.js';
import { SECRET_KEY, TestClock, totpAt } from '../helpers/identity.js';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { ORIGIN, webIdentity } from '../web/helpers.js';

const postgres = (name: string) => name === 'postgres';
/** Runs per route, and per nearly-valid endpoint: fewer on the second backend, which the first already covered. */
const ROUTE_RUNS = (backend: string) => (postgres(backend) ? 25 : 60);
const FIELD_RUNS = (backend: string) => (postgres(backend) ? 60 : 150);

/** What a refusal must leave unchanged: every table but the audit log, the chain and the login counters. */
const STATE_TABLES = ['users', 'sessions', 'requests', 'approvals', 'grants', 'certificates', 'revocations', 'notifications', 'krl_state'] as const;

async function snapshot(db: Kysely<Database>): Promise<Record<string, string>> {
  const parts = STATE_TABLES.map((t) => sql`(select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${sql.table(t)} x) as ${sql.ref(t)}`);
  const { rows } = await sql<Record<string, string>>`select ${sql.join(parts)}`.execute(db);
  return rows[0]!;
}

const isWeb = (path: string) => path === '/ui' || path.startsWith('/ui/');
/** Header values carry bytes, not text: anything else is written as ~hex (the server's own parser refuses the rest). */
const HEADER_SAFE = (s: string) => s.replace(/[^\x20-\x7e]/g, (ch) => `~${ch.charCodeAt(0).toString(16)}`);

interface Route {
  method: string;
  path: string;
}

for (const backend of BACKENDS) {
  describe(`bad input to every route (${backend.name})`, () => {
    let t: TestDb;
    let w: Awaited<ReturnType<typeof webIdentity>>;
    let app: ReturnType<typeof createApp>;
    const clock = new TestClock();
    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (msg, f) => void errors.push(`${msg} ${JSON.stringify(f).slice(0, 2000)}`) };
    const tokens = { boss: '', eng: '' };
    const sessions = { boss: { cookie: '', csrf: '' }, eng: { cookie: '', csrf: '' } };
    // Logging out ends a session for good: the logout routes get sessions of their own.
    const spare = { tokens: { ...tokens }, sessions: { ...sessions } };
    // Fixtures the route fuzz may reach by id (and cancel, approve, end), and ones kept for the nearly-valid tests.
    const ids = { pending: '', live: '', glass: '' };
    const mine = { pending: '', glass: '', issue: '', extend: '' };
    let keyLine = '';
    let bossSecret = '';

    before(async () => {
      t = await backend.open();
      // No address-wide login block: the fuzz fails many logins from one address, and a right one must still pass at the end.
      w = await webIdentity(t.db, clock, { policy: WORKFLOW_POLICY, settings: { addressFailureLimit: 1_000_000 } });
      const caKeys = createCaKeysPublisher({ db: t.db, signer: w.signer, publicKeys: [publicKeyLine(w.signer, 'jit-ssh-ca')], retiredKeys: [] });
      const policy = parsePolicy(WORKFLOW_POLICY);
      app = createApp({
        logger,
        bodyLimit: 65536,
        caKeys: () => caKeys.document(),
        ready: async () => {},
        auth: w.auth,
        clientAddress: () => '198.51.100.9',
        requests: w.requests,
        certificates: w.certificates,
        reloadPolicy: async () => ({ ok: true, changed: false, digest: policy.digest, roles: policy.roles.size }),
        audit: w.audit,
        krl: () => w.revocation.krl(),
        pages: webPages({ logger, auth: w.auth, stepUp: w.stepUp, requests: w.requests, audit: w.audit, clientAddress: () => '198.51.100.9', publicUrl: null, now: clock.now }),
      });
      const boss = await w.addUser('boss', ['admins', 'auditors', 'engineering', 'oncall', 'sre-leads']);
      const eng = await w.addUser('eng', ['engineering']);
      await w.addUser('victim', ['engineering']);
      const sre = await w.addUser('sre', ['sre']);
      bossSecret = boss.secret;
      for (const set of [{ tokens, sessions }, spare]) {
        for (const [name, u] of [['boss', boss], ['eng', eng]] as const) {
          set.tokens[name] = await w.tokenFor(u);
          const b = w.client();
          assert.equal((await b.login(u)).status, 303);
          await b.get('/ui');
          set.sessions[name] = { cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), csrf: b.csrf() };
        }
      }
      const asEng = await w.as(eng);
      const asBoss = await w.as(boss);
      const asSre = await w.as(sre);
      for (const set of [ids, mine]) {
        set.pending = (await asEng('POST', '/v1/requests', { role: 'web-prod', duration: '3h', reason: 'rotate the session keys' })).body.id;
        set.glass = (await asSre('POST', '/v1/requests', { role: 'web-prod', duration: '30m', reason: 'the site is down, need a shell', break_glass: true })).body.id;
      }
      ids.live = (await asBoss('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'restart the stuck workers' })).body.id;
      mine.issue = (await asBoss('POST', '/v1/requests', { role: 'web-prod', duration: '2h', reason: 'deploy the hotfix now' })).body.id;
      mine.extend = (await asBoss('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'migrate the database' })).body.id;
      for (const id of [...Object.values(ids), ...Object.values(mine)]) assert.match(id, /^[0-9A-Z]{26}$/);
      keyLine = userKey(tempDir(), 'ed25519').publicLine;
    });
    after(async () => {
      await t.cleanup();
    });

    /** Sends one request and checks the answer; returns it with its body. */
    async function send(method: string, url: string, init: { headers?: Record<string, string>; body?: string | Uint8Array }, label: string) {
      const before = errors.length;
      let res: Response;
      try {
        res = await app.request(url.startsWith('http') ? url : `${ORIGIN}${url}`, { method, headers: init.headers, body: method === 'GET' || method === 'HEAD' ? undefined : init.body });
      } catch (e) {
        assert.fail(`${label}: the app threw ${(e as Error).stack}`);
      }
      // The whole body: a stream that fails part way (an export) must fail here, not pass unread.
      const text = await res.text();
      const path = new URL(url.startsWith('http') ? url : `${ORIGIN}${url}`).pathname;
      const where = `${label}: ${method} ${url.slice(0, 300)} -> ${res.status} ${text.slice(0, 300)}`;
      assert.ok(res.status < 500, where);
      assert.deepEqual(errors.slice(before), [], where);
      if (res.status >= 300 && res.status < 400) assert.match(res.headers.get('location') ?? '', /^\/(?![/\\])/, `${where}: a redirect off this site`);
      if (res.status >= 400 && method !== 'HEAD') {
        const type = res.headers.get('content-type') ?? '';
        if (isWeb(path)) {
          assert.match(type, /^text\/html/, where);
          assert.match(text, /role="alert"[^>]*>\s*[^<\s][^<]*</, `${where}: an error page says what went wrong`);
        } else {
          assert.equal(type, 'application/problem+json', where);
          const p = JSON.parse(text) as { status?: unknown; detail?: unknown; title?: unknown };
          assert.equal(p.status, res.status, where);
          assert.ok(typeof p.detail === 'string' && p.detail.length > 0 && typeof p.title === 'string', where);
        }
      }
      return { res, text };
    }

    /** Sends, and on a refusal checks that the state did not change. */
    async function sendChecked(method: string, url: string, init: { headers?: Record<string, string>; body?: string | Uint8Array }, label: string) {
      const before = method === 'GET' || method === 'HEAD' ? null : await snapshot(t.db);
      const out = await send(method, url, init, label);
      if (before && out.res.status >= 400) assert.deepEqual(await snapshot(t.db), before, `${label}: ${method} ${url.slice(0, 200)} was refused (${out.res.status}) but changed the state`);
      return out;
    }

    const routes = (): Route[] => {
      const seen = new Map<string, Route>();
      for (const r of app.routes) if (r.method !== 'ALL') seen.set(`${r.method} ${r.path}`, { method: r.method, path: r.path });
      return [...seen.values()];
    };

    test('the route table lists the API and the web pages', () => {
      const listed = routes().map((r) => `${r.method} ${r.path}`);
      for (const r of ['POST /v1/auth/login', 'POST /v1/requests', 'POST /v1/requests/:id/approve', 'POST /v1/certificates', 'GET /v1/audit/export', 'POST /v1/admin/policy/reload', 'GET /v1/krl', 'POST /ui/login', 'POST /ui/requests/:id/decide', 'GET /ui/audit/report.csv']) {
        assert.ok(listed.includes(r), `${r} is not in the route table: ${listed.join(', ')}`);
      }
      assert.ok(listed.length >= 45, `${listed.length} routes`);
    });

    // Path parameters: the fixtures' real ids now and then, so the hostile rest reaches the handlers.
    const idParam = fc.oneof(
      { weight: 3, arbitrary: hostileUriComponent },
      { weight: 2, arbitrary: fc.constantFrom('pending', 'live', 'glass').map((k) => ids[k as keyof typeof ids]) },
      { weight: 1, arbitrary: fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/) },
      { weight: 1, arbitrary: fc.constantFrom('boss', 'eng', 'nobody', 'a'.repeat(300)) },
    );
    const queryKey = fc.oneof(fc.constantFrom('status', 'review', 'user', 'principal', 'role', 'serial', 'request', 'approver', 'break_glass', 'since', 'until', 'limit', 'cursor', 'actor', 'action', 'target', 'format', 'stream', 'dry_run', 'next'), hostileUriComponent);
    const queryValue = fc.oneof(hostileUriComponent, fc.constantFrom('pending', 'open', 'true', 'false', '30d', '2026-11-22T00:00:00Z', '0', '1000', '1001', 'json', 'md', 'csv', 'events', 'certificates', 'czo5OTk5OTk5OTk5OTk5OTk5OTk5OQ', 'czotMQ'));
    const query = fc.array(fc.tuple(queryKey, queryValue), { maxLength: 6 }).map((pairs) => (pairs.length ? '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&') : ''));
    const body = fc.oneof(
      { weight: 4, arbitrary: hostileJsonText },
      { weight: 2, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('csrf', 'role', 'duration', 'reason', 'ticket', 'comment', 'decision', 'totp', 'action', 'username', 'password', 'next'), hostileText), hostileText, { maxKeys: 6 }).map((f) => new URLSearchParams(f).toString()) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }).map((n) => `{"reason":"${'x'.repeat(n)}"}`) },
    );
    const request = fc.record({
      params: fc.array(idParam, { minLength: 2, maxLength: 2 }),
      extraPath: fc.oneof({ weight: 9, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('/', '//', '/..', '/x', '%2F', '/%00') }),
      query,
      method: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST', 'GET') }),
      who: fc.constantFrom('nobody', 'garbage', 'eng', 'boss'),
      garbage: hostileText,
      authScheme: fc.constantFrom('Bearer ', 'bearer ', 'Basic ', '', 'Bearer  '),
      csrf: fc.constantFrom('valid', 'missing', 'garbage', 'other-session'),
      origin: fc.constantFrom('same', 'same', 'missing', 'other', 'null'),
      type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '', 'application/json, text/html'),
      body,
      extraHeaders: fc.dictionary(fc.constantFrom('X-Request-Id', 'X-Forwarded-For', 'Accept', 'Accept-Language', 'Cookie2', 'X-Jit-Ssh-Actor', 'If-None-Match'), hostileText.map(HEADER_SAFE), { maxKeys: 3 }),
    });

    test('any path parameter, query, credential, header and body: below 500, a problem or an error page, nothing changed on a refusal', async () => {
      const [tokensInUse, sessionsInUse] = [tokens, sessions];
      for (const route of routes()) {
        const { tokens, sessions } = route.path.endsWith('/logout') ? spare : { tokens: tokensInUse, sessions: sessionsInUse };
        await checkAsync(`${route.method} ${route.path}`, request, async (r) => {
          let i = 0;
          const path = route.path.replace(/:[A-Za-z]+/g, () => r.params[i++ % r.params.length]!).replace('*', r.params[1]!) + r.extraPath;
          const web = isWeb(route.path);
          const headers: Record<string, string> = { ...r.extraHeaders };
          const who = r.who === 'boss' || r.who === 'eng' ? r.who : null;
          if (web) {
            if (who) headers['cookie'] = sessions[who].cookie;
            else if (r.who === 'garbage') headers['cookie'] = `jit_ssh_session=${HEADER_SAFE(r.garbage)}; jit_ssh_login=${HEADER_SAFE(r.garbage)}`;
            if (r.origin !== 'missing') headers['origin'] = { same: ORIGIN, other: 'https://evil.example', null: 'null' }[r.origin];
          } else if (who) headers['authorization'] = `${r.authScheme}${tokens[who]}`;
          else if (r.who === 'garbage') headers['authorization'] = r.authScheme + HEADER_SAFE(r.garbage);
          if (r.type) headers['content-type'] = r.type;
          let payload: string | Uint8Array = r.body;
          if (web && typeof payload === 'string' && r.type.startsWith('application/x-www-form-urlencoded')) {
            const csrf = r.csrf === 'valid' && who ? sessions[who].csrf : r.csrf === 'other-session' && who ? sessions[who === 'boss' ? 'eng' : 'boss'].csrf : r.csrf === 'garbage' ? r.garbage : null;
            if (csrf !== null) payload = `csrf=${encodeURIComponent(csrf.replace(/[\ud800-\udfff]/g, ''))}&${payload}`;
          }
          await sendChecked(r.method ?? route.method, path + r.query, { headers, body: payload }, `${route.method} ${route.path}`);
        }, ROUTE_RUNS(backend.name));
      }
    });

    // ---- The endpoints that take input, with nearly valid input: one or two fields hostile. ----

    /** Any JSON value, to put where a field's value goes. */
    const anyValue = fc.oneof(
      hostileText,
      fc.jsonValue(),
      fc.double(),
      fc.integer(),
      fc.maxSafeNat(),
      // durations, times and ids that look right and are out of every range
      fc.stringMatching(/^(\d{1,14}[dhms]){1,2}$/),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom(null, true, false, 0, -1, 1e308, 2 ** 53, 2 ** 31, -0, [], {}, ['x'], { $gt: '' }),
    );
    /** `base` with some fields replaced by hostile values or removed, and perhaps a stray field. */
    const nearly = (base: Record<string, unknown>, extra: fc.Arbitrary<unknown> = anyValue) =>
      fc.tuple(fc.subarray(Object.keys(base), { minLength: 1, maxLength: Math.min(2, Object.keys(base).length) }), fc.array(fc.oneof(extra, fc.constant(undefined)), { minLength: 2, maxLength: 2 }), fc.option(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'is_admin', 'username', 'x'), anyValue))).map(([keys, values, stray]) => {
        const out: Record<string, unknown> = { ...base };
        keys.forEach((k, i) => (values[i] === undefined ? delete out[k] : (out[k] = values[i])));
        if (stray) Object.defineProperty(out, stray[0], { value: stray[1], enumerable: true });
        return JSON.stringify(out);
      });
    const api = (who: 'boss' | 'eng', method: string, path: string, json: string, label: string) =>
      sendChecked(method, path, { headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' }, body: json }, label);

    test('nearly valid API input: log in, file, extend, decide, issue', async () => {
      const runs = FIELD_RUNS(backend.name);
      await checkAsync('POST /v1/auth/login', nearly({ username: 'victim', password: 'victim-password-long', totp: '123456' }), (json) => sendChecked('POST', '/v1/auth/login', { headers: { 'content-type': 'application/json' }, body: json }, 'login').then(() => {}), runs);
      const filing = { role: 'web-prod', duration: '1h', reason: 'deploy the release', ticket: 'OPS-1', break_glass: false, dry_run: true };
      await checkAsync('POST /v1/requests', fc.tuple(fc.constantFrom('boss', 'eng') as fc.Arbitrary<'boss' | 'eng'>, nearly(filing)), ([who, json]) => api(who, 'POST', '/v1/requests', json, 'file').then(() => {}), runs);
      await checkAsync('POST /v1/requests/:id/extend', nearly({ duration: '30m', reason: 'the release is slow', ticket: 'OPS-2' }), (json) => api('boss', 'POST', `/v1/requests/${mine.extend}/extend`, json, 'extend').then(() => {}), runs);
      await checkAsync('POST /v1/requests/:id/{approve,deny,acknowledge}', fc.tuple(fc.constantFrom('approve', 'deny', 'acknowledge'), fc.constantFrom('pending', 'glass'), nearly({ comment: 'looked at it' })), ([verb, id, json]) => api('boss', 'POST', `/v1/requests/${mine[id as 'pending' | 'glass']}/${verb}`, json, verb).then(() => {}), runs);
      // The key: damaged copies of a real one, edited lines, and hostile text.
      const blob = Buffer.from(keyLine.split(' ')[1]!, 'base64');
      const key = fc.oneof(
        fc.constant(keyLine),
        damaged(blob).map((b) => `ssh-ed25519 ${b.toString('base64')} me@laptop`),
        fc.tuple(fc.nat({ max: keyLine.length }), fc.string({ unit: 'binary', maxLength: 4 }), fc.integer({ min: 0, max: 4 })).map(([at, s, drop]) => keyLine.slice(0, at) + s + keyLine.slice(at + drop)),
        fc.constantFrom(`${keyLine}\n${keyLine}`, `${keyLine}\0`, keyLine.replace(' ', '\n'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----', `ssh-ed25519-cert-v01@openssh.com ${blob.toString('base64')}`),
        anyValue,
      );
      const issued = { n: 0 };
      await checkAsync('POST /v1/certificates', fc.tuple(key, fc.oneof({ weight: 4, arbitrary: fc.constant(mine.issue) }, { weight: 1, arbitrary: anyValue })), async ([public_key, request_id]) => {
        const { res } = await api('boss', 'POST', '/v1/certificates', JSON.stringify({ public_key, request_id }), 'issue');
        if (res.status === 201) issued.n++;
      }, runs);
      assert.ok(issued.n > 0, 'an undamaged key got its certificate now and then');
    });

    test('nearly valid form posts of the web pages', async () => {
      const runs = FIELD_RUNS(backend.name);
      const formOf = (fields: Record<string, unknown>) => new URLSearchParams(Object.entries(fields).filter(([, v]) => typeof v === 'string') as Array<[string, string]>).toString();
      const text = fc.oneof(hostileText, fc.constantFrom('web-prod', 'db-prod', '1h', '30m', 'OPS-1', 'on', 'preview', 'submit', 'approve', 'deny', '/ui', '//evil.example', '/ui/../../x', 'https://evil.example', '/\\evil.example'));
      const nearlyForm = (base: Record<string, string>) =>
        fc.tuple(fc.subarray(Object.keys(base), { minLength: 1, maxLength: Math.min(2, Object.keys(base).length) }), fc.array(fc.option(text), { minLength: 2, maxLength: 2 })).map(([keys, values]) => {
          const out: Record<string, unknown> = { ...base };
          keys.forEach((k, i) => (values[i] === null ? delete out[k] : (out[k] = values[i]!.replace(/[\ud800-\udfff]/g, ''))));
          return formOf(out);
        });
      const post = (who: 'boss' | 'eng', path: string, form: string, label: string) =>
        sendChecked('POST', path, { headers: { cookie: sessions[who].cookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${sessions[who].csrf}&${form}` }, label);
      await checkAsync('POST /ui/requests/new', fc.tuple(fc.constantFrom('boss', 'eng') as fc.Arbitrary<'boss' | 'eng'>, nearlyForm({ role: 'web-prod', duration: '1h', reason: 'deploy the release', ticket: 'OPS-1', break_glass: 'on', action: 'preview' })), ([who, form]) => post(who, '/ui/requests/new', form, 'new request').then(() => {}), runs);
      await checkAsync('POST /ui/requests/:id/decide', nearlyForm({ decision: 'approve', comment: 'fine', totp: '000000' }), (form) => post('boss', `/ui/requests/${mine.pending}/decide`, form, 'decide').then(() => {}), runs);
      await checkAsync('POST /ui/grants/:id/acknowledge', nearlyForm({ comment: 'checked the incident' }), (form) => post('boss', `/ui/grants/${mine.glass}/acknowledge`, form, 'acknowledge').then(() => {}), runs);
      // The login form, with its own double-submit token. First right logins with a hostile `next`: the redirect
      // stays on the site (send() checks Location); each takes a fresh code, so their number is not scaled.
      // (A `next` is cut to 4 KiB: a form over the body limit is a 413, which the route fuzz covers.)
      const b = w.client();
      await b.get('/ui/login');
      const loginCookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const loginPost = (fields: Record<string, unknown>, label: string) => send('POST', '/ui/login', { headers: { cookie: loginCookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, body: formOf(fields) }, label);
      await checkAsync('POST /ui/login next', text, async (next) => {
        clock.advance(30);
        const { res } = await loginPost({ csrf: b.csrf(), username: 'boss', password: 'boss-password-long', totp: totpAt(bossSecret, clock), next: next.replace(/[\ud800-\udfff]/g, '').slice(0, 4096) }, 'login next');
        assert.equal(res.status, 303);
      }, 15, { scale: false });
      await checkAsync('POST /ui/login', nearlyForm({ csrf: b.csrf(), username: 'victim', password: 'victim-password-long', totp: '000000', next: '/ui/queue' }), async (form) => {
        await sendChecked('POST', '/ui/login', { headers: { cookie: loginCookie, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, body: form }, 'login form');
      }, runs);
    });

    test('regression: a duration longer than the database can hold is a 400, not a 500 (filed requests stored it in a 32-bit column)', async () => {
      for (const duration of ['24855d', '100000d', '99999999999d', 2 ** 31, Number.MAX_SAFE_INTEGER]) {
        for (const dry_run of [false, true]) {
          const { res, text } = await api('boss', 'POST', '/v1/requests', JSON.stringify({ role: 'web-prod', duration, reason: 'a very long stay', dry_run }), 'long');
          assert.equal(res.status, 400, text);
          assert.equal(JSON.parse(text).detail, 'duration must be at most 366d');
        }
        const { res, text } = await api('boss', 'POST', `/v1/requests/${mine.extend}/extend`, JSON.stringify({ duration, reason: 'a very long stay' }), 'long extend');
        assert.equal(res.status, 400, text);
      }
      const { res } = await api('boss', 'POST', '/v1/requests', JSON.stringify({ role: 'web-prod', duration: '366d', reason: 'the longest one may ask' }), 'longest');
      assert.equal(res.status, 201, 'up to 366d is filed (and denied by policy)');
    });

    test('the local admin API (its Unix socket) answers bad input with problems too', async () => {
      const admin = createAdminApp({ users: createUserAdmin({ db: t.db, box: createSecretBox(SECRET_KEY), passwordCost: 14, now: clock.now }), audit: w.audit, revocation: w.revocation, logger });
      const adminRoutes = [...new Map(admin.routes.filter((r) => r.method !== 'ALL').map((r) => [`${r.method} ${r.path}`, r])).values()];
      assert.ok(adminRoutes.length >= 10);
      const names = fc.oneof(hostileUriComponent, fc.constantFrom('nobody', 'newbie', 'a'.repeat(200)));
      const adminBody = fc.oneof(hostileJsonText, nearly({ name: 'newbie', groups: ['engineering'], password: 'a-long-password-here', text: 'Accepted publickey', host: 'web-1', serial: '42', reason: 'lost laptop' }));
      for (const route of adminRoutes) {
        // The caller as the socket names it: mostly the server's own user, sometimes another uid or none at all.
        const peers: fc.Arbitrary<AdminPeer | undefined> = fc.oneof(
          { weight: 6, arbitrary: fc.constant({ uid: process.geteuid!(), pid: 4321, name: 'ops' }) },
          { weight: 1, arbitrary: fc.record({ uid: fc.integer({ min: 1, max: 2 ** 32 - 1 }).filter((u) => u !== process.geteuid!()), pid: fc.nat(), name: fc.option(fc.constantFrom('mallory', 'nobody')) }) },
          { weight: 1, arbitrary: fc.constantFrom(undefined, { error: 'getsockopt SO_PEERCRED: Transport endpoint is not connected' }) },
        );
        const labels = fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('carol', 'os:root') }, { weight: 1, arbitrary: hostileText.map(HEADER_SAFE) });
        await checkAsync(`admin ${route.method} ${route.path}`, fc.tuple(names, query, adminBody, peers, labels), async ([name, q, json, peer, label]) => {
          const url = `http://localhost${route.path.replace(/:[A-Za-z]+/g, name)}${q}`;
          const before = route.method === 'GET' ? null : await snapshot(t.db);
          const headers = { ...(label === undefined ? {} : { [LABEL_HEADER]: label }), 'content-type': 'application/json' };
          const res = await admin.request(url, { method: route.method, headers, body: route.method === 'GET' ? undefined : json }, { peer });
          const text = await res.text();
          const where = `admin ${route.method} ${url.slice(0, 200)} ${json.slice(0, 200)} -> ${res.status} ${text.slice(0, 300)}`;
          assert.ok(res.status < 500, where);
          if (!peer || 'error' in peer || (peer.uid !== process.geteuid!() && peer.uid !== 0)) assert.equal(res.status, 403, `${where}: a caller the socket did not vouch for`);
          if (res.status >= 400) {
            assert.equal(res.headers.get('content-type'), 'application/problem+json', where);
            assert.ok(JSON.parse(text).detail, where);
            if (before) assert.deepEqual(await snapshot(t.db), before, `${where}: refused but changed the state`);
          }
        }, ROUTE_RUNS(backend.name) / 2);
      }
      assert.deepEqual(errors, []);
    });
  });
}
