// The rules of a grant's life that do not depend on storage: when it is live,
// who may keep holding it, and how far it may be extended. Pure: the caller
// brings the clock and the rows. The transitions built on them (filing,
// approving, extending, ending) are in grant-life.ts.

import { formatDuration } from './duration.js';
import { canBreakGlass, canRequest } from './decide.js';
import type { AccessRequest, Policy, Role } from './policy-types.js';

export interface GrantFacts {
  username: string;
  role: string;
  startsAt: Date;
  endsAt: Date;
  breakGlass: boolean;
  /** Set when the grant ended before its window did; an ended grant never becomes live again. */
  endedAt: Date | null;
}

export interface Holder {
  name: string;
  groups: readonly string[];
  enabled: boolean;
}

/**
 * The one rule for "this grant gives access now". Grants start when they are
 * approved, so only the end is compared: an instance whose clock is a little
 * behind the one that approved must not refuse a grant that just began.
 */
export function isLive(g: GrantFacts, at: Date): boolean {
  return g.endedAt === null && at < g.endsAt;
}

/** Why `holder` may no longer hold a grant of `role` (null: they still may). Break-glass grants answer to the break-glass list. */
export function holdRefusal(role: Role | undefined, roleName: string, holder: Holder | undefined, breakGlass: boolean): string | null {
  if (!holder) return `the user no longer exists`;
  if (!holder.enabled) return `${holder.name} is disabled`;
  if (!role) return `role ${roleName} is no longer in the policy`;
  const who = { name: holder.name, groups: holder.groups };
  if (breakGlass ? !canBreakGlass(role, who) : !canRequest(role, who)) return `${holder.name} no longer may request ${roleName}`;
  return null;
}

/** The longest a grant of `role` may last from its start to its end: the role's maximum, or the break-glass cap. */
export function windowCap(role: Role, breakGlass: boolean): number {
  return breakGlass && role.breakGlass ? role.breakGlass.maxDuration : role.maxDuration;
}

const seconds = (from: Date, to: Date) => Math.ceil((to.getTime() - from.getTime()) / 1000);

/**
 * What an extension is judged as: a request for the grant's whole window, from
 * its start to its new end, of the grant's kind (break-glass stays break-glass).
 * Judged this way, extensions cannot add up past any cap: each one is measured
 * with every earlier one already in the window.
 */
export function extensionAsRequest(g: GrantFacts, ext: AccessRequest): AccessRequest {
  return { ...ext, role: g.role, breakGlass: g.breakGlass, duration: seconds(g.startsAt, g.endsAt) + ext.duration };
}

/**
 * Why extending `g` by `extra` seconds must be refused at approval time, when
 * the grant may have grown (or ended) since the extension was filed; null when
 * it may go ahead.
 */
export function extensionRefusal(policy: Policy, g: GrantFacts, extra: number, at: Date): string | null {
  if (!isLive(g, at)) return 'the grant has ended; file a new request';
  const role = policy.roles.get(g.role);
  if (!role) return `role ${g.role} is no longer in the policy`;
  const cap = windowCap(role, g.breakGlass);
  const total = seconds(g.startsAt, g.endsAt) + extra;
  if (total > cap) {
    return `the grant would last ${formatDuration(total)} in all, more than the ${formatDuration(cap)} ${g.breakGlass ? 'break-glass cap' : `${g.role} allows`}`;
  }
  return null;
}
