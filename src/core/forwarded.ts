// Which address a request came from, when reverse proxies stand between:
// parsing X-Forwarded-For and RFC 7239 Forwarded, and the trusted proxies'
// networks. Pure (no hono, no sockets): the configuration checks the setting
// with it, http/client-address.ts applies it to each request, and tests drive
// it from a table.
//
// Only a configured trusted proxy is believed: anyone else could write any
// address there. The chain is read from the right (the hop nearest to us)
// leftwards, skipping trusted proxies; the first address that is not a
// trusted proxy is the client. What lies left of it was written by the
// client and is never looked at. A chain that cannot be read where it matters
// is refused (400), never guessed at.

import { BlockList, isIP, isIPv4 } from 'node:net';
import { DomainError } from './errors.js';
import { canonicalIp, networkOf } from './ip.js';

export { canonicalIp } from './ip.js';

/** A set of networks (CIDRs), parsed from `10.0.0.0/8, 192.168.1.7, 2001:db8::/32`. */
export interface TrustedProxies {
  /** The networks as given (canonical spelling), for logs and messages. */
  readonly cidrs: readonly string[];
  has(address: string): boolean;
}

/**
 * Parses a comma- or space-separated list of CIDRs or single addresses.
 * Returns the set, or the problems (one line each): a wrong entry, host bits
 * set (10.0.0.1/8 is a typo more often than not), or a /0 (that would trust
 * every peer's X-Forwarded-For, i.e. nobody's).
 */
export function parseTrustedProxies(text: string): { proxies: TrustedProxies; problems: string[] } {
  const list = new BlockList();
  const cidrs: string[] = [];
  const problems: string[] = [];
  for (const entry of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry);
    const ip = m ? canonicalIp(m[1]!) : null;
    if (!m || !ip) {
      problems.push(`${entry} is not an IP address or CIDR such as 10.0.0.0/8`);
      continue;
    }
    const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
    const bits = family === 'ipv4' ? 32 : 128;
    const prefix = m[2] === undefined ? bits : Number(m[2]);
    if (prefix > bits) {
      problems.push(`${entry}: the prefix length must be at most ${bits}`);
      continue;
    }
    if (prefix === 0) {
      problems.push(`${entry} would trust every peer to name the client's address; list your proxies' networks`);
      continue;
    }
    const network = networkOf(ip, prefix);
    if (network !== ip) {
      problems.push(`${entry} has host bits set; did you mean ${network}/${prefix}?`);
      continue;
    }
    list.addSubnet(ip, prefix, family);
    cidrs.push(`${ip}/${prefix}`);
  }
  const proxies: TrustedProxies = {
    cidrs,
    has: (address) => {
      const ip = canonicalIp(address);
      return ip !== null && list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
    },
  };
  return { proxies, problems };
}

/** A forwarded chain that cannot be read where the client's address should be. */
export class ForwardedError extends DomainError {
  override name = 'ForwardedError';
  constructor(detail: string) {
    super('invalid_input', `cannot tell the client's address: ${detail}`);
  }
}

// RFC 7230 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Splits at `sep` outside quoted strings; throws on an unterminated quote. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted && ch === '\\') {
      cur += ch + (text[++i] ?? '');
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new ForwardedError('the Forwarded header has an unterminated quoted string');
  out.push(cur);
  return out;
}

/** The address in one X-Forwarded-For entry (`192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`), or null. */
function xffAddress(entry: string): string | null {
  const e = entry.trim();
  const v4port = /^(\d+\.\d+\.\d+\.\d+):\d{1,5}$/.exec(e);
  if (v4port) return canonicalIp(v4port[1]!);
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(e);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? canonicalIp(bracketed[1]!) : null;
  return canonicalIp(e);
}

/** The address in one Forwarded element's `for=` (RFC 7239: `for=192.0.2.1`, `for="[2001:db8::1]:4711"`), or null. */
function forwardedAddress(element: string): string | null {
  let value: string | null = null;
  for (const pair of splitOutsideQuotes(element, ';')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) return null;
    const name = pair.slice(0, eq).trim();
    let v = pair.slice(eq + 1).trim();
    if (!TOKEN.test(name)) return null;
    if (v.startsWith('"')) {
      if (!v.endsWith('"') || v.length < 2) return null;
      v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    } else if (!TOKEN.test(v)) return null;
    if (name.toLowerCase() === 'for') {
      if (value !== null) return null; // two for= in one element
      value = v;
    }
  }
  if (value === null) return null;
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?::(\d{1,5}|_[A-Za-z0-9._-]+))?$/.exec(value);
  if (v4) return canonicalIp(v4[1]!);
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}|_[A-Za-z0-9._-]+))?$/.exec(value);
  if (v6) return isIP(v6[1]!) === 6 ? canonicalIp(v6[1]!) : null;
  return null; // "unknown", an obfuscated identifier, or garbage: no address to rate-limit by
}

export interface ForwardedHeaders {
  xForwardedFor?: string | undefined;
  forwarded?: string | undefined;
}

/**
 * The client's address given the socket peer and the request's headers.
 * Untrusted (or no trusted proxies configured): the peer, headers ignored.
 * Trusted peer: the nearest address in the forwarded chain that is not a
 * trusted proxy (all trusted: the farthest). Throws ForwardedError when a
 * trusted proxy sent both headers (one of them would be the client's own) or
 * the chain is unreadable at the place that decides.
 */
export function resolveClientAddress(peer: string | null, headers: ForwardedHeaders, trusted: TrustedProxies | null): string | null {
  const from = peer === null ? null : (canonicalIp(peer) ?? peer);
  if (from === null || !trusted || trusted.cidrs.length === 0 || !trusted.has(from)) return from;
  const { xForwardedFor: xff, forwarded } = headers;
  if (xff !== undefined && forwarded !== undefined) {
    throw new ForwardedError('a trusted proxy sent both X-Forwarded-For and Forwarded; it must send one (and replace or append to it, never pass the client\'s on alone)');
  }
  if (xff === undefined && forwarded === undefined) return from; // the proxy's own request (a health check)
  const name = xff !== undefined ? 'X-Forwarded-For' : 'Forwarded';
  const entries = xff !== undefined ? xff.split(',') : splitOutsideQuotes(forwarded!, ',');
  const read = xff !== undefined ? xffAddress : forwardedAddress;
  let farthest: string | null = null;
  for (let i = entries.length - 1; i >= 0; i--) {
    const address = read(entries[i]!);
    if (address === null) throw new ForwardedError(`the ${name} header holds no IP address at hop ${entries.length - i} from the right`);
    if (!trusted.has(address)) return address;
    farthest = address;
  }
  return farthest;
}

