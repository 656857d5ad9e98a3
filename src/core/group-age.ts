// Groups sent by an identity provider count for a limited time after the
// sign-in that sent them: past it, the provider may have removed the person
// (or disabled them) without jit-ssh hearing of it, so nothing is decided on
// those groups until they sign in again. Groups an administrator set (local
// users) have no age.

import { formatDuration } from './duration.js';
import { DomainError } from './errors.js';

export interface GroupsFrom {
  /** The configured issuer's id. */
  issuerId: string;
  /** When the provider last sent the groups. */
  at: Date;
}

/** Seconds since the groups were sent, when older than `maxAge`; null when they still count (or have no age). */
export function staleFor(from: GroupsFrom | undefined, maxAge: number | null, now: Date): number | null {
  if (!from || maxAge === null) return null;
  const age = Math.floor((now.getTime() - from.at.getTime()) / 1000);
  return age > maxAge ? age : null;
}

/** Refuses the caller's own action on groups older than `maxAge`: they must sign in again. */
export function requireFreshGroups(from: GroupsFrom | undefined, maxAge: number | null, now: Date): void {
  const age = staleFor(from, maxAge, now);
  if (age === null) return;
  throw new DomainError(
    'sign_in_required',
    `your groups are from a sign-in with ${from!.issuerId} ${formatDuration(age)} ago, more than the ${formatDuration(maxAge!)} allowed: sign in again (jit-ssh login --sso, or the web page)`,
  );
}

/** Refuses to approve for `requester` on groups older than `maxAge`. */
export function requireFreshRequester(requester: string, from: GroupsFrom | undefined, maxAge: number | null, now: Date): void {
  const age = staleFor(from, maxAge, now);
  if (age === null) return;
  throw new DomainError(
    'conflict',
    `${requester}'s groups are from a sign-in with ${from!.issuerId} ${formatDuration(age)} ago, more than the ${formatDuration(maxAge!)} allowed: ${requester} must sign in again before this request can be approved`,
  );
}
