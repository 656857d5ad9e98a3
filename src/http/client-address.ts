// The client's address as login rate limits and the audit log see it: the
// socket's peer, or, when that peer is a configured trusted proxy, the client
// its X-Forwarded-For or Forwarded header names (see core/forwarded.ts).

import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { resolveClientAddress, type TrustedProxies } from '../core/forwarded.js';

/** The peer's address as the socket sees it; null when there is no socket (in-process tests). */
export function socketAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/** The `clientAddress` of the app: the socket peer, or what trusted proxies say it forwarded. */
export function clientAddressResolver(trusted: TrustedProxies | null): (c: Context) => string | null {
  return function clientAddress(c) {
    return resolveClientAddress(socketAddress(c), { xForwardedFor: c.req.header('X-Forwarded-For'), forwarded: c.req.header('Forwarded') }, trusted);
  };
}
