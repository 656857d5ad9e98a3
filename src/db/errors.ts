import { UnavailableError } from '../core/errors.js';

/** PostgreSQL's unique_violation, as both drivers report it. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

/** PostgreSQL's check_violation (also what triggers guarding an invariant raise), as both drivers report it. */
export function isCheckViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23514' && e.constraint === constraint;
}

/** Socket errors: the database host refused, reset or never answered the connection. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/**
 * SQLSTATEs meaning the server is going away, not accepting sessions, or did
 * not finish in time: class 08 (connection exception), 57P01 admin_shutdown,
 * 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, shutting down,
 * in recovery), 57014 query_canceled (statement_timeout), 53300
 * too_many_connections, 25P03 idle_in_transaction_session_timeout.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '25P03']);

/** What node-postgres and its pool say, without a code, when the connection is gone or never came. */
const DRIVER_MESSAGES = [
  /^Connection terminated/, // "... unexpectedly", "... due to connection timeout"
  /^timeout exceeded when trying to connect/,
  /^Query read timeout/,
  /is not queryable/, // "Client has encountered a connection error and is not queryable", "Client was closed ..."
  /^Cannot use a pool after calling end on the pool/,
];

/**
 * True when `err` says the database could not be reached or did not answer:
 * the statement's outcome is unknown or it never ran, and retrying later may
 * work. False for errors of the statement itself (constraints, syntax, ...).
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  if (err instanceof UnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (SOCKET_CODES.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code)) return true;
    // Any other SQLSTATE is the statement's own error.
    if (/^[0-9A-Z]{5}$/.test(e.code)) return false;
  }
  if (typeof e.message === 'string' && DRIVER_MESSAGES.some((re) => re.test(e.message as string))) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailable(x, depth + 1))) return true; // AggregateError (IPv4 and IPv6 refused)
  return isDatabaseUnavailable(e.cause, depth + 1);
}

export const DATABASE_UNAVAILABLE = 'the database is unavailable; try again shortly';

/** `err` as the domain's `unavailable` when it is a connection failure, else `err` unchanged. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof UnavailableError || !isDatabaseUnavailable(err)) return err;
  return new UnavailableError(DATABASE_UNAVAILABLE, 5, { cause: err });
}
