import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canApprove, canBreakGlass, canRequest, decide, inWindow } from '../../src/core/decide.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { AccessRequest, Requester } from '../../src/core/policy-types.js';

const policy = parsePolicy(`
defaults:
  max_duration: 8h
roles:
  web-prod:
    principals: [deploy]
    requesters: [group:engineering, user:contractor]
    max_duration: 4h
    approval:
      approvers: [group:sre-leads, user:carol]
      required: 1
    auto_approve:
      - groups: [oncall]
        max_duration: 2h
      - groups: [engineering]
        max_duration: 30m
        require_ticket: true
      - users: [nightowl]
        max_duration: 1h
        window: {days: [mon, tue, wed, thu, fri], start: "22:00", end: "06:00", timezone: Asia/Tokyo}
      - groups: [office]
        max_duration: 1h
        window: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00", timezone: Europe/Berlin}
    break_glass:
      groups: [sre]
      users: [boss]
      max_duration: 1h
  db-prod:
    principals: [dba]
    requesters: [group:engineering]
    require_ticket: true
    approval: {approvers: [group:dba-leads], required: 2}
  auto-only:
    principals: [ops]
    requesters: [group:ops]
    auto_approve: [{max_duration: 1h}]
  glass-only:
    principals: [root]
    requesters: [group:engineering]
    break_glass: {groups: [sre], max_duration: 30m}
`);

const who = (name: string, ...groups: string[]): Requester => ({ name, groups });
const ask = (role: string, duration: number, extra: Partial<AccessRequest> = {}): AccessRequest => ({ role, duration, reason: 'deploy the checkout fix', ticket: null, breakGlass: false, ...extra });
// A Wednesday, 10:00 in Berlin (CET, UTC+1) — 09:00 UTC.
const WED_WINTER_10_BERLIN = new Date('2026-01-14T09:00:00Z');

interface Case {
  name: string;
  requester: Requester;
  request: AccessRequest;
  now?: Date;
  outcome: 'approved' | 'pending' | 'denied';
  rule: string;
  reason?: RegExp;
  required?: number;
}

