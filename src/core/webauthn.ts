// The rules for passkeys (WebAuthn) that need no I/O: whether an assertion's
// signature counter may be accepted, and when policy asks for a passkey.

import type { MfaMethod } from './policy-types.js';

export type CounterVerdict = 'ok' | 'not_increasing';

/**
 * WebAuthn §6.1.1: an authenticator that keeps a signature counter sends a
 * larger one with every assertion. One that is not larger than the last
 * accepted means two copies of the key are in use (a cloned authenticator) or
 * an old assertion is being sent again: refused. Both zero is an
 * authenticator that keeps no counter (many synced passkeys): accepted, the
 * single-use challenge being the defence against replay there. A counter that
 * falls back to zero after being used is refused too.
 */
export function signCountVerdict(stored: number, received: number): CounterVerdict {
  if (stored === 0 && received === 0) return 'ok';
  return received > stored ? 'ok' : 'not_increasing';
}

/**
 * Whether a web sign-in must end with a passkey: when policy says so for
 * login, and for anyone who has registered one (a person with a passkey is
 * not let in on a code alone, which can be phished).
 */
export function passkeyAtLogin(login: MfaMethod, hasPasskey: boolean): boolean {
  return login === 'webauthn' || hasPasskey;
}

/**
 * The API's sign-ins (the CLI's: password + code, and --sso's device and
 * loopback flows) cannot end with a passkey: where policy asks for one at
 * every sign-in they are refused, with what to do instead.
 */
export function apiSignInRefusal(login: MfaMethod): string | null {
  return login === 'webauthn' ? 'this server’s policy asks for a passkey at every sign-in (mfa.login: webauthn), which a sign-in through the API (jit-ssh login, also with --sso) cannot give: sign in on the web pages' : null;
}
