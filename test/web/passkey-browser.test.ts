// Passkeys in a real browser: headless Chromium (playwright-core) with its
// virtual authenticator (DevTools protocol, WebAuthn domain), against the real
// server on the embedded database, and on PostgreSQL when TEST_DATABASE_URL is
// set. Register a passkey, sign in with it, approve with a passkey step-up
// bound to the request; an assertion captured and sent again, and a cloned
// key (same private key, lower signature counter), are refused and recorded;
// a person without a passkey is refused where policy asks for one.
// The pages are opened at http://localhost:PORT: WebAuthn needs a domain as
// its RP id (an IP address is refused) and a secure context (localhost is one).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { COUNTER_REFUSED } from '../../src/services/webauthn.js';
import { CHROMIUM, CHROMIUM_ARGS, LOCALHOST_AS_LOOPBACK, SERVER_BACKENDS, addVirtualAuthenticator } from '../helpers/browser.js';
import { listEvents } from '../helpers/events.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';

/** The code for the time-step `offset` seconds from now, from oathtool. */
const totp = (secret: string, offset = 0) => execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(Date.now() / 1000) + offset}`], { encoding: 'utf8' }).trim();

const policy = (login: 'totp' | 'webauthn') => `
mfa:
  login: ${login}
  approval: webauthn
roles:
  web-prod:
    principals: [deploy]
    requesters: [group:engineering]
    approval:
      approvers: [group:sre-leads]
      required: 1
  vault:
    principals: [vault]
    requesters: [group:engineering]
    require_mfa: webauthn
    auto_approve:
      - groups: [engineering]
