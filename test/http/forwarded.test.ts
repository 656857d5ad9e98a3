// Which address a request came from behind reverse proxies: the table of
// chains (spoofed, honoured, multi-hop, malformed), the setting's parsing,
// and — over real sockets — that login rate limits and the audit log count
// the address this resolves, not one the client wrote.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { loadServerConfig } from '../../src/config.js';
import { listEvents } from '../helpers/events.js';
import { clientAddressResolver } from '../../src/http/client-address.js';
import { rateLimitKey, rateLimitKeys } from '../../src/core/ip.js';
import { canonicalIp, ForwardedError, parseTrustedProxies, resolveClientAddress, type ForwardedHeaders } from '../../src/core/forwarded.js';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { silentLogger } from '../../src/log.js';
import { createAuthService } from '../../src/services/auth.js';
import { createUserAdmin } from '../../src/services/users.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { SECRET_KEY, TEST_AUTH } from '../helpers/identity.js';

const PROXIES = parseTrustedProxies('10.0.0.0/8, 192.168.7.1, 2001:db8:aa::/48').proxies;

interface Case {
  name: string;
  peer: string | null;
  headers?: ForwardedHeaders;
  trusted?: string | null;
  /** The address expected, or a pattern of the ForwardedError expected. */
  want: string | null | RegExp;
}

