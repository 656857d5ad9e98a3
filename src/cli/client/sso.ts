// `jit-ssh login --sso`: sign in through the organization's identity provider.
// The jit-ssh server is the only OpenID relying party (it holds the client
// secret and checks every token); the helper only carries the person to the
// browser and brings a jit-ssh session back, in one of two ways:
//
// - loopback (laptops, as `gh` and `tsh` do): a one-shot listener on
//   127.0.0.1, the browser is sent through the server's sign-in to
//   http://127.0.0.1:PORT/callback with a one-time code, which only this
//   process can redeem (it alone holds the PKCE verifier behind the code
//   challenge it sent);
// - device authorization (RFC 8628; headless hosts, SSH sessions): the server
//   starts the grant at the provider, the helper prints the URL and code and
//   polls the server until the person has approved in any browser.

import { spawn } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../run.js';
import { ClientError, createApi, type Api } from './api.js';
import { json, note, type Context } from './context.js';
import { localTime } from './format.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** How long the helper waits for the person in the browser. */
const BROWSER_TIMEOUT_MS = 5 * 60_000;

interface SessionAnswer {
  token: string;
  expires_at: string;
  username: string;
}

interface Issuer {
  id: string;
  name: string;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** The issuer to use: `--issuer`, else the only one the server has. */
async function chooseIssuer(api: Api, wanted: string | undefined): Promise<Issuer> {
  const { issuers } = await api.get<{ issuers: Issuer[] }>('/v1/auth/sso');
  if (!Array.isArray(issuers) || issuers.length === 0) throw new ClientError(`${api.server} has no identity provider configured: log in with jit-ssh login (password and code)`);
  if (wanted !== undefined) {
    const found = issuers.find((i) => i.id === wanted);
    if (!found) throw new UsageError(`--issuer ${wanted}: ${api.server} knows ${issuers.map((i) => i.id).join(', ')}`);
    return found;
  }
  if (issuers.length > 1) throw new UsageError(`${api.server} has several identity providers (${issuers.map((i) => i.id).join(', ')}): choose one with --issuer`);
  return issuers[0]!;
}

/**
 * Opens `url` in a browser when there is one to open: $BROWSER (a command, as
 * many tools honour it), else the desktop's opener. Returns false when it did
 * not try; a browser that fails to start is only a note, the URL is printed anyway.
 */
export function openBrowser(url: string, env: NodeJS.ProcessEnv): boolean {
  let command: string | null = null;
  if (env['BROWSER']) command = env['BROWSER'];
  else if (process.platform === 'darwin') command = 'open';
  else if (process.platform === 'linux' && (env['DISPLAY'] || env['WAYLAND_DISPLAY'])) command = 'xdg-open';
  if (!command) return false;
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true, env });
    child.on('error', () => note(`could not start ${command}; open the URL yourself`));
    child.unref();
    return true;
  } catch {
    return false;
  }
}

/** Whether this terminal sits where a browser can be opened (not over SSH, a desktop or $BROWSER present). */
function hasBrowser(env: NodeJS.ProcessEnv): boolean {
  if (env['BROWSER']) return true;
  if (env['SSH_CONNECTION'] || env['SSH_TTY']) return false;
  return process.platform === 'darwin' || (process.platform === 'linux' && !!(env['DISPLAY'] || env['WAYLAND_DISPLAY']));
}

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const PAGE = (text: string) =>
  `<!doctype html><meta charset="utf-8"><title>jit-ssh</title><p style="font:16px system-ui;margin:3em">${text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)}</p>`;

/** Waits for the one redirect to http://127.0.0.1:PORT/callback and returns its code. */
function awaitCallback(server: Server, state: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ClientError('no answer from the browser within 5 minutes; run jit-ssh login --sso again')), BROWSER_TIMEOUT_MS);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method !== 'GET' || url.pathname !== '/callback') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      const finish = (status: number, text: string, outcome: () => void) => {
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end(PAGE(text));
        clearTimeout(timer);
        outcome();
      };
      // Only the browser we sent, carrying our state, may finish the sign-in: a stray request is refused and ignored.
      if (!sameText(url.searchParams.get('state') ?? '', state)) {
        res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE('This sign-in link does not belong to the waiting jit-ssh login.'));
        return;
      }
      const error = url.searchParams.get('error');
      if (error) {
        const why = url.searchParams.get('error_description') ?? error;
        finish(400, `Sign-in failed: ${why}`, () => reject(new ClientError(`sign-in failed: ${why.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200)}`)));
        return;
      }
      const code = url.searchParams.get('code');
      if (!code) {
        finish(400, 'Sign-in failed: no code came back.', () => reject(new ClientError('sign-in failed: the server sent no code')));
        return;
      }
      finish(200, 'Signed in to jit-ssh. You can close this tab and go back to the terminal.', () => resolve(code));
    });
  });
}

