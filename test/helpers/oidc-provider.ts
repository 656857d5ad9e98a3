// A real OpenID Provider for the tests: panva's oidc-provider (a certified
// OP) on a loopback port, with test accounts and their groups, its
// development login page (any password; the login names the account), the
// device flow, and PKCE. Nothing of the HTTP exchange is mocked; a test may
// ask the provider to sign its next ID token wrongly (another audience or
// issuer, already expired) to see the relying party refuse it.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error: oidc-provider ships no types
import Provider from 'oidc-provider';

/** The login name on the provider's page is the account, and its `sub`. */
export interface TestAccount {
  login: string;
  preferred_username?: string;
  email?: string;
  email_verified?: boolean;
  groups: string[];
  amr?: string[];
}

export interface Tamper {
  audience?: string;
  issuer?: string;
  /** Seconds in the past the token expired. */
  expiredAgo?: number;
}

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, TestAccount>;
  /** The next ID token is signed with these changes (once). */
  tamperNext(t: Tamper): void;
  close(): Promise<void>;
}

export async function startProvider(opts: { redirectUris: string[]; accounts: TestAccount[]; clientId?: string; clientSecret?: string; port?: number }): Promise<TestProvider> {
  const clientId = opts.clientId ?? 'jit-ssh';
  const clientSecret = opts.clientSecret ?? 'test-client-secret-0123456789abcdef';
  const accounts = new Map(opts.accounts.map((a) => [a.login, a]));
  let tamper: Tamper | null = null;

  // Listen first: the issuer URL carries the port.
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // The login page's name is the account; findAccount is the directory.
    async findAccount(_ctx: unknown, id: string) {
      const a = accounts.get(id);
      if (!a) return undefined;
      return {
        accountId: id,
        async claims() {
          // Read at each token: a group change shows at the next sign-in.
          const now = accounts.get(id) ?? a;
          return { sub: id, preferred_username: now.preferred_username, email: now.email, email_verified: now.email_verified, groups: [...now.groups] };
        },
      };
    },
    claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email', 'email_verified'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    pkce: { required: () => true },
    // First-party client: no consent page (oidc-provider's recipes/skip_consent.md).
    async loadExistingGrant(ctx: any) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email groups');
      grant.addOIDCClaims(['preferred_username', 'email', 'email_verified', 'groups']);
      await grant.save();
      return grant;
    },
    ttl: { IdToken: 600, AccessToken: 600, DeviceCode: 600, Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60 },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
  });
  provider.on('server_error', (_ctx: unknown, err: Error) => console.error('oidc-provider server_error', err));

  // The fault a test asks for, put into the next ID token the provider signs.
  const original = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = async function issue(this: any, o: { use?: string; expiresAt?: number } = {}) {
    if (o.use !== 'idtoken' || !tamper) return original.call(this, o);
    const t = tamper;
    tamper = null;
    const restore: Array<() => void> = [];
    if (t.audience) {
      const client = this.client;
      this.client = Object.create(client, { clientId: { value: t.audience } });
      restore.push(() => (this.client = client));
    }
    if (t.issuer) {
      const real = Object.getOwnPropertyDescriptor(provider, 'issuer');
      Object.defineProperty(provider, 'issuer', { value: t.issuer, configurable: true });
      restore.push(() => (real ? Object.defineProperty(provider, 'issuer', real) : delete provider.issuer));
    }
    try {
      const args = t.expiredAgo ? { ...o, expiresAt: Math.floor(Date.now() / 1000) - t.expiredAgo } : o;
      return await original.call(this, args);
    } finally {
      for (const r of restore) r();
    }
  };

  server.on('request', provider.callback());
  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    tamperNext(t) {
      tamper = t;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A scripted browser for the provider's development login page: follows
 * redirects, keeps each host's cookies, fills in the login form. Returns the
 * first URL that is not the provider's (the relying party's callback), unfollowed.
 */
export function providerBrowser(issuer: string) {
  const jars = new Map<string, Map<string, string>>();
  const jarOf = (u: URL) => jars.get(u.host) ?? jars.set(u.host, new Map()).get(u.host)!;
  async function go(url: string, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    const jar = jarOf(u);
    const res = await fetch(u, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      if (/expires=Thu, 01 Jan 1970/i.test(line) || pair!.slice(eq + 1) === '') jar.delete(pair!.slice(0, eq));
      else jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return res;
  }
  const self = {
    go,
    /** Follows the provider's redirects from `url`, signing in as `login` when asked; returns the URL it sends the browser back to. */
    async signIn(url: string, login: string): Promise<string> {
      let next = url;
      for (let hop = 0; hop < 20; hop++) {
        if (!next.startsWith(issuer)) return next;
        const res = await go(next);
        const location = res.headers.get('location');
        if (location) {
          next = new URL(location, next).href;
          continue;
        }
        const html = await res.text();
        const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
        if (!action || !/name="login"/.test(html)) throw new Error(`the provider showed no login form at ${next} (${res.status}): ${html.slice(0, 300)}`);
        const post = await go(new URL(action.replace(/&amp;/g, '&'), next).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString() });
        const loc = post.headers.get('location');
        if (!loc) throw new Error(`the provider's login answered ${post.status} without a redirect`);
        next = new URL(loc, next).href;
      }
      throw new Error('too many redirects at the provider');
    },
  };
  return self;
}
