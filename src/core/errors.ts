// Domain errors carry a stable machine-readable code; the HTTP layer maps codes
// to statuses in one place, and the message is safe to show to the caller.

export type ErrorCode =
  | 'invalid_input'
  | 'invalid_public_key'
  | 'invalid_certificate'
  | 'unauthenticated'
  | 'forbidden'
  /** The action needs a fresh second factor for it (a TOTP code bound to this request), and none was given. */
  | 'step_up_required'
  /** The second factor given for the action was wrong or already used. */
  | 'step_up_failed'
  /** Policy asks for a passkey (WebAuthn) here, and the person has none registered or did not use one. */
  | 'mfa_required'
  /** The caller's groups came from an identity provider's sign-in longer ago than allowed: sign in again. */
  | 'sign_in_required'
  /** The key is a sound public key, but the grant's role takes no key of its type (`require_key: fido`: security keys only). */
  | 'key_type_not_allowed'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable';

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Too many attempts; `retryAfter` seconds until trying again makes sense. */
export class RateLimitedError extends DomainError {
  override name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super('rate_limited', message);
  }
}

/**
 * The service cannot do its work just now (its database is down or does not
 * answer in time); nothing was done that the caller was told of. `retryAfter`
 * seconds until trying again makes sense.
 */
export class UnavailableError extends DomainError {
  override name = 'UnavailableError';
  constructor(
    message: string,
    readonly retryAfter = 5,
    options?: { cause?: unknown },
  ) {
    super('unavailable', message);
    if (options && 'cause' in options) this.cause = options.cause;
  }
}