const H = 3600;
const cases: Case[] = [
  { name: 'ok-auto-oncall', requester: who('ann', 'engineering', 'oncall'), request: ask('web-prod', 2 * H), outcome: 'approved', rule: 'auto_approve[0]', reason: /member of oncall, 2h ≤ 2h/ },
  { name: 'ok-auto-at-exact-cap', requester: who('ann', 'engineering', 'oncall'), request: ask('web-prod', 2 * H), outcome: 'approved', rule: 'auto_approve[0]' },
  { name: 'ok-over-auto-cap-goes-to-approval', requester: who('ann', 'engineering', 'oncall'), request: ask('web-prod', 2 * H + 1), outcome: 'pending', rule: 'approval', reason: /needs 1 approval from group:sre-leads, user:carol/, required: 1 },
  { name: 'ok-first-matching-rule-wins', requester: who('ann', 'engineering', 'oncall'), request: ask('web-prod', 20 * 60, { ticket: 'OPS-1' }), outcome: 'approved', rule: 'auto_approve[0]' },
  { name: 'ok-rule-with-ticket', requester: who('bob', 'engineering'), request: ask('web-prod', 30 * 60, { ticket: 'OPS-1' }), outcome: 'approved', rule: 'auto_approve[1]', reason: /ticket OPS-1/ },
  { name: 'ok-rule-needing-ticket-falls-through', requester: who('bob', 'engineering'), request: ask('web-prod', 30 * 60), outcome: 'pending', rule: 'approval' },
  { name: 'ok-user-requester', requester: who('contractor'), request: ask('web-prod', H), outcome: 'pending', rule: 'approval' },
  { name: 'fail-not-a-requester', requester: who('mallory', 'marketing'), request: ask('web-prod', H), outcome: 'denied', rule: 'not-a-requester' },
  { name: 'fail-unknown-role', requester: who('ann', 'engineering'), request: ask('nope', H), outcome: 'denied', rule: 'unknown-role' },
  { name: 'ok-at-role-max', requester: who('bob', 'engineering'), request: ask('web-prod', 4 * H), outcome: 'pending', rule: 'approval' },
  { name: 'fail-over-role-max', requester: who('bob', 'engineering'), request: ask('web-prod', 4 * H + 1), outcome: 'denied', rule: 'duration-exceeds-max', reason: /at most 4h; asked for 4h1s/ },
  { name: 'fail-reason-short', requester: who('bob', 'engineering'), request: ask('web-prod', H, { reason: 'deploy' }), outcome: 'denied', rule: 'reason-required', reason: /at least 10/ },
  { name: 'fail-reason-filler', requester: who('bob', 'engineering'), request: ask('web-prod', H, { reason: 'aaaaaaaaaaaa' }), outcome: 'denied', rule: 'reason-required' },
  { name: 'fail-reason-filler-word', requester: who('bob', 'engineering'), request: ask('web-prod', H, { reason: '  need access  ' }), outcome: 'denied', rule: 'reason-required' },
  { name: 'fail-role-ticket-required', requester: who('bob', 'engineering'), request: ask('db-prod', H), outcome: 'denied', rule: 'ticket-required' },
  { name: 'ok-role-ticket-given', requester: who('bob', 'engineering'), request: ask('db-prod', H, { ticket: 'DB-9' }), outcome: 'pending', rule: 'approval', required: 2, reason: /needs 2 approvals/ },
  { name: 'ok-auto-anyone-who-may-request', requester: who('oli', 'ops'), request: ask('auto-only', H), outcome: 'approved', rule: 'auto_approve[0]', reason: /may request/ },
  { name: 'fail-no-approval-path', requester: who('oli', 'ops'), request: ask('auto-only', H + 1), outcome: 'denied', rule: 'no-approval-path' },
  { name: 'fail-glass-only-role-without-glass', requester: who('bob', 'engineering'), request: ask('glass-only', 600), outcome: 'denied', rule: 'no-approval-path' },
  { name: 'ok-break-glass-group', requester: who('sam', 'sre'), request: ask('web-prod', H, { breakGlass: true }), outcome: 'approved', rule: 'break-glass', reason: /review required/ },
  { name: 'ok-break-glass-user-not-a-requester', requester: who('boss'), request: ask('web-prod', 600, { breakGlass: true }), outcome: 'approved', rule: 'break-glass' },
  { name: 'fail-break-glass-over-cap', requester: who('sam', 'sre'), request: ask('web-prod', H + 1, { breakGlass: true }), outcome: 'denied', rule: 'duration-exceeds-break-glass-max' },
  { name: 'fail-break-glass-not-listed', requester: who('bob', 'engineering', 'oncall'), request: ask('web-prod', 600, { breakGlass: true }), outcome: 'denied', rule: 'not-break-glass' },
  { name: 'fail-break-glass-needs-reason', requester: who('sam', 'sre'), request: ask('web-prod', 600, { breakGlass: true, reason: 'x' }), outcome: 'denied', rule: 'reason-required' },
  { name: 'ok-window-open-berlin-winter', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: WED_WINTER_10_BERLIN, outcome: 'approved', rule: 'auto_approve[3]', reason: /inside its time window/ },
  // 16:30 UTC in winter is 17:30 in Berlin: closed, although 16:30 would be inside 09-17 in UTC.
  { name: 'fail-window-closed-in-zone-not-utc', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: new Date('2026-01-14T16:30:00Z'), outcome: 'pending', rule: 'approval' },
  // Summer (CEST, UTC+2): 07:30 UTC is 09:30 in Berlin — open; in winter the same UTC time is 08:30 — closed.
  { name: 'ok-window-summer-time', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: new Date('2026-07-15T07:30:00Z'), outcome: 'approved', rule: 'auto_approve[3]' },
  { name: 'fail-window-same-utc-in-winter', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: new Date('2026-01-14T07:30:00Z'), outcome: 'pending', rule: 'approval' },
  // Saturday 10:00 in Berlin: the day is outside the window's days.
  { name: 'fail-window-weekend', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: new Date('2026-01-17T09:00:00Z'), outcome: 'pending', rule: 'approval' },
  // Friday 23:30 UTC is Saturday 08:30 in Berlin: the day is judged in the zone.
  { name: 'fail-window-day-in-zone', requester: who('eve', 'engineering', 'office'), request: ask('web-prod', H), now: new Date('2026-01-16T23:30:00Z'), outcome: 'pending', rule: 'approval' },
  // The night window opens Friday 22:00 Tokyo and runs past midnight into Saturday.
  { name: 'ok-window-across-midnight', requester: who('nightowl', 'engineering'), request: ask('web-prod', H), now: new Date('2026-01-16T16:30:00Z'), outcome: 'approved', rule: 'auto_approve[2]' }, // Sat 01:30 JST
  { name: 'fail-window-after-midnight-of-closed-day', requester: who('nightowl', 'engineering'), request: ask('web-prod', H), now: new Date('2026-01-17T16:30:00Z'), outcome: 'pending', rule: 'approval' }, // Sun 01:30 JST: opened Saturday
  { name: 'fail-window-before-opening', requester: who('nightowl', 'engineering'), request: ask('web-prod', H), now: new Date('2026-01-14T12:00:00Z'), outcome: 'pending', rule: 'approval' }, // Wed 21:00 JST
];

