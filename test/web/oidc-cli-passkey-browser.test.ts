// The helper's device sign-in (jit-ssh login --sso --device) under
// mfa.login: webauthn: the real helper process, a real oidc-provider, and
// Chromium with a CDP virtual authenticator. The provider's approval alone
// gives the helper no session; it prints a page of jit-ssh's, the passkey
// answers there, and only then does the helper hold a session. That page
// serves once; a person without a passkey is refused. The loopback flow
// passes through the same page before the helper's listener gets its code.
// Both databases.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { csrfTokenFor } from '../../src/web/security.js';
import { CHROMIUM, CHROMIUM_ARGS, LOCALHOST_AS_LOOPBACK, SERVER_BACKENDS, addVirtualAuthenticator, throughProvider } from '../helpers/browser.js';
import { listEvents } from '../helpers/events.js';
import { tempDir } from '../helpers/keys.js';
import { freePort } from '../helpers/net.js';
import { startProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { HELPER_BIN, cleanEnv, run } from '../helpers/process.js';

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
`;

/** The real helper; `printed(re)` resolves once its stderr matches. */
function helper(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [HELPER_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let closed = false;
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      closed = true;
      for (const w of waiters) w();
      resolve({ code, stdout, stderr });
    }),
  );
  const printed = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(stderr);
        if (m) resolve(m);
        else if (closed) reject(new Error(`the helper ended before printing ${re}: ${stderr}`));
      };
      waiters.push(check);
      check();
    });
  return { printed, exited, kill: () => child.kill(), stderr: () => stderr };
}

describe('jit-ssh login --sso --device ending with a passkey, in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, LOCALHOST_AS_LOOPBACK] });
  });
  after(() => browser?.close());

  for (const backend of SERVER_BACKENDS) {
    describe(backend.name, () => {
      let server: RunningServer;
      let provider: TestProvider;
      let drop: () => Promise<void>;
      let base = '';
      const dir = tempDir('jit-ssh-oidc-cli-passkey-');
      const policyFile = path.join(dir, 'policy.yaml');

      before(async () => {
        const db = await backend.database();
        drop = db.drop;
        const port = await freePort();
        base = `http://localhost:${port}`; // a domain: WebAuthn takes no IP address as its RP id
        provider = await startProvider({
          redirectUris: [`${base}/ui/sso/callback`],
          accounts: [
            { login: 'olivia', preferred_username: 'olivia', groups: ['engineering', 'sre-leads'] },
            { login: 'devon', preferred_username: 'devon', groups: ['engineering'] },
          ],
        });
        writeFileSync(policyFile, policy('totp'));
        writeFileSync(path.join(dir, 'client-secret'), `${provider.clientSecret}\n`);
        writeFileSync(path.join(dir, 'oidc.yaml'), `issuers:\n  - id: corp\n    name: Corp IdP\n    issuer: ${provider.issuer}\n    client_id: ${provider.clientId}\n    client_secret_file: client-secret\n    scopes: [openid, profile, email, groups]\n`);
        const config = loadServerConfig(
          { JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: policyFile, JIT_SSH_OIDC_CONFIG: path.join(dir, 'oidc.yaml'), JIT_SSH_PUBLIC_URL: base, JIT_SSH_PASSWORD_COST: '14', ...db.env },
          { port: String(port) },
        );
        server = await startServer(config, createLogger('error', () => {}));
      });
      after(async () => {
        await server?.close();
        await provider?.close();
        await drop?.();
      });

      test('ok: the provider approves, the helper prints jit-ssh’s passkey page, the passkey answers there, the helper holds a session and lists roles; the page serves once; the loopback flow too', async () => {
        const context = await browser.newContext({ baseURL: base });
        context.setDefaultTimeout(15_000);
        const page = await context.newPage();
        await addVirtualAuthenticator(page);
        const home = tempDir('jit-ssh-oidc-home-');
        const env = cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: base });
        try {
          // Under mfa.login: totp, olivia signs in on the web and registers a passkey.
          await page.goto('/ui/login');
          await page.getByRole('link', { name: 'Sign in with Corp IdP' }).click();
          await throughProvider(page, 'olivia', async (p) => /\/ui$/.test(p.url()));
          await page.getByRole('link', { name: 'Passkeys' }).click();
          await page.getByLabel('Name (to tell your passkeys apart)').fill('laptop');
          await page.getByRole('button', { name: 'Register a passkey' }).click();
          await page.getByText('Registered laptop.').waitFor();
          await page.locator('header form').getByRole('button', { name: 'Log out' }).click();
          await page.waitForURL('**/ui/login');

          writeFileSync(policyFile, policy('webauthn'));
          assert.equal((await server.reloadPolicy('os:test')).ok, true);

          const h = helper(['login', '--sso', '--device', '--no-browser'], env);
          const [, complete] = await h.printed(/\(or open (\S+)\)/);
          await page.goto(complete!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'olivia', async (p) => /Sign-in Success/.test(await p.content()));
          const [, finishUrl] = await h.printed(/Finish signing in with your passkey: (\S+)/);
          assert.match(finishUrl!, new RegExp(`^${base}/ui/sso/passkey/jit_[A-Za-z0-9_-]{43}$`));
          // The provider's approval alone gave no session.
          assert.equal(existsSync(path.join(home, 'session.json')), false);
          assert.equal((await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).filter((e) => (e.details as any).flow === 'device').length, 0);

          await page.goto(finishUrl!);
          await page.locator('main').getByText('Signing in').waitFor();
          assert.match(await page.locator('main').innerText(), /as corp\.olivia/);
          await page.getByRole('button', { name: 'Use your passkey' }).click();
          await page.getByRole('heading', { name: 'Signed in' }).waitFor();
          const out = await h.exited;
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stderr, /logged in to .* as corp\.olivia \(Corp IdP\)/);

          const session = JSON.parse(readFileSync(path.join(home, 'session.json'), 'utf8'));
          assert.equal(session.username, 'corp.olivia');
          const me = (await (await fetch(`${base}/v1/auth/session`, { headers: { authorization: `Bearer ${session.token}` } })).json()) as any;
          assert.deepEqual([me.auth.method, me.auth.issuer, typeof me.auth.webauthn], ['oidc', provider.issuer, 'string']);
          const roles = await run(HELPER_BIN, ['roles'], env);
          assert.equal(roles.code, 0, roles.stderr);
          assert.match(roles.stdout, /web-prod/);
          const opened = (await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).at(-1)!;
          assert.equal((opened.details as any).flow, 'device');
          assert.equal(typeof (opened.details as any).auth.webauthn, 'string');

          // The page's handle served once: shown again, and posted again, it is refused.
          const again = await page.goto(finishUrl!);
          assert.equal(again!.status(), 401);
          assert.match(await page.locator('main').innerText(), /expired or was already used/);
          const handle = finishUrl!.slice(finishUrl!.lastIndexOf('/') + 1);
          const replay = await fetch(finishUrl!, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, 'sec-fetch-site': 'same-origin' },
            body: new URLSearchParams({ csrf: csrfTokenFor(handle), webauthn: '{"id":"x","response":{}}' }).toString(),
          });
          assert.equal(replay.status, 401);
          assert.match(await replay.text(), /expired or was already used/);
          assert.equal((await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).at(-1)!.id, opened.id);

          // The loopback variant: the provider's callback sends the browser to the passkey page first,
          // and only after the passkey does the helper's listener get its code.
          const home2 = tempDir('jit-ssh-oidc-home-');
          const l = helper(['login', '--sso', '--loopback', '--no-browser', '--json'], cleanEnv({ JIT_SSH_HOME: home2, JIT_SSH_SERVER: base }));
          const [, start] = await l.printed(/in your browser:\n\s+(\S+)/);
          await page.goto(start!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'olivia', async (p) => /\/ui\/sso\/passkey\/jit_/.test(p.url()));
          await page.locator('main').getByText('Signing in').waitFor();
          assert.equal(existsSync(path.join(home2, 'session.json')), false);
          await page.getByRole('button', { name: 'Use your passkey' }).click();
          await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback/);
          await page.getByText('Signed in to jit-ssh').waitFor();
          const lout = await l.exited;
          assert.equal(lout.code, 0, lout.stderr);
          assert.equal(JSON.parse(lout.stdout).username, 'corp.olivia');
          const token2 = JSON.parse(readFileSync(path.join(home2, 'session.json'), 'utf8')).token;
          const me2 = (await (await fetch(`${base}/v1/auth/session`, { headers: { authorization: `Bearer ${token2}` } })).json()) as any;
          assert.equal(typeof me2.auth.webauthn, 'string');
          assert.equal((await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).at(-1)!.details['flow'], 'loopback');
        } finally {
          await context.close();
          writeFileSync(policyFile, policy('totp'));
          await server.reloadPolicy('os:test');
        }
      });

      test('fail: under mfa.login: webauthn a person without a passkey is refused after the provider’s approval, and it is recorded', async () => {
        writeFileSync(policyFile, policy('webauthn'));
        assert.equal((await server.reloadPolicy('os:test')).ok, true);
        const context = await browser.newContext({ baseURL: base });
        context.setDefaultTimeout(15_000);
        const page = await context.newPage();
        const home = tempDir('jit-ssh-oidc-home-');
        try {
          const h = helper(['login', '--sso', '--device', '--no-browser'], cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: base }));
          const [, complete] = await h.printed(/\(or open (\S+)\)/);
          await page.goto(complete!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'devon', async (p) => /Sign-in Success/.test(await p.content()));
          const out = await h.exited;
          assert.notEqual(out.code, 0);
          assert.match(out.stderr, /corp\.devon has none registered/);
          assert.doesNotMatch(out.stderr, /Finish signing in with your passkey/);
          assert.equal(existsSync(path.join(home, 'session.json')), false);
          const failed = (await listEvents(server.database.db, { action: 'webauthn.failed', actor: 'corp.devon' })).at(-1)!;
          assert.deepEqual([(failed.details as any).purpose, (failed.details as any).reason], ['cli_login', 'no_passkey']);
          // The loopback variant: refused too, the helper told at its listener.
          const home2 = tempDir('jit-ssh-oidc-home-');
          const l = helper(['login', '--sso', '--loopback', '--no-browser'], cleanEnv({ JIT_SSH_HOME: home2, JIT_SSH_SERVER: base }));
          const [, start] = await l.printed(/in your browser:\n\s+(\S+)/);
          await page.goto(start!, { waitUntil: 'domcontentloaded' });
          await throughProvider(page, 'devon', async (p) => /127\.0\.0\.1:\d+\/callback/.test(p.url()));
          const lout = await l.exited;
          assert.notEqual(lout.code, 0);
          assert.match(lout.stderr, /sign-in failed: .*corp\.devon has none registered/);
          assert.equal(existsSync(path.join(home2, 'session.json')), false);
        } finally {
          await context.close();
          writeFileSync(policyFile, policy('totp'));
          await server.reloadPolicy('os:test');
        }
      });
    });
  }
});
