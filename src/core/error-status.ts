// What every surface answers for an error, in one table: the HTTP status of
// each kind of domain error (the API, the admin socket and the web pages use
// it, and the admin client reads it back), how long a refused caller should
// wait before trying again, and the refusals the adapters make themselves.

import { RateLimitedError, UnavailableError, type ErrorCode } from './errors.js';

/** The statuses the table answers. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 429 | 503;

export const STATUS_OF: Record<ErrorCode, ErrorStatus> = {
  invalid_input: 400,
  invalid_public_key: 400,
  invalid_certificate: 400,
  unauthenticated: 401,
  forbidden: 403,
  step_up_required: 403,
  step_up_failed: 403,
  mfa_required: 403,
  sign_in_required: 401,
  // Forbidden by policy, as mfa_required: the key itself is well-formed, the role refuses its kind.
  key_type_not_allowed: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  unavailable: 503,
};

/** Seconds until trying again makes sense (a Retry-After header), for the errors that say so. */
export function retryAfterOf(err: unknown): number | null {
  return err instanceof RateLimitedError || err instanceof UnavailableError ? err.retryAfter : null;
}

/**
 * A refusal an adapter makes itself, not the domain (a body that is not JSON,
 * a page that needs a role): its status and a sentence meant for the caller.
 */
export class Refusal extends Error {
  override name = 'Refusal';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}
