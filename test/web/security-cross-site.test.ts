// A page on another site, in a real Chromium, tries logins against the API in
// the visitor's name: the requests a page may send without a CORS preflight
// (fetch in no-cors mode with a text/plain body or an untyped Blob, and a
// <form enctype="text/plain"> posted into a frame). The browser sends each
// one (the access log shows it arrive), and none reaches login: no failed
// login is counted or logged against the name, so such a page cannot lock
// anyone out.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { loadServerConfig } from '../../src/config.js';
import { getThrottle } from '../../src/db/throttle.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The other site's page: three ways to post a login with no preflight, then a mark that it is done. */
const evilPage = (target: string) => `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="post" enctype="text/plain" target="sink" action="${target}/v1/auth/login">
<input type="hidden" name='{"username":"victim","password":"form-guess-xxxxx","totp":"000000","x":"' value='"}'>
</form>
<script>
(async () => {
  const body = JSON.stringify({ username: 'victim', password: 'fetch-guess-xxxx', totp: '000000' });
  const tries = [
    fetch('${target}/v1/auth/login', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body }),
    fetch('${target}/v1/auth/login', { method: 'POST', mode: 'no-cors', body: new Blob([body]) }),
  ];
  for (const t of tries) await t.catch(() => {});
  document.getElementById('f').submit();
  document.querySelector('iframe').addEventListener('load', () => { document.title = 'done'; });
})();
</script></body></html>`;

describe('a page on another site cannot try logins through the visitor’s browser', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)` }, () => {
  let browser: Browser;
  let server: RunningServer;
  let evil: http.Server;
  let evilUrl = '';
  const logs: string[] = [];
  // Made here, not in before(): Node 20 runs an after() registered inside a hook when that hook ends.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-cross-site-'));

  before(async () => {
    const config = loadServerConfig({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_PASSWORD_COST: '14' }, { port: '0' });
    server = await startServer(config, createLogger('info', (l) => logs.push(l)));
    await server.users.add({ name: 'victim', groups: [], password: 'victim-password-long' }, 'os:test');
    // Another site: another host name and port, so another origin and another site to the browser.
    evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(evilPage(server.url));
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => {
    await browser?.close();
    await new Promise((r) => evil?.close(r));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('fail: text/plain and untyped fetches and a text/plain form post from another site reach the API but not login', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(evilUrl);
    await page.waitForFunction("document.title === 'done'", undefined, { timeout: 15_000 });
    await context.close();

    const arrived = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'http' && l['path'] === '/v1/auth/login');
    assert.equal(arrived.length, 3, `the browser sent all three: ${JSON.stringify(arrived)}`);
    assert.deepEqual(arrived.map((l) => l['status']), [415, 415, 415]);
    const failed = await server.database.db.selectFrom('audit_events').select(['action', 'target']).where('action', 'like', 'login.%').execute();
    assert.deepEqual(failed, [], 'a login was tried');
    assert.equal(await getThrottle(server.database.db, 'user:victim'), undefined, 'a failure was counted against the name');
  });
});
