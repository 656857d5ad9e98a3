// TOTP (RFC 6238) as every authenticator app reads it: SHA-1, 6 digits, 30 s.
// Verification returns the accepted time-step; the caller records it so the
// same step is never accepted twice (see the login pipeline).

import { generateSecret, generateURI, verify } from 'otplib';

export const TOTP_PERIOD = 30;
export const TOTP_ISSUER = 'jit-ssh';

/** A new 160-bit secret in base32 (RFC 4226 recommends 160 bits). */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** `otpauth://totp/jit-ssh:NAME?secret=...&issuer=jit-ssh` */
export function enrollmentUri(username: string, secret: string): string {
  return generateURI({ issuer: TOTP_ISSUER, label: username, secret });
}

/**
 * The time-step `code` is valid for, allowing one step of clock drift either
 * way, or null. A code that is not six digits is refused without computing.
 */
export async function verifyTotp(secret: string, code: string, nowSeconds: number): Promise<number | null> {
  if (typeof code !== 'string' || !/^\d{6}$/.test(code)) return null;
  const result = await verify({ secret, token: code, epoch: nowSeconds, epochTolerance: TOTP_PERIOD });
  return result.valid ? Math.floor(nowSeconds / TOTP_PERIOD) + result.delta : null;
}
