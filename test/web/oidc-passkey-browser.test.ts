// An identity provider's sign-in is not jit-ssh's passkey: with a passkey
// registered, or under mfa.login: webauthn, the sign-in through the provider
// (a real oidc-provider) ends with jit-ssh's own passkey step, in Chromium
// with a virtual authenticator; the session the provider's sign-in made is
// never handed to the browser. Both databases.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { CHROMIUM, CHROMIUM_ARGS, LOCALHOST_AS_LOOPBACK, SERVER_BACKENDS, addVirtualAuthenticator } from '../helpers/browser.js';
import { listEvents } from '../helpers/events.js';
import { tempDir } from '../helpers/keys.js';
import { freePort } from '../helpers/net.js';
import { startProvider, type TestProvider } from '../helpers/oidc-provider.js';

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

/** Signs in at the provider's page (any password) until the browser is back at `until`. */
async function throughProvider(page: Page, login: string, until: RegExp): Promise<void> {
  for (let step = 0; step < 10; step++) {
    if (until.test(page.url())) return;
    await page.waitForLoadState('domcontentloaded').catch(() => {});
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any password');
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[type="submit"]')]);
    } else if (await page.locator('button[autofocus]').count()) {
      await Promise.all([page.waitForNavigation({ waitUntil: 'domcontentloaded' }), page.click('button[autofocus]')]);
    } else {
      await page.waitForTimeout(200);
    }
  }
  await page.waitForURL(until);
}

describe('identity provider sign-in ending with a passkey, in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, () => {
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
      const dir = tempDir('jit-ssh-oidc-passkey-');
      const policyFile = path.join(dir, 'policy.yaml');

      before(async () => {
        const db = await backend.database();
        drop = db.drop;
        const port = await freePort();
        base = `http://localhost:${port}`; // a domain: WebAuthn takes no IP address as its RP id
        provider = await startProvider({
          redirectUris: [`${base}/ui/sso/callback`],
          accounts: [
            { login: 'olivia', preferred_username: 'olivia', groups: ['sre-leads'] },
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

      test('ok: a person of the provider registers a passkey; their next sign-in through the provider ends with it', async () => {
        const context = await browser.newContext({ baseURL: base });
        context.setDefaultTimeout(10_000);
        const page = await context.newPage();
        await addVirtualAuthenticator(page);
        try {
          // No passkey yet, and policy asks none at sign-in: the provider's sign-in is enough.
          await page.goto('/ui/login');
          await page.getByRole('link', { name: 'Sign in with Corp IdP' }).click();
          await throughProvider(page, 'olivia', /\/ui$/);
          await page.getByRole('link', { name: 'Passkeys' }).click();
          await page.getByLabel('Name (to tell your passkeys apart)').fill('phone');
          await page.getByRole('button', { name: 'Register a passkey' }).click();
          await page.getByText('Registered phone.').waitFor();
          await page.locator('header form').getByRole('button', { name: 'Log out' }).click();
          await page.waitForURL('**/ui/login');

          // Again through the provider: jit-ssh asks for its own passkey before there is a session.
          await page.getByRole('link', { name: 'Sign in with Corp IdP' }).click();
          await throughProvider(page, 'olivia', /\/ui\/login\/passkey$/);
          assert.ok(!(await context.cookies(base)).some((c) => c.name === 'jit_ssh_session'), 'the provider’s sign-in alone gave the browser a session');
          const openedByProvider = (await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).at(-1)!;
          await page.getByRole('button', { name: 'Use your passkey' }).click();
          await page.waitForURL('**/ui');
          await page.goto('/ui/account');
          assert.match(await page.locator('main').innerText(), /You signed in with: oidc and a passkey/);
          const last = (await listEvents(server.database.db, { action: 'login.ok', actor: 'corp.olivia' })).at(-1)!;
          assert.notEqual(last.id, openedByProvider.id);
          const auth = last.details['auth'] as Record<string, unknown>;
          assert.deepEqual([auth['method'], auth['issuer'], typeof auth['webauthn']], ['oidc', provider.issuer, 'string']);
          // The session the provider's sign-in made was ended at once (the logout right after it).
          const logouts = await listEvents(server.database.db, { action: 'logout', actor: 'corp.olivia' });
          assert.equal(logouts.length, 2);
        } finally {
          await context.close();
        }
      });

      test('fail: under mfa.login: webauthn a person of the provider without a passkey is refused after the provider’s sign-in', async () => {
        writeFileSync(policyFile, policy('webauthn'));
        assert.equal((await server.reloadPolicy('os:test')).ok, true);
        // (The helper's sign-ins end on jit-ssh's passkey page: test/web/oidc-cli-passkey-browser.test.ts.)
        const context = await browser.newContext({ baseURL: base });
        context.setDefaultTimeout(10_000);
        const page = await context.newPage();
        try {
          await page.goto('/ui/login');
          await page.getByRole('link', { name: 'Sign in with Corp IdP' }).click();
          await throughProvider(page, 'devon', /\/ui\/login\/passkey$/);
          await page.locator('main').getByText(/corp\.devon has none registered/).waitFor();
          assert.equal((await page.goto('/ui'))!.url().includes('/ui/login?next='), true, 'a session was opened');
        } finally {
          await context.close();
          writeFileSync(policyFile, policy('totp'));
          await server.reloadPolicy('os:test');
        }
      });
    });
  }
});
