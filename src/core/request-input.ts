// What a person writes when they ask for access or decide on it, checked and
// turned into the terms the rules read. Pure: a problem is a DomainError
// ('invalid_input') whose message says what is wrong.

import { formatDuration, LONGEST_GRANT, parseDuration } from './duration.js';
import { DomainError } from './errors.js';
import type { AccessRequest, Role } from './policy-types.js';

export type RequestStatus = 'pending' | 'approved' | 'denied' | 'cancelled' | 'expired';
export const STATUSES: readonly RequestStatus[] = ['pending', 'approved', 'denied', 'cancelled', 'expired'];

const MAX_REASON = 1000;
const TICKET = /^[A-Za-z0-9][A-Za-z0-9._:#/+-]{0,127}$/;

function optionalText(v: unknown, what: string, max: number): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > max || /[\x00-\x08\x0b-\x1f\x7f]/.test(v)) {
    throw new DomainError('invalid_input', `${what} must be text of at most ${max} characters`);
  }
  return v;
}

/** A decision's or a review's comment, or null; a caller may check it before spending a step-up code on it. */
export function checkComment(v: unknown): string | null {
  return optionalText(v, 'comment', MAX_REASON);
}

/** A status to list requests by, or undefined for all. */
export function checkStatus(v: string | undefined): RequestStatus | undefined {
  if (v !== undefined && !STATUSES.includes(v as RequestStatus)) throw new DomainError('invalid_input', `status must be one of ${STATUSES.join(', ')}`);
  return v as RequestStatus | undefined;
}

function parseRequestedDuration(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const secs = typeof v === 'number' ? (Number.isSafeInteger(v) && v > 0 ? v : null) : typeof v === 'string' ? parseDuration(v) : null;
  if (secs === null) throw new DomainError('invalid_input', 'duration must be like 90s, 15m, 2h or 1h30m');
  if (secs > LONGEST_GRANT) throw new DomainError('invalid_input', `duration must be at most ${formatDuration(LONGEST_GRANT)}`);
  return secs;
}

/** A request as filed (`role` is the role named, which may not exist: such a request is filed and denied by policy). */
export function parseAccessInput(input: Record<string, unknown>, role: Role | undefined): AccessRequest {
  if (typeof input['role'] !== 'string' || input['role'].length === 0) throw new DomainError('invalid_input', 'role is required');
  // An unknown role is filed (and denied by policy), so it must be text the database can store.
  if (input['role'].length > 64 || /[\x00-\x1f\x7f]/.test(input['role'])) throw new DomainError('invalid_input', 'role must be the name of a role');
  const reason = optionalText(input['reason'], 'reason', MAX_REASON);
  if (reason === null) throw new DomainError('invalid_input', 'reason is required: say why you need access');
  const ticket = optionalText(input['ticket'], 'ticket', 128);
  if (ticket !== null && !TICKET.test(ticket)) throw new DomainError('invalid_input', 'ticket must be an identifier such as OPS-123');
  if (input['break_glass'] !== undefined && typeof input['break_glass'] !== 'boolean') throw new DomainError('invalid_input', 'break_glass must be true or false');
  return {
    role: input['role'],
    duration: parseRequestedDuration(input['duration'], role?.defaultDuration ?? 3600),
    reason,
    ticket,
    breakGlass: input['break_glass'] === true,
  };
}
