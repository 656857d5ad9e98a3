// IP addresses in one spelling, and networks of them. Pure: used by the
// client-address resolution (core/forwarded.ts) and by login rate limits.

import { isIP, isIPv4 } from 'node:net';

/**
 * An IP address in one spelling: IPv4 dotted quad; IPv6 as the URL parser
 * writes it (lower case, zeros compressed); IPv4-mapped IPv6 (what a
 * dual-stack socket reports for an IPv4 peer) as plain IPv4. Null if `text`
 * is not an IP address. One spelling matters: rate limits count per address.
 */
export function canonicalIp(text: string): string | null {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6 || text.includes('%')) return null;
  const mappedDotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mappedDotted) return isIPv4(mappedDotted[1]!) ? mappedDotted[1]! : null;
  const v6 = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return v6;
}

/** The network address of `ip` (canonical) with `prefix` bits kept. */
export function networkOf(ip: string, prefix: number): string {
  if (isIPv4(ip)) {
    const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const net = (n & mask) >>> 0;
    return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
  }
  const groups = expandV6(ip);
  const out = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    return keep === 16 ? g : keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  return canonicalIp(out.map((g) => g.toString(16)).join(':'))!;
}

function expandV6(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const parts = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return parts.map((p: string) => parseInt(p, 16));
}

/**
 * What login rate limits count failures by: an IPv4 address, or the /64 an
 * IPv6 address lies in (the usual size of one subscriber's network, where a
 * single host can take any of 2^64 addresses and so start afresh at will).
 * Anything else (no address, a socket's odd spelling) is counted as given.
 */
export function rateLimitKey(address: string | null): string {
  if (address === null) return 'unknown';
  const ip = canonicalIp(address);
  if (ip === null) return address;
  return isIPv4(ip) ? ip : `${networkOf(ip, 64)}/64`;
}

/**
 * Every network login rate limits count an address in, narrowest first: an
 * IPv4 address alone; an IPv6 address in its /64 and in its /56, since one
 * site is commonly delegated a /56 and can spread its attempts over its 256
 * /64s. Anything else as rateLimitKey counts it.
 */
export function rateLimitKeys(address: string | null): string[] {
  const ip = address === null ? null : canonicalIp(address);
  if (ip === null || isIPv4(ip)) return [rateLimitKey(address)];
  return [`${networkOf(ip, 64)}/64`, `${networkOf(ip, 56)}/56`];
}
