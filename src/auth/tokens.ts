// Session tokens: 256 random bits, shown to the client once and stored only
// as a SHA-256 hash (a database dump gives no usable token). The prefix lets
// secret scanners recognise a leaked one.

import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'jit_';

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function looksLikeToken(token: string): boolean {
  return /^jit_[A-Za-z0-9_-]{43}$/.test(token);
}
