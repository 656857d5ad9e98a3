// The web pages in a real browser: headless Chromium (Debian's package)
// driven by playwright-core, against the real server from startServer() on
// the embedded database, and on PostgreSQL when TEST_DATABASE_URL is set.
// TOTP codes come from oathtool. The embedded run saves screenshots of the
// main pages to docs/screenshots/ for the README: the missing ones, or all of
// them with UPDATE_SCREENSHOTS=1.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { ROOT } from '../helpers/process.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = path.join(ROOT, 'docs', 'screenshots');
const ZONE = 'Europe/Berlin';

/** The code for the time-step `offset` seconds from now, from oathtool. */
const totp = (secret: string, offset = 0) => execFileSync('oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(Date.now() / 1000) + offset}`], { encoding: 'utf8' }).trim();

interface Person {
  name: string;
  password: string;
  secret: string;
}

const backends: Array<{ name: string; screenshots: boolean; database: () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }> }> = [
  { name: 'embedded', screenshots: true, database: async () => ({ env: {}, drop: async () => {} }) },
  ...(POSTGRES_URL
    ? [{ name: 'postgres', screenshots: false, database: async () => {
        const { url, drop } = await createPostgresDatabase();
        return { env: { DATABASE_URL: url, JIT_SSH_SECRET_KEY: Buffer.alloc(32, 4).toString('base64') }, drop };
      } }]
    : []),
];

