// The web pages over a test database without a port: the real services (from
// identity()), the app with its web pages, and a tiny cookie-keeping client
// that posts forms the way a browser does (Origin header, urlencoded body).

import type { Kysely } from 'kysely';
import type { AuthSettings } from '../../src/config.js';
import type { Database } from '../../src/db/schema.js';
import type { Logger } from '../../src/log.js';
import { identity, testApp, totpAt, type TestClock } from '../helpers/identity.js';

export const ORIGIN = 'http://localhost';

export interface WebOptions {
  policy?: string;
  settings?: Partial<AuthSettings>;
  publicUrl?: string | null;
  logger?: Logger;
}

export type TestUser = { name: string; password: string; secret: string };

export async function webIdentity(db: Kysely<Database>, clock: TestClock, opts: WebOptions = {}) {
  const id = await identity(db, clock, { lockoutThreshold: 100, ...opts.settings }, opts.policy ? { policy: opts.policy } : {});
  const { stepUp, audit } = id.services;
  const app = await testApp(id.services, { ...(opts.logger ? { logger: opts.logger } : {}), clientAddress: () => '198.51.100.7', web: { publicUrl: opts.publicUrl ?? null, now: clock.now } });

  /** A browser stand-in: keeps cookies, sends Origin on posts, reads the CSRF field of the last page. */
  const client = (base = ORIGIN) => {
    const jar = new Map<string, string>();
    let lastHtml = '';
    const keep = (res: Response) => {
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq);
        const value = pair!.slice(eq + 1);
        if (value === '' || /max-age=0/i.test(line)) jar.delete(name);
        else jar.set(name, value);
      }
    };
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const self = {
      jar,
      get html() {
        return lastHtml;
      },
      /** The CSRF token of the last page shown (its first csrf field). */
      csrf() {
        return /name="csrf" value="([^"]+)"/.exec(lastHtml)?.[1] ?? '';
      },
      async get(path: string, headers: Record<string, string> = {}) {
        const res = await app.request(`${base}${path}`, { headers: { cookie: cookie(), ...headers } });
        keep(res);
        if ((res.headers.get('content-type') ?? '').startsWith('text/html')) lastHtml = await res.clone().text();
        return res;
      },
      async post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
        const res = await app.request(`${base}${path}`, {
          method: 'POST',
          body: new URLSearchParams(fields).toString(),
          headers: { cookie: cookie(), origin: base, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        });
        keep(res);
        if ((res.headers.get('content-type') ?? '').startsWith('text/html')) lastHtml = await res.clone().text();
        return res;
      },
      /** The TOTP code the last login() used. */
      lastCode: '',
      /** Logs in through the form with a fresh TOTP step; returns the response to the post. */
      async login(u: TestUser, code?: string, next = '/ui') {
        await self.get('/ui/login');
        clock.advance(30);
        self.lastCode = code ?? totpAt(u.secret, clock);
        return self.post('/ui/login', { csrf: self.csrf(), username: u.name, password: u.password, totp: self.lastCode, next });
      },
    };
    return self;
  };

  return { ...id, app, audit, stepUp, client };
}
