// Sign-in through an identity provider, end to end: the real server
// (startServer) with JIT_SSH_OIDC_CONFIG naming a real OpenID Provider
// (oidc-provider on a loopback port), headless Chromium through the
// provider's own login page, and the real `jit-ssh login --sso` helper
// process for the device flow (the test approves the code on the provider's
// page) and the loopback flow. Both databases.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { CHROMIUM, CHROMIUM_ARGS, SERVER_BACKENDS, throughProvider } from '../helpers/browser.js';
import { tempDir } from '../helpers/keys.js';
import { freePort } from '../helpers/net.js';
import { startProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { HELPER_BIN, cleanEnv } from '../helpers/process.js';

/** Starts the real helper; resolves with what it printed once `ready` matches its stderr, and its exit later. */
function helper(args: string[], env: NodeJS.ProcessEnv, ready: RegExp) {
  const child = spawn(process.execPath, [HELPER_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const printed = new Promise<RegExpExecArray>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = ready.exec(stderr);
      if (m) resolve(m);
    });
    child.on('close', () => reject(new Error(`the helper ended before printing ${ready}: ${stderr}`)));
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { printed, exited, kill: () => child.kill() };
}

describe('identity provider sign-in in Chromium and the helper', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(() => browser?.close());

  for (const backend of SERVER_BACKENDS) {
    describe(backend.name, () => {
      let server: RunningServer;
      let provider: TestProvider;
      let drop: () => Promise<void>;
      const dir = tempDir('jit-ssh-oidc-web-');
      const logs: string[] = [];

      before(async () => {
        const db = await backend.database();
        drop = db.drop;
        // The provider must know the callback before the server listens: choose the server's port first.
        const port = await freePort();
        const base = `http://127.0.0.1:${port}`;
        provider = await startProvider({
          redirectUris: [`${base}/ui/sso/callback`],
          accounts: [
            { login: 'olivia', preferred_username: 'olivia', email: 'olivia@example.com', email_verified: true, groups: ['engineering', 'oncall'] },
            { login: 'devon', preferred_username: 'devon', groups: ['engineering'] },
          ],
        });
        writeFileSync(path.join(dir, 'policy.yaml'), WORKFLOW_POLICY);
        writeFileSync(path.join(dir, 'client-secret'), `${provider.clientSecret}\n`);
        writeFileSync(
          path.join(dir, 'oidc.yaml'),
          `redirect_base_url: ${base}
issuers:
  - id: corp
    name: Corp IdP
    issuer: ${provider.issuer}
    client_id: ${provider.clientId}
    client_secret_file: client-secret
    scopes: [openid, profile, email, groups]
`,
        );
        const config = loadServerConfig(
          { JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_OIDC_CONFIG: path.join(dir, 'oidc.yaml'), JIT_SSH_PASSWORD_COST: '14', ...db.env },
          { port: String(port) },
        );
        server = await startServer(config, createLogger('info', (l) => logs.push(l)));
      });
      after(async () => {
        await server?.close();
        await provider?.close();
        await drop?.();
      });

      test('ok-web: "Sign in with Corp IdP" on /ui/login, through the provider’s login page, back with a session cookie', async () => {
        const context = await browser.newContext();
        const page = await context.newPage();
        try {
          await page.goto(`${server.url}/ui/requests/new`, { waitUntil: 'domcontentloaded' });
          assert.match(page.url(), /\/ui\/login\?next=%2Fui%2Frequests%2Fnew$/);
          await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.getByRole('link', { name: 'Sign in with Corp IdP' }).click()]);
          assert.ok(page.url().startsWith(provider.issuer), `at the provider: ${page.url()}`);
          await throughProvider(page, 'olivia', async (p) => p.url().startsWith(`${server.url}/ui/requests/new`), 10);
          await page.waitForURL(`${server.url}/ui/requests/new`);
          assert.match(await page.locator('header.site').innerText(), /corp\.olivia/);
          const cookies = await context.cookies(server.url);
          assert.ok(cookies.some((c) => c.name === 'jit_ssh_session' && c.sameSite === 'Strict' && c.httpOnly));
          assert.ok(!cookies.some((c) => c.name === 'jit_ssh_sso'), 'the sign-in state cookie is gone once used');
          const events = await server.database.db.selectFrom('audit_events').selectAll().where('action', '=', 'login.ok').where('actor', '=', 'corp.olivia').execute();
          assert.equal(events.length, 1);
          assert.deepEqual((events[0]!.details as any).auth, { method: 'oidc', issuer: provider.issuer });
          assert.equal((events[0]!.details as any).via, 'web');
        } finally {
          await context.close();
        }
      });

      test('ok-device: jit-ssh login --sso --device; the code is approved on the provider’s page; the helper holds a session', async () => {
        const home = tempDir('jit-ssh-oidc-home-');
        const env = cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url });
        const h = helper(['login', '--sso', '--device', '--no-browser'], env, /\(or open (\S+)\)/);
        const [, complete] = await h.printed;
        assert.ok(complete!.startsWith(provider.issuer), complete);
        const context = await browser.newContext();
        const page = await context.newPage();
        try {
          await page.goto(complete!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'devon', async (p) => /Sign-in Success/.test(await p.content()), 10);
        } finally {
          await context.close();
        }
        const out = await h.exited;
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stderr, /logged in to .* as corp\.devon \(Corp IdP\)/);
        const session = JSON.parse(readFileSync(path.join(home, 'session.json'), 'utf8'));
        assert.equal(session.username, 'corp.devon');
        // The session is a real API session, its groups the provider's.
        const me = await fetch(`${server.url}/v1/auth/session`, { headers: { authorization: `Bearer ${session.token}` } });
        const body = (await me.json()) as any;
        assert.deepEqual([body.username, body.groups, body.auth.method, body.auth.issuer], ['corp.devon', ['engineering'], 'oidc', provider.issuer]);
      });

      test('ok-loopback: jit-ssh login --sso --loopback; the browser comes back to the helper’s own listener with a code only it can redeem', async () => {
        const home = tempDir('jit-ssh-oidc-home-');
        const env = cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url });
        const h = helper(['login', '--sso', '--loopback', '--no-browser', '--json'], env, /in your browser:\n\s+(\S+)/);
        const [, url] = await h.printed;
        const context = await browser.newContext();
        const page = await context.newPage();
        try {
          await page.goto(url!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'olivia', async (p) => /^http:\/\/127\.0\.0\.1:\d+\/callback/.test(p.url()) && /Signed in to jit-ssh/.test(await p.content()), 10);
        } finally {
          await context.close();
        }
        const out = await h.exited;
        assert.equal(out.code, 0, out.stderr);
        assert.deepEqual(
          (({ username, issuer }) => ({ username, issuer }))(JSON.parse(out.stdout)),
          { username: 'corp.olivia', issuer: 'corp' },
        );
        // Groups from the token reach policy: olivia is oncall, so web-prod is approved at once.
        const token = JSON.parse(readFileSync(path.join(home, 'session.json'), 'utf8')).token;
        const r = await fetch(`${server.url}/v1/requests`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'web-prod', duration: '30m', reason: 'deploy check' }) });
        assert.equal(((await r.json()) as any).status, 'approved');
      });

      test('fail: the helper tells a refused sign-in in one line and exits non-zero', async () => {
        const home = tempDir('jit-ssh-oidc-home-');
        const env = cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url });
        const h = helper(['login', '--sso', '--loopback', '--no-browser'], env, /in your browser:\n\s+(\S+)/);
        const [, url] = await h.printed;
        // An unknown account at the provider: the provider refuses, the helper hears why.
        const context = await browser.newContext();
        const page = await context.newPage();
        try {
          await page.goto(url!, { waitUntil: 'domcontentloaded' });
          const abort = page.locator('a[href*="/abort"]');
          await page.waitForSelector('input[name="login"]');
          await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), abort.click()]);
          await page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
        } finally {
          await context.close();
        }
        const out = await h.exited;
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /sign-in failed: Corp IdP did not sign you in: End-User aborted interaction/);
        assert.equal(existsSync(path.join(home, 'session.json')), false);
      });
    });
  }
});
