// What the Chromium tests share: the browser and its flags, the databases a
// server under test runs on, walking an OpenID provider's pages, and a CDP
// virtual authenticator for passkeys.

import type { Page } from 'playwright-core';
import { POSTGRES_URL, createPostgresDatabase } from './db.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** A passkey's relying party is a name, not an address: pages are opened at http://localhost:PORT (a secure origin), which this sends to the loopback address. */
export const LOCALHOST_AS_LOOPBACK = '--host-resolver-rules=MAP localhost 127.0.0.1';

/** The databases a server under test runs on: the embedded one, and PostgreSQL when TEST_DATABASE_URL is set. */
export const SERVER_BACKENDS: Array<{ name: string; database: () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }> }> = [
  { name: 'embedded', database: async () => ({ env: {}, drop: async () => {} }) },
  ...(POSTGRES_URL
    ? [{ name: 'postgres', database: async () => {
        const { url, drop } = await createPostgresDatabase();
        return { env: { DATABASE_URL: url, JIT_SSH_SECRET_KEY: Buffer.alloc(32, 4).toString('base64') }, drop };
      } }]
    : []),
];

/** Walks the provider's pages (any password; Continue on the confirmations) until `done`, in at most `steps` looks. */
export async function throughProvider(page: Page, login: string, done: (p: Page) => Promise<boolean>, steps = 12): Promise<void> {
  for (let step = 0; step < steps; step++) {
    // A page still navigating has no content yet: look again.
    if (await done(page).catch(() => false)) return;
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
  throw new Error(`the provider's pages did not finish: ${page.url()} ${(await page.content()).slice(0, 400)}`);
}

/** A platform authenticator with user verification, in `page`'s browser context. */
export async function addVirtualAuthenticator(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } });
  return { cdp, authenticatorId };
}
