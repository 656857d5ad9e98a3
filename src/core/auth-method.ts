// How a person proved who they are for a session: recorded with the session,
// with every login event and with every decision they make, so an auditor can
// tell a password + TOTP login from an identity provider's sign-in, and see
// which passkey, if any, was asserted.

export type FirstFactor = 'password+totp' | 'oidc';

export interface SessionAuth {
  method: FirstFactor;
  /** The identity provider's issuer URL, for `oidc`. */
  issuer?: string;
  /** The ID token's `amr` and `acr` claims, when the provider sent them. */
  amr?: string[];
  acr?: string;
  /** The passkey (WebAuthn credential id, base64url) asserted at sign-in, if one was. */
  webauthn?: string;
}

export const PASSWORD_TOTP: SessionAuth = Object.freeze({ method: 'password+totp' });

/** One line for tables and reports, e.g. `oidc https://idp.example.com amr=pwd,mfa + passkey AbCd…`. */
export function describeAuth(a: SessionAuth | null | undefined): string {
  if (!a) return 'unknown';
  const parts: string[] = [a.method];
  if (a.issuer) parts.push(a.issuer);
  if (a.amr?.length) parts.push(`amr=${a.amr.join(',')}`);
  if (a.acr) parts.push(`acr=${a.acr}`);
  if (a.webauthn) parts.push(`+ passkey ${a.webauthn.slice(0, 12)}${a.webauthn.length > 12 ? '…' : ''}`);
  return parts.join(' ');
}

/** Reads a stored value back: anything not of this shape (an older row) is taken as password + TOTP. */
export function asSessionAuth(v: unknown): SessionAuth {
  if (!v || typeof v !== 'object') return PASSWORD_TOTP;
  const o = v as Record<string, unknown>;
  const method: FirstFactor = o['method'] === 'oidc' ? 'oidc' : 'password+totp';
  const out: SessionAuth = { method };
  if (typeof o['issuer'] === 'string') out.issuer = o['issuer'];
  if (Array.isArray(o['amr']) && o['amr'].every((x) => typeof x === 'string')) out.amr = o['amr'] as string[];
  if (typeof o['acr'] === 'string') out.acr = o['acr'];
  if (typeof o['webauthn'] === 'string') out.webauthn = o['webauthn'];
  return out;
}