const CASES: Case[] = [
  // No trusted proxies configured (the default): headers never count.
  { name: 'ok-no-proxies-peer-is-client', peer: '203.0.113.5', want: '203.0.113.5' },
  { name: 'ok-no-proxies-spoofed-xff-ignored', peer: '203.0.113.5', headers: { xForwardedFor: '198.51.100.1' }, trusted: null, want: '203.0.113.5' },
  { name: 'ok-no-proxies-spoofed-forwarded-ignored', peer: '203.0.113.5', headers: { forwarded: 'for=198.51.100.1' }, trusted: null, want: '203.0.113.5' },
  { name: 'ok-no-proxies-garbage-ignored', peer: '203.0.113.5', headers: { xForwardedFor: 'garbage', forwarded: '"' }, trusted: null, want: '203.0.113.5' },
  { name: 'ok-no-socket-in-process', peer: null, headers: { xForwardedFor: '198.51.100.1' }, want: null },
  // Proxies configured, but this peer is not one of them: spoofing from outside is ignored.
  { name: 'ok-untrusted-peer-spoofed-xff-ignored', peer: '203.0.113.5', headers: { xForwardedFor: '10.0.0.9, 198.51.100.1' }, want: '203.0.113.5' },
  { name: 'ok-untrusted-peer-spoofed-forwarded-ignored', peer: '203.0.113.5', headers: { forwarded: 'for=198.51.100.1' }, want: '203.0.113.5' },
  { name: 'ok-untrusted-peer-malformed-ignored', peer: '203.0.113.5', headers: { xForwardedFor: 'not-an-ip' }, want: '203.0.113.5' },
  { name: 'ok-untrusted-peer-just-outside-the-network', peer: '11.0.0.1', headers: { xForwardedFor: '198.51.100.1' }, want: '11.0.0.1' },
  // A trusted proxy is believed.
  { name: 'ok-trusted-proxy-xff-honoured', peer: '10.1.2.3', headers: { xForwardedFor: '198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-trusted-proxy-forwarded-honoured', peer: '10.1.2.3', headers: { forwarded: 'for=198.51.100.1;proto=https;by=10.1.2.3' }, want: '198.51.100.1' },
  { name: 'ok-trusted-proxy-forwarded-ipv6-quoted-with-port', peer: '10.1.2.3', headers: { forwarded: 'For="[2001:DB8::1]:4711"' }, want: '2001:db8::1' },
  { name: 'ok-trusted-proxy-xff-with-port', peer: '10.1.2.3', headers: { xForwardedFor: '198.51.100.1:50123' }, want: '198.51.100.1' },
  { name: 'ok-trusted-proxy-xff-ipv6-bracketed-port', peer: '10.1.2.3', headers: { xForwardedFor: '[2001:db8::2]:443' }, want: '2001:db8::2' },
  { name: 'ok-trusted-proxy-xff-ipv6-one-spelling', peer: '10.1.2.3', headers: { xForwardedFor: '2001:0DB8:0000::0002' }, want: '2001:db8::2' },
  { name: 'ok-trusted-proxy-ipv4-mapped-peer', peer: '::ffff:10.1.2.3', headers: { xForwardedFor: '198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-trusted-proxy-ipv4-mapped-client', peer: '10.1.2.3', headers: { xForwardedFor: '::ffff:198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-trusted-single-address', peer: '192.168.7.1', headers: { xForwardedFor: '198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-trusted-ipv6-proxy', peer: '2001:db8:aa:1::9', headers: { xForwardedFor: '198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-trusted-proxy-own-request-no-header', peer: '10.1.2.3', headers: {}, want: '10.1.2.3' },
  // Several hops: right to left, trusted proxies skipped, the first other address is the client;
  // what the client itself wrote on the left is never reached.
  { name: 'ok-multi-hop-client-prepended-a-spoof', peer: '10.1.2.3', headers: { xForwardedFor: '6.6.6.6, 198.51.100.1' }, want: '198.51.100.1' },
  { name: 'ok-multi-hop-through-two-proxies', peer: '10.1.2.3', headers: { xForwardedFor: '6.6.6.6, 198.51.100.1, 10.9.9.9, 192.168.7.1' }, want: '198.51.100.1' },
  { name: 'ok-multi-hop-garbage-left-of-client-never-read', peer: '10.1.2.3', headers: { xForwardedFor: 'garbage, 198.51.100.1, 10.9.9.9' }, want: '198.51.100.1' },
  { name: 'ok-multi-hop-forwarded', peer: '10.1.2.3', headers: { forwarded: 'for=6.6.6.6, for=198.51.100.1;proto=https, for="[2001:db8:aa::5]"' }, want: '198.51.100.1' },
  { name: 'ok-multi-hop-forwarded-comma-inside-quotes', peer: '10.1.2.3', headers: { forwarded: 'for=198.51.100.1;by="x,y", for=10.9.9.9' }, want: '198.51.100.1' },
  { name: 'ok-multi-hop-all-trusted-farthest-wins', peer: '10.1.2.3', headers: { xForwardedFor: '10.7.7.7, 10.8.8.8' }, want: '10.7.7.7' },
  // Malformed where it matters, or ambiguous: refused, never guessed.
  { name: 'fail-trusted-proxy-both-headers', peer: '10.1.2.3', headers: { xForwardedFor: '198.51.100.1', forwarded: 'for=6.6.6.6' }, want: /both X-Forwarded-For and Forwarded/ },
  { name: 'fail-trusted-proxy-xff-garbage', peer: '10.1.2.3', headers: { xForwardedFor: 'not-an-ip' }, want: /X-Forwarded-For header holds no IP address at hop 1/ },
  { name: 'fail-trusted-proxy-xff-empty', peer: '10.1.2.3', headers: { xForwardedFor: '' }, want: /no IP address at hop 1/ },
  { name: 'fail-trusted-proxy-xff-trailing-comma', peer: '10.1.2.3', headers: { xForwardedFor: '198.51.100.1,' }, want: /no IP address at hop 1/ },
  { name: 'fail-trusted-proxy-xff-garbage-behind-a-proxy-hop', peer: '10.1.2.3', headers: { xForwardedFor: 'evil, 10.9.9.9' }, want: /at hop 2 from the right/ },
  { name: 'fail-trusted-proxy-xff-hostname', peer: '10.1.2.3', headers: { xForwardedFor: 'localhost' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-xff-zone-id', peer: '10.1.2.3', headers: { xForwardedFor: 'fe80::1%eth0' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-xff-leading-zeros', peer: '10.1.2.3', headers: { xForwardedFor: '010.0.0.1' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-xff-nul', peer: '10.1.2.3', headers: { xForwardedFor: '198.51.100.1\0' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-unknown', peer: '10.1.2.3', headers: { forwarded: 'for=unknown' }, want: /Forwarded header holds no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-obfuscated', peer: '10.1.2.3', headers: { forwarded: 'for=_hidden' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-no-for', peer: '10.1.2.3', headers: { forwarded: 'proto=https' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-two-for', peer: '10.1.2.3', headers: { forwarded: 'for=198.51.100.1;for=6.6.6.6' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-unquoted-ipv6', peer: '10.1.2.3', headers: { forwarded: 'for=[2001:db8::1]' }, want: /no IP address/ },
  { name: 'fail-trusted-proxy-forwarded-unterminated-quote', peer: '10.1.2.3', headers: { forwarded: 'for="198.51.100.1' }, want: /unterminated quoted string/ },
  { name: 'fail-trusted-proxy-forwarded-not-pairs', peer: '10.1.2.3', headers: { forwarded: '198.51.100.1' }, want: /no IP address/ },
];

describe('the client address behind proxies', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const trusted = c.trusted === null ? null : c.trusted === undefined ? PROXIES : parseTrustedProxies(c.trusted).proxies;
      const run = () => resolveClientAddress(c.peer, c.headers ?? {}, trusted);
      if (c.want instanceof RegExp) {
        assert.throws(run, (e: unknown) => e instanceof ForwardedError && e.code === 'invalid_input' && (c.want as RegExp).test(e.message));
      } else {
        assert.equal(run(), c.want);
      }
    });
  }

  test('ok: rate limits count IPv4 addresses one by one and IPv6 addresses by their /64', () => {
    const table: Array<[string | null, string]> = [
      ['198.51.100.1', '198.51.100.1'],
      ['::ffff:198.51.100.1', '198.51.100.1'],
      ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
      ['2001:DB8:1:2::FFFF', '2001:db8:1:2::/64'],
      ['2001:db8:1:3::1', '2001:db8:1:3::/64'],
      ['::1', '::/64'],
      [null, 'unknown'],
    ];
    for (const [given, want] of table) assert.equal(rateLimitKey(given), want, String(given));
  });

  test('ok: an IPv6 address is counted in its /64 and in its /56 (one site); IPv4 and the rest once', () => {
    const table: Array<[string | null, string[]]> = [
      ['198.51.100.1', ['198.51.100.1']],
      ['::ffff:198.51.100.1', ['198.51.100.1']],
      ['2001:db8:1:2:3:4:5:6', ['2001:db8:1:2::/64', '2001:db8:1::/56']],
      ['2001:db8:1:1ff::1', ['2001:db8:1:1ff::/64', '2001:db8:1:100::/56']],
      ['2001:DB8:1:100::FFFF', ['2001:db8:1:100::/64', '2001:db8:1:100::/56']],
      [null, ['unknown']],
    ];
    for (const [given, want] of table) assert.deepEqual(rateLimitKeys(given), want, String(given));
  });

  test('ok: one spelling per address (rate limits count per address)', () => {
    const table: Array<[string, string | null]> = [
      ['198.51.100.1', '198.51.100.1'],
      ['::ffff:198.51.100.1', '198.51.100.1'],
      ['::FFFF:C633:6401', '198.51.100.1'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['::1', '::1'],
      ['198.51.100', null],
      ['1.2.3.4.5', null],
      ['', null],
      ['[::1]', null],
    ];
    for (const [given, want] of table) assert.equal(canonicalIp(given), want, given);
  });
});

describe('JIT_SSH_TRUSTED_PROXIES', () => {
  test('ok: CIDRs and single addresses, comma or space separated; unset or empty trusts nobody', () => {
    const c = loadServerConfig({ JIT_SSH_TRUSTED_PROXIES: '10.0.0.0/8, 172.16.0.0/12 192.168.7.1,2001:DB8::/32' }, {}, '/srv');
    assert.deepEqual(c.trustedProxies?.cidrs, ['10.0.0.0/8', '172.16.0.0/12', '192.168.7.1/32', '2001:db8::/32']);
    assert.ok(c.trustedProxies?.has('172.31.255.255'));
    assert.ok(!c.trustedProxies?.has('172.32.0.0'));
    assert.equal(loadServerConfig({}, {}, '/srv').trustedProxies, null);
    assert.equal(loadServerConfig({ JIT_SSH_TRUSTED_PROXIES: ' , ' }, {}, '/srv').trustedProxies, null);
    assert.deepEqual(loadServerConfig({}, { 'trusted-proxies': '127.0.0.1' }, '/srv').trustedProxies?.cidrs, ['127.0.0.1/32']);
  });

  test('fail: each wrong entry is one line naming the setting; /0 and host bits are refused', () => {
    let problems: string[] = [];
    try {
      loadServerConfig({ JIT_SSH_TRUSTED_PROXIES: '10.0.0.1/8, 0.0.0.0/0, ::/0, proxy.internal, 10.0.0.0/33' }, {}, '/srv');
    } catch (e) {
      problems = (e as { problems: string[] }).problems;
    }
    assert.deepEqual(problems, [
      'JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?',
      "JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): 0.0.0.0/0 would trust every peer to name the client's address; list your proxies' networks",
      "JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): ::/0 would trust every peer to name the client's address; list your proxies' networks",
      'JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): proxy.internal is not an IP address or CIDR such as 10.0.0.0/8',
      'JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): 10.0.0.0/33: the prefix length must be at most 32',
    ]);
  });
});

// Over real sockets from 127.0.0.1: the test plays both the spoofing client and the proxy.
describe('login rate limits and the audit log use the resolved address', () => {
  let t: TestDb;
  const servers: Server[] = [];
  before(async () => {
    t = await BACKENDS[0]!.open();
    const box = createSecretBox(SECRET_KEY);
    await createUserAdmin({ db: t.db, box, passwordCost: TEST_AUTH.passwordCost }).add({ name: 'alice', groups: [], password: 'alice-password-long' }, 'os:test');
  });
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await t.cleanup();
  });

  /** A server on 127.0.0.1 with the real auth service, trusting `proxies`; returns a login function. */
  const listen = async (proxies: string | null) => {
    const auth = await createAuthService({ db: t.db, box: createSecretBox(SECRET_KEY), settings: { ...TEST_AUTH, addressFailureLimit: 3, lockoutThreshold: 1000 } });
    const trusted = proxies === null ? null : parseTrustedProxies(proxies).proxies;
    const app = createApp({
      logger: silentLogger,
      bodyLimit: 65536,
      caKeys: () => Promise.reject(new Error('not in this test')),
      ready: async () => {},
      auth,
      clientAddress: clientAddressResolver(trusted),
      requests: {} as AppDeps['requests'],
      certificates: {} as AppDeps['certificates'],
      reloadPolicy: async () => ({ ok: false, problems: [] }),
      audit: {} as AppDeps['audit'],
      krl: () => Promise.reject(new Error('not in this test')),
    });
    const port = await new Promise<number>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => resolve(info.port)) as Server;
      servers.push(s);
    });
    return async (username: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password: 'wrong-password-xx', totp: '000000' }) });
      const body = (await res.json()) as { detail: string };
      return { status: res.status, detail: body.detail };
    };
  };
  const failuresFrom = async (address: string, user: string) =>
    (await listEvents(t.db, { action: 'login.failed', limit: 100 })).filter((e) => e.target === user && e.client_address === address).length;

  test('ok: with no trusted proxies a client cannot escape the limit by writing X-Forwarded-For; the log records the socket address', async () => {
    const login = await listen(null);
    for (let i = 0; i < 3; i++) assert.equal((await login('spoofer', { 'X-Forwarded-For': `198.51.100.${i + 1}` })).status, 401);
    const blocked = await login('spoofer', { 'X-Forwarded-For': '198.51.100.99', Forwarded: 'for=198.51.100.98' });
    assert.equal(blocked.status, 429, 'a fresh X-Forwarded-For each try must not reset the per-address limit');
    assert.equal(await failuresFrom('127.0.0.1', 'spoofer'), 4, 'three failures and the refusal, all from the socket address');
    assert.equal(await failuresFrom('198.51.100.1', 'spoofer'), 0);
  });

  test('ok: behind a trusted proxy each client has its own limit, a prepended spoof does not help, and the log records the client', async () => {
    // A fresh window: this server trusts 127.0.0.1, and the previous test blocked 127.0.0.1 itself.
    const login = await listen('127.0.0.1/32');
    for (let i = 0; i < 3; i++) assert.equal((await login('bob', { 'X-Forwarded-For': '203.0.113.7' })).status, 401);
    assert.equal((await login('bob', { 'X-Forwarded-For': '203.0.113.7' })).status, 429, 'the fourth failure from one client is refused');
    assert.equal((await login('bob', { 'X-Forwarded-For': '192.0.2.250, 203.0.113.7' })).status, 429, 'a spoofed address written by the client is never read');
    assert.equal((await login('bob', { Forwarded: 'for=203.0.113.7;proto=https' })).status, 429, 'Forwarded names the same client');
    assert.equal((await login('bob', { 'X-Forwarded-For': '203.0.113.8' })).status, 401, 'another client behind the same proxy is not blocked');
    assert.equal(await failuresFrom('203.0.113.7', 'bob'), 3 + 3);
    assert.equal(await failuresFrom('203.0.113.8', 'bob'), 1);
    assert.equal(await failuresFrom('127.0.0.1', 'bob'), 0, 'the proxy itself is never blamed');
    const bad = await login('bob', { 'X-Forwarded-For': 'not-an-address' });
    assert.equal(bad.status, 400);
    assert.match(bad.detail, /^cannot tell the client's address: /);
  });

  test('ok: IPv6 clients are limited per /64 (a host there picks any of 2^64 addresses); the log keeps each full address', async () => {
    const login = await listen('127.0.0.1/32');
    const net = '2001:db8:77:1';
    for (let i = 1; i <= 3; i++) assert.equal((await login('carol', { 'X-Forwarded-For': `${net}::${i}` })).status, 401);
    assert.equal((await login('carol', { 'X-Forwarded-For': `${net}:ffff:ffff:ffff:fffe` })).status, 429, 'another address of the same /64 is the same client');
    assert.equal((await login('carol', { 'X-Forwarded-For': '2001:db8:77:2::1' })).status, 401, 'the next /64 is not blocked');
    assert.equal(await failuresFrom(`${net}::2`, 'carol'), 1);
  });

  test('ok: IPv6 clients are limited per /56 as well: a site cannot spread its guesses over its 256 /64s', async () => {
    // The per-address limit here is 3; a /56 may fail four times that.
    const login = await listen('127.0.0.1/32');
    const site = (n: number) => `2001:db8:88:${(0x100 + n).toString(16)}::1`;
    for (let n = 0; n < 12; n++) assert.equal((await login('dave', { 'X-Forwarded-For': site(n) })).status, 401, `/64 number ${n}`);
    const refused = await login('dave', { 'X-Forwarded-For': site(200) });
    assert.equal(refused.status, 429, 'a fresh /64 of the same /56 is the same site');
    assert.equal((await login('dave', { 'X-Forwarded-For': '2001:db8:88:200::1' })).status, 401, 'the next /56 is not blocked');
    assert.equal(await failuresFrom(site(200), 'dave'), 1, 'the refusal is logged with the full address');
  });
});