`;

interface Person {
  name: string;
  password: string;
  secret: string;
  /** TOTP steps already used (each serves once per user): the next login takes a later one. */
  offset: number;
}

describe('passkeys in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)` }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, LOCALHOST_AS_LOOPBACK] });
  });
  after(() => browser?.close());

  for (const backend of SERVER_BACKENDS) {
    describe(`against the real server (${backend.name})`, () => {
      let server: RunningServer;
      let base: string;
      let drop: () => Promise<void>;
      const dir = tempDir('jit-ssh-passkey-');
      const policyFile = path.join(dir, 'policy.yaml');
      const people: Record<string, Person> = {};
      const problems: string[] = [];
      // The approver's browser, with its authenticator, across the tests.
      let lead: { context: BrowserContext; page: Page; cdp: CDPSession; authenticatorId: string };
      let credentialId = '';
      let firstRequest = '';

      before(async () => {
        const db = await backend.database();
        drop = db.drop;
        writeFileSync(policyFile, policy('totp'));
        const config = loadServerConfig({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: policyFile, JIT_SSH_PASSWORD_COST: '14', ...db.env }, { port: '0' });
        server = await startServer(config, createLogger('error', () => {}));
        base = server.url.replace('127.0.0.1', 'localhost');
        const groups: Record<string, string[]> = { eng: ['engineering'], lead: ['sre-leads', 'engineering'], nokey: ['sre-leads'] };
        for (const [name, g] of Object.entries(groups)) {
          const password = `${name}-password-long`;
          const e = await server.users.add({ name, groups: g, password }, 'os:test');
          people[name] = { name, password, secret: secretOf(e.otpauth_uri), offset: 0 };
        }
      });
      after(async () => {
        await lead?.context.close();
        await server?.close();
        await drop?.();
        assert.deepEqual(problems, [], 'console errors or CSP violations');
      });

      const open = async () => {
        const context = await browser.newContext({ baseURL: base });
        context.setDefaultTimeout(10_000);
        const page = await context.newPage();
        page.on('console', (m) => m.type() === 'error' && !/status of 40[0-9] \(/.test(m.text()) && problems.push(`console: ${m.text()}`));
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        return { context, page };
      };
      /** The password + code form; a fresh TOTP step each time. */
      const passwordStep = async (page: Page, who: Person) => {
        await page.goto('/ui/login');
        await page.getByLabel('User name').fill(who.name);
        await page.getByLabel('Password').fill(who.password);
        await page.getByLabel('Authenticator code').fill(totp(who.secret, who.offset));
        who.offset += 30;
        await page.getByRole('button', { name: 'Log in' }).click();
      };
      /** Files a request over the API as `who` (a password + code session). */
      const tokens = new Map<string, string>();
      const file = async (who: Person, body: Record<string, unknown>) => {
        // One API session per person: codes allow one step of drift, and each serves once.
        if (!tokens.has(who.name)) {
          const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: who.name, password: who.password, totp: totp(who.secret, who.offset) }) });
          who.offset += 30;
          assert.equal(login.status, 200);
          tokens.set(who.name, ((await login.json()) as { token: string }).token);
        }
        const token = tokens.get(who.name)!;
        const res = await fetch(`${base}/v1/requests`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      const approveOnPage = async (page: Page, id: string, comment: string) => {
        await page.goto(`/ui/requests/${id}`);
        await page.getByLabel('Comment (optional)').fill(comment);
        await page.getByLabel('Approve').check();
        await page.getByRole('button', { name: 'Confirm with your passkey' }).click();
      };

      test('register: an approver adds a passkey on the Passkeys page', async () => {
        const { context, page } = await open();
        const { cdp, authenticatorId } = await addVirtualAuthenticator(page);
        lead = { context, page, cdp, authenticatorId };
        await passwordStep(page, people['lead']!);
        await page.waitForURL('**/ui'); // no passkey yet, and policy asks none at login: signed in
        await page.getByRole('link', { name: 'Passkeys' }).click();
        await page.getByLabel('Name (to tell your passkeys apart)').fill('test laptop');
        await page.getByRole('button', { name: 'Register a passkey' }).click();
        await page.getByText('Registered test laptop.').waitFor();
        const row = page.locator('tbody tr', { hasText: 'test laptop' });
        assert.equal(await row.count(), 1);
        const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
        assert.equal(credentials.length, 1);
        credentialId = Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url');
        assert.match(await row.innerText(), new RegExp(credentialId.slice(0, 16)));
        const reg = await listEvents(server.database.db, { action: 'webauthn.register', actor: 'lead' });
        assert.deepEqual(reg.map((e) => e.details['credential']), [credentialId]);
      });

      test('log in: with a passkey registered, the sign-in ends with it', async () => {
        const { page } = lead;
        await page.locator('header form').getByRole('button', { name: 'Log out' }).click();
        await page.waitForURL('**/ui/login');
        await passwordStep(page, people['lead']!);
        await page.waitForURL('**/ui/login/passkey');
        assert.match(await page.locator('main').innerText(), /Signing in as lead/);
        await page.getByRole('button', { name: 'Use your passkey' }).click();
        await page.waitForURL('**/ui');
        await page.goto('/ui/account');
        assert.match(await page.locator('main').innerText(), /You signed in with: password\+totp and a passkey/);
        const ok = (await listEvents(server.database.db, { action: 'login.ok', actor: 'lead' })).at(-1)!;
        assert.deepEqual(ok.details['auth'], { method: 'password+totp', webauthn: credentialId });
      });

      test('approve: the decision is confirmed with the passkey, for that request; the audit names the passkey', async () => {
        const r = await file(people['eng']!, { role: 'web-prod', duration: '1h', reason: 'deploy the checkout fix' });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        firstRequest = r.body['id'];
        const { page } = lead;
        // The queue sends the approver to the request's page, where the passkey confirms; no code field anywhere.
        await page.goto('/ui/queue');
        assert.equal(await page.getByLabel('Authenticator code, to confirm').count(), 0);
        await page.locator('article', { has: page.locator(`#q-${firstRequest}`) }).getByRole('link', { name: 'Decide, with your passkey' }).click();
        await page.waitForURL(`**/ui/requests/${firstRequest}`);
        assert.equal(await page.getByLabel('Authenticator code, to confirm').count(), 0);
        await approveOnPage(page, firstRequest, 'checked, go ahead');
        await page.waitForURL(`**/ui/requests/${firstRequest}`);
        await page.locator('h1', { hasText: 'approved' }).waitFor();
        const approve = (await listEvents(server.database.db, { action: 'request.approve', target: firstRequest }))[0]!;
        assert.equal((approve.details['step_up'] as Record<string, unknown>)['method'], 'webauthn');
        assert.equal((approve.details['step_up'] as Record<string, unknown>)['credential'], credentialId);
        assert.deepEqual(approve.details['auth'], { method: 'password+totp', webauthn: credentialId });
      });

      test('replay: an assertion captured from one approval and sent again for another request is refused', async () => {
        const { page } = lead;
        const a = await file(people['eng']!, { role: 'web-prod', duration: '1h', reason: 'restart the queue workers' });
        const b = await file(people['eng']!, { role: 'web-prod', duration: '1h', reason: 'rotate the search index' });
        // The answer the browser posts for a, captured on its way (and let through).
        let captured = '';
        await page.route(`**/ui/requests/${a.body['id']}/decide`, async (route) => {
          captured = new URLSearchParams(route.request().postData() ?? '').get('webauthn') ?? '';
          await route.continue();
        });
        await approveOnPage(page, a.body['id'], 'fine');
        await page.locator('h1', { hasText: 'approved' }).waitFor();
        await page.unroute(`**/ui/requests/${a.body['id']}/decide`);
        assert.ok(captured.includes('authenticatorData'), 'no assertion was captured');
        // b's page, with the captured answer put in place of a fresh one: the server gets it as the browser sends forms.
        await page.goto(`/ui/requests/${b.body['id']}`);
        await page.getByLabel('Approve').check();
        await page.locator('input[name=webauthn]').evaluate((el, v) => ((el as unknown as { value: string }).value = v), captured);
        await page.getByRole('button', { name: 'Confirm with your passkey' }).click();
        await page.locator('[role=alert]').waitFor();
        assert.match(await page.locator('[role=alert]').innerText(), /the passkey did not confirm this/);
        assert.match(await page.locator('h1').innerText(), /pending/);
        const failed = (await listEvents(server.database.db, { action: 'webauthn.failed', target: b.body['id'] })).at(-1)!;
        assert.equal(failed.details['reason'], 'invalid');
        // The same answer for a again finds its challenge used up.
        // The same answer for a again (posted as a form would be, with this browser's cookies): a is decided, and its challenge was used up.
        const csrf = await page.locator('input[name=csrf]').first().inputValue();
        const again = (await page.request.post(`/ui/requests/${a.body['id']}/decide`, { form: { csrf, decision: 'approve', webauthn: captured }, headers: { origin: base }, maxRedirects: 0 })).status();
        assert.ok(again === 409 || again === 403, `a replay of a decided request answered ${again}`);
      });

      test('clone: a copy of the passkey with a lower signature counter is refused and recorded', async () => {
        const { page, cdp, authenticatorId } = lead;
        const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
        const real = credentials[0]!;
        assert.ok(real.signCount >= 3, `the virtual authenticator's counter is ${real.signCount}`);
        // The "cloned" key: the same private key and id, its counter behind the real one's.
        await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: real.credentialId });
        await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...real, signCount: 0 } });
        const r = await file(people['eng']!, { role: 'web-prod', duration: '1h', reason: 'clear the stuck cron jobs' });
        await approveOnPage(page, r.body['id'], 'fine');
        await page.locator('[role=alert]').waitFor();
        assert.equal(await page.locator('[role=alert]').innerText(), COUNTER_REFUSED);
        assert.match(await page.locator('h1').innerText(), /pending/);
        const failed = (await listEvents(server.database.db, { action: 'webauthn.failed', target: r.body['id'] })).at(-1)!;
        assert.deepEqual([failed.details['reason'], failed.details['credential'], failed.details['stored'], failed.details['received']], ['sign_count', credentialId, real.signCount, 1]);
        // The real key (its counter ahead) still approves.
        await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: real.credentialId });
        await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...real, signCount: real.signCount + 10 } });
        await approveOnPage(page, r.body['id'], 'fine');
        await page.locator('h1', { hasText: 'approved' }).waitFor();
      });

      test('require_mfa: a role for passkey sessions only refuses a password + code session and takes the passkey one', async () => {
        const api = await file(people['eng']!, { role: 'vault', duration: '1h', reason: 'rotate the unseal keys' });
        assert.deepEqual([api.status, api.body['code']], [403, 'mfa_required']);
        const { page } = lead; // signed in with the passkey
        await page.goto('/ui/requests/new');
        await page.getByLabel('Role', { exact: true }).selectOption('vault');
        await page.getByLabel('Duration').fill('1h');
        await page.getByLabel('Reason').fill('rotate the unseal keys');
        await page.getByRole('button', { name: 'Check with policy' }).click();
        await page.locator('.decision').waitFor();
        await page.getByRole('button', { name: 'Submit request' }).click();
        await page.waitForURL(/\/ui\/requests\/[0-9A-Z]{26}$/);
        assert.match(await page.locator('h1').innerText(), /lead asks for vault\s+approved/);
      });

      test('no passkey: an approver without one is told so; under mfa.login: webauthn the sign-in is refused', async () => {
        const { context, page } = await open();
        const nokey = people['nokey']!;
        await passwordStep(page, nokey);
        await page.waitForURL('**/ui');
        await page.goto(`/ui/requests/${(await file(people['eng']!, { role: 'web-prod', duration: '1h', reason: 'look at the slow queries' })).body['id']}`);
        assert.match(await page.locator('[role=alert]').innerText(), /asks for a passkey to decide requests, and you have none registered/);
        assert.equal(await page.getByRole('button', { name: /Confirm/ }).count(), 0);
        writeFileSync(policyFile, policy('webauthn'));
        assert.equal((await server.reloadPolicy('os:test')).ok, true);
        // The API's password login cannot end with a passkey: refused, before anything is checked.
        const api = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: nokey.name, password: nokey.password, totp: '000000' }) });
        assert.deepEqual([api.status, ((await api.json()) as { code: string }).code], [403, 'mfa_required']);
        await page.locator('header form').getByRole('button', { name: 'Log out' }).click();
        await page.waitForURL('**/ui/login');
        await passwordStep(page, nokey);
        await page.waitForURL('**/ui/login/passkey');
        assert.match(await page.locator('main').innerText(), /nokey has none registered/);
        await page.goto('/ui');
        await page.waitForURL('**/ui/login?next=*'); // no session was opened
        await context.close();
        writeFileSync(policyFile, policy('totp'));
        await server.reloadPolicy('os:test');
      });
    });
  }
});