async function loopbackLogin(ctx: Context, api: Api, issuer: Issuer): Promise<SessionAnswer> {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const listener = createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const port = (listener.address() as AddressInfo).port;
    const params = new URLSearchParams({ issuer: issuer.id, redirect_uri: `http://127.0.0.1:${port}/callback`, code_challenge: challenge, state });
    const url = `${api.server}/v1/auth/sso/start?${params}`;
    const callback = awaitCallback(listener, state);
    note(`Sign in with ${issuer.name} in your browser:\n  ${url}`);
    if (!ctx.flags['no-browser']) openBrowser(url, ctx.env);
    const code = await callback;
    return await api.post<SessionAnswer>('/v1/auth/sso/exchange', { code, code_verifier: verifier });
  } finally {
    listener.closeAllConnections?.();
    listener.close();
  }
}

interface DeviceStart {
  handle: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

async function deviceLogin(ctx: Context, api: Api, issuer: Issuer): Promise<SessionAnswer> {
  const start = await api.post<DeviceStart>('/v1/auth/sso/device', { issuer: issuer.id });
  const link = start.verification_uri_complete ?? start.verification_uri;
  note(`To sign in with ${issuer.name}, open ${start.verification_uri}\nand enter the code ${start.user_code}` + (start.verification_uri_complete ? `\n(or open ${start.verification_uri_complete})` : ''));
  if (!ctx.flags['no-browser'] && hasBrowser(ctx.env)) openBrowser(link, ctx.env);
  const tty = process.stderr.isTTY === true;
  const began = Date.now();
  const deadline = began + Math.max(1, start.expires_in) * 1000;
  let interval = Math.max(1, start.interval ?? 5) * 1000;
  let frame = 0;
  let finishShown = false;
  const spinner = tty
    ? setInterval(() => {
        const s = Math.floor((Date.now() - began) / 1000);
        process.stderr.write(`\r\x1b[K${FRAMES[frame++ % FRAMES.length]} waiting ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} for you to approve code ${start.user_code} in the browser (Ctrl-C to stop)`);
      }, 100)
    : undefined;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, interval));
      if (Date.now() > deadline) throw new ClientError(`the code ${start.user_code} expired before it was approved; run jit-ssh login --sso again`);
      const r = await api.post<SessionAnswer & { status?: string; interval?: number; finish_url?: string }>('/v1/auth/sso/device/token', { handle: start.handle });
      if (r.status === 'pending') {
        if (typeof r.interval === 'number' && r.interval > 0) interval = r.interval * 1000;
        // The server may need one more step in the browser (a passkey) before the session is whole.
        if (r.finish_url && !finishShown) {
          finishShown = true;
          if (tty) process.stderr.write('\r\x1b[K');
          note(`Finish signing in with your passkey: ${r.finish_url}`);
          if (!ctx.flags['no-browser'] && hasBrowser(ctx.env)) openBrowser(r.finish_url, ctx.env);
        }
        continue;
      }
      return r;
    }
  } finally {
    clearInterval(spinner);
    if (tty) process.stderr.write('\r\x1b[K');
  }
}

export async function ssoLogin(ctx: Context, server: string): Promise<number> {
  const api = createApi(server, null);
  const issuer = await chooseIssuer(api, ctx.flags.issuer);
  const useDevice = ctx.flags.device === true || (!ctx.flags.loopback && !hasBrowser(ctx.env));
  const res = useDevice ? await deviceLogin(ctx, api, issuer) : await loopbackLogin(ctx, api, issuer);
  if (typeof res?.token !== 'string' || typeof res.expires_at !== 'string' || typeof res.username !== 'string') throw new ClientError(`${server} sent no session`);
  await ctx.home.saveSession({ server, username: res.username, token: res.token, expires_at: res.expires_at });
  if (ctx.flags.json) json({ username: res.username, server, expires_at: res.expires_at, issuer: issuer.id });
  else note(`logged in to ${server} as ${res.username} (${issuer.name}) until ${localTime(new Date(res.expires_at))}`);
  return 0;
}
