// What a login attempt must get past before its credentials are checked, and
// what it leaves behind. In this order, all before any password work: the
// client's networks (an IPv4 address; an IPv6 /64 and the /56 around it),
// then the name's lockout. Each is counted before the check, in the database
// (so parallel attempts and other instances see it), and given back if the
// attempt succeeds or is never checked.
//
// The password work (scrypt, memory-hard, two at a time per process) is the
// scarce resource: while it is busy here, or once the whole deployment has
// seen `globalFailureLimit` failed logins in the window, an attempt's code is
// checked before its password, and one with a wrong code fails without the
// password work. That cannot lock anyone out (a wrong code fails anyway, and
// a right one goes on to the password as before); it only makes guesses
// without the code cheap to refuse, so a good login does not queue behind
// them. What it gives away: under that pressure, a wrong code is answered
// sooner than a wrong password (nothing about the password, nor whether the
// name exists: an unknown name fails the code check the same way).

import type { Kysely } from 'kysely';
import { passwordWorkBusy } from '../auth/password.js';
import type { AuthSettings } from '../config.js';
import { rateLimitKeys } from '../core/ip.js';
import type { Database } from '../db/schema.js';
import { beginUserAttempt, beginWindowAttempt, beginWindowAttempts, clearThrottle, failUserAttempt, releaseUserAttempt, releaseWindowAttempts, windowFull } from '../db/throttle.js';

/** The window of the per-address limits and of the deployment's failure budget. */
export const LOGIN_WINDOW_SECONDS = 600;
export const MAX_LOCKOUT_SECONDS = 3600;
/**
 * An IPv6 /56 may fail this many times the per-address limit: it is one site
 * (256 /64s), but often several people, where a /64 is one network of it.
 */
export const SITE_LIMIT_FACTOR = 4;
const BUDGET_KEY = 'global:login-failures';

export interface LoginAttempt {
  /** The deployment's failed-login budget for the window is spent. */
  budgetSpent: boolean;
  /** The credentials were right: the name's failures are forgotten, the addresses get their count back. */
  succeeded(): Promise<void>;
  /** The attempt was never checked (the server was busy): every count it took is given back. */
  withdraw(): Promise<void>;
  /** The credentials were wrong: counted for the name (the end of a lock this failure started, if it did) and in the budget. */
  failed(): Promise<Date | null>;
}

export type Admission = { ok: true; attempt: LoginAttempt } | { ok: false; reason: 'address_rate_limited' | 'locked' | 'too_many_attempts'; retryAfter: number };

type LimitSettings = Pick<AuthSettings, 'addressFailureLimit' | 'lockoutThreshold' | 'lockoutSeconds' | 'globalFailureLimit'>;

/**
 * Whether to check the code before the password now: the password work is
 * busy in this process (asked at the moment of the check, so a burst that
 * arrives together sees it), or the budget is spent.
 */
export function codeFirst(attempt: LoginAttempt): boolean {
  return attempt.budgetSpent || passwordWorkBusy();
}

export function loginLimits(db: Kysely<Database>, settings: LimitSettings) {
  return {
    async admit(username: string, clientAddress: string | null, at: Date): Promise<Admission> {
      const networks = rateLimitKeys(clientAddress).map((k, i) => ({ key: `addr:${k}`, limit: i === 0 ? settings.addressFailureLimit : settings.addressFailureLimit * SITE_LIMIT_FACTOR }));
      const addr = await beginWindowAttempts(db, networks, at, LOGIN_WINDOW_SECONDS);
      if (!addr.ok) return { ok: false, reason: 'address_rate_limited', retryAfter: addr.retryAfter };
      const userKey = `user:${username}`;
      const slot = await beginUserAttempt(db, userKey, at, settings.lockoutThreshold);
      if (!slot.ok) {
        await releaseWindowAttempts(db, addr.taken);
        return { ok: false, reason: slot.reason, retryAfter: slot.retryAfter };
      }
      const budgetSpent = await windowFull(db, BUDGET_KEY, at, LOGIN_WINDOW_SECONDS, settings.globalFailureLimit);
      return {
        ok: true,
        attempt: {
          budgetSpent,
          async succeeded() {
            await clearThrottle(db, userKey);
            await releaseWindowAttempts(db, addr.taken);
          },
          async withdraw() {
            await releaseUserAttempt(db, userKey);
            await releaseWindowAttempts(db, addr.taken);
          },
          async failed() {
            const lockedUntil = await failUserAttempt(db, userKey, at, settings.lockoutThreshold, settings.lockoutSeconds, MAX_LOCKOUT_SECONDS);
            // Once spent, the budget is not written to again in its window: a flood does not queue on its row.
            if (!budgetSpent) await beginWindowAttempt(db, BUDGET_KEY, at, LOGIN_WINDOW_SECONDS, settings.globalFailureLimit);
            return lockedUntil;
          },
        },
      };
    },
  };
}