for (const c of cases) {
  test(c.name, () => {
    const d = decide(policy, c.requester, c.request, c.now ?? WED_WINTER_10_BERLIN);
    assert.equal(d.outcome, c.outcome, d.reason);
    assert.equal(d.rule, c.rule, d.reason);
    if (c.reason) assert.match(d.reason, c.reason);
    assert.equal(d.requiredApprovals, c.required ?? (c.outcome === 'pending' ? 1 : 0));
  });
}

test('fail-self-approval: the requester never approves their own request, even as an approver', () => {
  const role = policy.roles.get('web-prod')!;
  assert.equal(canApprove(role, who('carol'), 'carol'), false);
  assert.equal(canApprove(role, who('lead', 'sre-leads'), 'lead'), false);
  assert.equal(canApprove(role, who('lead', 'sre-leads'), 'bob'), true);
  assert.equal(canApprove(role, who('carol'), 'bob'), true);
  assert.equal(canApprove(role, who('bob', 'engineering'), 'ann'), false);
  assert.equal(canApprove(policy.roles.get('auto-only')!, who('anyone', 'ops'), 'x'), false, 'no approval section, no approvers');
});

test('ok-membership: requesters and break-glass by group or user', () => {
  const role = policy.roles.get('web-prod')!;
  assert.equal(canRequest(role, who('contractor')), true);
  assert.equal(canRequest(role, who('x', 'engineering')), true);
  assert.equal(canRequest(role, who('x', 'engineers')), false);
  assert.equal(canBreakGlass(role, who('boss')), true);
  assert.equal(canBreakGlass(role, who('x', 'sre')), true);
  assert.equal(canBreakGlass(policy.roles.get('db-prod')!, who('x', 'sre')), false);
});

test('ok-window edges: start inclusive, end exclusive', () => {
  const w = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, startMinute: 9 * 60, endMinute: 17 * 60, timezone: 'UTC' };
  const at = (hhmm: string) => new Date(`2026-01-14T${hhmm}:00Z`);
  assert.equal(inWindow({ ...w, days: [...w.days] }, at('09:00')), true);
  assert.equal(inWindow({ ...w, days: [...w.days] }, at('08:59')), false);
  assert.equal(inWindow({ ...w, days: [...w.days] }, at('16:59')), true);
  assert.equal(inWindow({ ...w, days: [...w.days] }, at('17:00')), false);
});
