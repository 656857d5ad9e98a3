// Domain errors carry a stable machine-readable code; the HTTP layer maps codes
// to statuses in one place, and the message is safe to show to the caller.

export type ErrorCode =
  | 'invalid_input'
  | 'invalid_public_key'
  | 'invalid_certificate'
  | 'unauthenticated'
  | 'forbidden'
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
