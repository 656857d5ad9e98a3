// The decision: (policy, requester, request, now) → approved | pending | denied,
// with the rule that decided and a sentence saying why. Pure: no clock, no
// storage; the caller stores the answer with the request.

import { formatDuration } from './duration.js';
import type { AccessRequest, AutoApproveRule, Decision, Policy, Requester, Role, Subject, TimeWindow } from './policy-types.js';

export function matchesSubjects(subjects: readonly Subject[], who: Requester): boolean {
  return subjects.some((s) => (s.kind === 'user' ? s.name === who.name : who.groups.includes(s.name)));
}

function inLists(groups: readonly string[], users: readonly string[], who: Requester): boolean {
  return users.includes(who.name) || groups.some((g) => who.groups.includes(g));
}

export function canRequest(role: Role, who: Requester): boolean {
  return matchesSubjects(role.requesters, who);
}

export function canBreakGlass(role: Role, who: Requester): boolean {
  return !!role.breakGlass && inLists(role.breakGlass.groups, role.breakGlass.users, who);
}

/** Named by the role's approval rule as one of its approvers. */
export function isApprover(role: Role, who: Requester): boolean {
  return !!role.approval && matchesSubjects(role.approval.approvers, who);
}

/** An approver of the role, and never the requester of the request. */
export function canApprove(role: Role, approver: Requester, requesterName: string): boolean {
  return approver.name !== requesterName && isApprover(role, approver);
}

/** Does the auto-approve rule speak of `who`? A rule naming nobody speaks of everyone who may request. */
export function ruleCovers(rule: AutoApproveRule, who: Requester): boolean {
  return (rule.groups.length === 0 && rule.users.length === 0) || inLists(rule.groups, rule.users, who);
}

/** Needs every request of `who` for `role` a person's approval? No when some auto-approve rule covers them (its other conditions aside). */
export function needsApproval(role: Role, who: Requester): boolean {
  return !role.autoApprove.some((rule) => ruleCovers(rule, who));
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Weekday and minute of the day at `now` in `timezone`. */
function localTime(now: Date, timezone: string): { day: (typeof DAYS)[number]; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as (typeof DAYS)[number];
  return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/** Is the window open at `now`? A window ending before it starts spans midnight; its day is the day it opened. */
export function inWindow(w: TimeWindow, now: Date): boolean {
  const { day, minute } = localTime(now, w.timezone);
  if (w.startMinute < w.endMinute) return w.days.includes(day) && minute >= w.startMinute && minute < w.endMinute;
  if (minute >= w.startMinute) return w.days.includes(day);
  if (minute < w.endMinute) return w.days.includes(DAYS[(DAYS.indexOf(day) + 6) % 7]!);
  return false;
}

const FILLER = new Set(['test', 'testing', 'asdf', 'n/a', 'na', 'none', 'todo', 'fix', 'access', 'need access', 'pls', 'please', 'work']);

/** A reason must say something: long enough, and not filler. */
export function reasonProblem(reason: string, minLength: number): string | null {
  const r = reason.trim();
  if (r.length < minLength) return `a reason of at least ${minLength} characters is required`;
  if (new Set(r.toLowerCase().replace(/\s/g, '')).size <= 2 || FILLER.has(r.toLowerCase())) return 'the reason must say why access is needed';
  return null;
}

const denied = (rule: string, reason: string): Decision => ({ outcome: 'denied', rule, reason, requiredApprovals: 0 });

export function decide(policy: Policy, who: Requester, req: AccessRequest, now: Date): Decision {
  const role = policy.roles.get(req.role);
  if (!role) return denied('unknown-role', `there is no role ${req.role}`);
  const asked = formatDuration(req.duration);

  if (req.breakGlass) {
    if (!canBreakGlass(role, who)) return denied('not-break-glass', `${who.name} may not use break-glass for ${role.name}`);
    const bad = reasonProblem(req.reason, policy.defaults.minReasonLength);
    if (bad) return denied('reason-required', bad);
    const cap = role.breakGlass!.maxDuration;
    if (req.duration > cap) return denied('duration-exceeds-break-glass-max', `break-glass is capped at ${formatDuration(cap)}; asked for ${asked}`);
    return { outcome: 'approved', rule: 'break-glass', reason: `break-glass: granted at once for ${asked} (cap ${formatDuration(cap)}); review required`, requiredApprovals: 0 };
  }

  if (!canRequest(role, who)) return denied('not-a-requester', `${who.name} may not request ${role.name}`);
  const bad = reasonProblem(req.reason, policy.defaults.minReasonLength);
  if (bad) return denied('reason-required', bad);
  if (req.duration <= 0 || req.duration > role.maxDuration) {
    return denied('duration-exceeds-max', `${role.name} is granted for at most ${formatDuration(role.maxDuration)}; asked for ${asked}`);
  }
  if (role.requireTicket && !req.ticket) return denied('ticket-required', `${role.name} requires a ticket`);

  for (const rule of role.autoApprove) {
    if (!ruleCovers(rule, who)) continue;
    const anyone = rule.groups.length === 0 && rule.users.length === 0;
    if (req.duration > rule.maxDuration) continue;
    if (rule.requireTicket && !req.ticket) continue;
    if (rule.window && !inWindow(rule.window, now)) continue;
    const member = anyone ? 'may request' : rule.users.includes(who.name) ? `listed as ${who.name}` : `member of ${rule.groups.filter((g) => who.groups.includes(g)).join(', ')}`;
    const facts = [member, `${asked} ≤ ${formatDuration(rule.maxDuration)}`, ...(rule.requireTicket ? [`ticket ${req.ticket}`] : []), ...(rule.window ? ['inside its time window'] : [])];
    return { outcome: 'approved', rule: `auto_approve[${rule.index}]`, reason: `auto-approved by auto_approve[${rule.index}]: ${facts.join(', ')}`, requiredApprovals: 0 };
  }

  if (role.approval) {
    const from = role.approval.approvers.map((s) => `${s.kind}:${s.name}`).join(', ');
    const n = role.approval.required;
    return { outcome: 'pending', rule: 'approval', reason: `needs ${n} approval${n > 1 ? 's' : ''} from ${from}`, requiredApprovals: n };
  }
  return denied('no-approval-path', `no auto-approve rule matches and ${role.name} has no approvers`);
}