describe('web pages in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)` }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(() => browser?.close());

  for (const backend of backends) {
    describe(`against the real server (${backend.name})`, () => {
      let server: RunningServer;
      let drop: () => Promise<void>;
      const logs: string[] = [];
      const people: Record<string, Person> = {};
      const problems: string[] = [];
      /** The Origin header of every form post the browser sent. */
      const postOrigins = new Set<string>();
      const dir = tempDir('jit-ssh-web-');
      let requestId = '';
      let serial = '';
      // TOTP allows one step of drift and each step serves once per user, so each
      // person logs in once: the engineer's browser stays open across the tests.
      let eng: { context: BrowserContext; page: Page };

      before(async () => {
        const db = await backend.database();
        drop = db.drop;
        writeFileSync(path.join(dir, 'policy.yaml'), WORKFLOW_POLICY);
        const config = loadServerConfig({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14', ...db.env }, { port: '0' });
        server = await startServer(config, createLogger('info', (l) => logs.push(l)));
        const groups: Record<string, string[]> = { eng: ['engineering'], lead: ['sre-leads'], aud: ['auditors'] };
        for (const [name, g] of Object.entries(groups)) {
          const password = `${name}-password-long`;
          const e = await server.users.add({ name, groups: g, password }, 'os:test');
          people[name] = { name, password, secret: secretOf(e.otpauth_uri) };
        }
      });
      after(async () => {
        await eng?.context.close();
        await server?.close();
        await drop?.();
      });

      /** A fresh browser profile; console errors and CSP violations are collected and must stay empty. */
      const open = async (opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ context: BrowserContext; page: Page }> => {
        const context = await browser.newContext({ baseURL: server.url, timezoneId: ZONE, locale: 'en-GB', viewport: { width: 1280, height: 800 }, ...opts });
        context.setDefaultTimeout(10_000);
        const page = await context.newPage();
        // The refusals these tests provoke (401, 403 pages) log a line each; anything else, such as a CSP violation, is a problem.
        page.on('console', (m) => m.type() === 'error' && !/status of 40[13] \(/.test(m.text()) && problems.push(`console: ${m.text()}`));
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('request', (r) => r.method() === 'POST' && r.url().includes('/ui/') && postOrigins.add(r.headers()['origin'] ?? 'none'));
        return { context, page };
      };
      /**
       * Checks that every form field on a main page has a label, then saves its
       * screenshot for the README: only when there is none yet, or when asked
       * with UPDATE_SCREENSHOTS=1 (times and ids differ on every run, so
       * rewriting them each time would leave the tracked files changed).
       */
      const shot = async (page: Page, name: string) => {
        const unlabelled = await page.evaluate(`[...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((e) => e.labels.length === 0).map((e) => e.name)`);
        assert.deepEqual(unlabelled, [], `${name}: fields without a label`);
        const file = path.join(SHOTS, `${name}.png`);
        if (!backend.screenshots || (existsSync(file) && process.env['UPDATE_SCREENSHOTS'] !== '1')) return;
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: file, fullPage: true });
      };
      const login = async (page: Page, who: Person, code = totp(who.secret)) => {
        await page.goto('/ui');
        await page.getByLabel('User name').fill(who.name);
        await page.getByLabel('Password').fill(who.password);
        await page.getByLabel('Authenticator code').fill(code);
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.waitForURL('**/ui');
      };

      test('engineer logs in and files a request after seeing the dry-run decision', async () => {
        eng = await open();
        const { page } = eng;
        await page.goto('/');
        await page.getByRole('link', { name: 'Web pages' }).click();
        await page.waitForURL('**/ui/login?next=%2Fui');
        await shot(page, 'login');
        await login(page, people['eng']!);
        await page.getByRole('link', { name: 'New request' }).click();
        await page.getByLabel('Role', { exact: true }).selectOption('web-prod');
        await page.getByLabel('Duration').fill('2h');
        await page.getByLabel('Reason').fill('deploy the checkout fix and watch the error rate');
        await page.getByLabel('Ticket (optional)').fill('OPS-1234');
        await page.getByRole('button', { name: 'Check with policy' }).click();
        const decision = page.locator('.decision');
        await decision.waitFor();
        assert.match(await decision.innerText(), /If you submit now \(web-prod for 2h\): pending by rule approval\s+needs 1 approval from group:sre-leads, user:carol/);
        assert.equal(await page.getByLabel('Reason').inputValue(), 'deploy the checkout fix and watch the error rate');
        await shot(page, 'new-request');
        await page.getByRole('button', { name: 'Submit request' }).click();
        await page.waitForURL(/\/ui\/requests\/[0-9A-Z]{26}$/);
        requestId = page.url().split('/').pop()!;
        assert.match(await page.locator('h1').innerText(), /eng asks for web-prod\s+pending/);
        // Not an approver: no link to the queue, and the queue itself refuses.
        assert.equal(await page.getByRole('link', { name: 'Approvals' }).count(), 0);
        const queue = await page.goto('/ui/queue');
        assert.equal(queue!.status(), 403);
        assert.match(await page.locator('main').innerText(), /Only approvers named in the policy may see the approval queue/);
      });

      test('approver decides from the queue, using the keyboard, with a fresh code as step-up', async () => {
        const { context, page } = await open();
        const lead = people['lead']!;
        const loginCode = totp(lead.secret);
        // The login form by keyboard alone: it opens focused on the user name, Tab moves on, Enter submits.
        await page.goto('/ui/login');
        await page.keyboard.type(lead.name);
        await page.keyboard.press('Tab');
        await page.keyboard.type(lead.password);
        await page.keyboard.press('Tab');
        await page.keyboard.type(loginCode);
        await page.keyboard.press('Enter');
        await page.waitForURL('**/ui');
        await page.getByRole('link', { name: 'Approvals' }).click();
        const card = page.locator('article', { has: page.locator(`#q-${requestId}`) });
        const text = await card.innerText();
        for (const fact of ['eng asks for web-prod for 2h', 'deploy', 'deploy the checkout fix and watch the error rate', 'OPS-1234', 'by rule approval', 'needs 1 approval']) assert.ok(text.includes(fact), `queue card lacks ${fact}:\n${text}`);
        await shot(page, 'queue');
        // The code just used to log in is refused for the approval; the comment stays.
        await card.getByLabel('Comment (optional)').fill('ticket checked, go ahead');
        await card.getByLabel('Authenticator code, to confirm').fill(loginCode);
        await card.getByLabel('Approve').check();
        await card.getByRole('button', { name: 'Confirm decision' }).click();
        await page.locator('[role=alert]').waitFor();
        assert.match(await page.locator('[role=alert]').innerText(), /the code is wrong or was already used/);
        assert.equal(await page.getByLabel('Comment (optional)').inputValue(), 'ticket checked, go ahead');
        assert.ok(await page.getByLabel('Approve').isChecked(), 'the verdict was not kept');
        // Enter in the code field submits the one form, with the verdict chosen.
        await page.getByLabel('Authenticator code, to confirm').fill(totp(lead.secret, 30));
        await page.getByLabel('Authenticator code, to confirm').press('Enter');
        await page.waitForURL(`**/ui/requests/${requestId}`);
        assert.match(await page.locator('h1').innerText(), /approved/);
        assert.match(await page.locator('main').innerText(), /lead approved .* — “ticket checked, go ahead”/);
        await context.close();
      });

      test('engineer sees the grant with its time left, in their own time zone (UTC on hover), and on a phone', async () => {
        const { page } = eng;
        const who = people['eng']!;
        await page.goto('/ui');
        const grant = page.locator('section.card', { hasText: 'web-prod' });
        assert.match(await grant.innerText(), /web-prod\s+(1h59m|2h) left/);
        const time = grant.locator('time');
        const iso = (await time.getAttribute('datetime'))!;
        assert.match((await time.getAttribute('title'))!, /^UTC \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        const local = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
        const shown = await time.innerText();
        assert.ok(shown.includes(local) && !shown.endsWith('UTC'), `${shown} is not ${ZONE} time (${local})`);
        await shot(page, 'my-access');
        // A certificate for the grant, as `jit-ssh cert` would fetch it, for the auditor to find.
        const token = ((await (await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: who.name, password: who.password, totp: totp(who.secret, 30) }) })).json()) as { token: string }).token;
        assert.ok(token);
        const key = userKey(dir, 'ed25519', undefined, 'laptop');
        const cert = await fetch(`${server.url}/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ public_key: key.publicLine, request_id: requestId }) });
        assert.equal(cert.status, 201);
        serial = ((await cert.json()) as { serial: string }).serial;

        // The same session on a phone-sized screen.
        const phone = await open({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, storageState: await eng.context.storageState() });
        await phone.page.goto('/ui');
        const overflow = (await phone.page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
        assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
        await shot(phone.page, 'phone-my-access');
        await phone.context.close();
      });

      test('a form without its CSRF token is refused and files nothing', async () => {
        const { page } = eng;
        await page.goto('/ui/requests/new');
        await page.getByLabel('Reason').fill('this must never be filed');
        await page.locator('form.stack input[name=csrf]').evaluate((el) => el.remove());
        await page.getByRole('button', { name: 'Check with policy' }).click();
        await page.waitForLoadState();
        assert.match(await page.locator('main').innerText(), /security token is missing or out of date/);
        assert.match(await page.locator('h1').innerText(), /Not allowed/);
        await page.goto('/ui');
        assert.ok(!(await page.locator('main').innerText()).includes('this must never be filed'));
      });

      test('auditor finds the certificate, downloads the CSV, and reads the timeline and the access review', async () => {
        const { context, page } = await open();
        await login(page, people['aud']!);
        await page.getByRole('link', { name: 'Audit' }).click();
        await page.getByRole('link', { name: 'Issued certificates' }).click();
        await page.getByLabel('User', { exact: true }).fill('eng');
        await page.getByLabel('Role', { exact: true }).fill('web-prod');
        await page.getByRole('button', { name: 'Search' }).click();
        await page.waitForURL('**/ui/audit/certificates?*');
        const row = page.locator('tbody tr', { hasText: serial });
        assert.equal(await row.count(), 1);
        assert.match(await row.innerText(), /eng\s+web-prod\s+deploy/);
        await shot(page, 'audit-certificates');
        const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV', exact: true }).click()]);
        assert.match(download.suggestedFilename(), /^jit-ssh-certificates-\d{8}T\d{6}Z\.csv$/);
        const csv = readFileSync((await download.path())!, 'utf8').trimEnd().split('\r\n');
        assert.equal(csv.length, 2);
        assert.ok(csv[0]!.startsWith('serial,issued_at,user,role,principals'));
        assert.ok(csv[1]!.startsWith(`${serial},`) && csv[1]!.includes(`,eng,web-prod,deploy,`) && csv[1]!.includes(requestId));

        await row.getByRole('link', { name: requestId }).click();
        await page.waitForURL(`**/ui/audit/requests/${requestId}`);
        const timeline = await page.locator('table').innerText();
        for (const step of ['request.create', 'step_up.failed', 'step_up.ok', 'request.approve', 'request.approved', `certificate ${serial} issued`]) assert.ok(timeline.includes(step), `timeline lacks ${step}`);
        assert.match(timeline, /eng \(password\+totp\)/, 'the timeline says how the requester had signed in');
        await shot(page, 'audit-timeline');

        await page.goto('/ui/audit/integrity');
        assert.match(await page.locator('main').innerText(), /Intact/);
        await page.goto('/ui/audit/report');
        assert.match(await page.locator('table').first().innerText(), /Requests/);
        assert.match(await page.locator('main').innerText(), /eng: password\+totp; lead: password\+totp/, 'the access review says how requester and approver had signed in');
        await shot(page, 'access-review');
        await page.getByRole('button', { name: 'Log out' }).click();
        await page.waitForURL('**/ui/login');
        await page.goto('/ui/audit');
        await page.waitForURL('**/ui/login?next=%2Fui%2Faudit');
        await context.close();
      });

      test('no console errors or CSP violations; no token, password or code in the server log', () => {
        assert.deepEqual(problems, []);
        // The pages' referrer policy keeps the Origin header on our own posts, so the primary check sees it.
        assert.deepEqual([...postOrigins], [new URL(server.url).origin]);
        const text = logs.join('');
        for (const p of Object.values(people)) assert.ok(!text.includes(p.password), 'a password was logged');
        assert.doesNotMatch(text, /jit_[A-Za-z0-9_-]{43}/, 'a session token was logged');
        assert.doesNotMatch(text, /"path":"[^"]*\?/, 'a query string was logged');
      });
    });
  }
});
