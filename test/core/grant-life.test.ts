// The grant's life as a table: (state, event, policy, now) → the effects in
// order, the refusal, the state after. Every transition and every refusal,
// and final states staying final: a closed request is never decided again, an
// ended grant is never extended, relinquished or ended again.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { needsApproval } from '../../src/core/decide.js';
import { endReport, mayView, transition, type Effect, type GrantState, type LifeEvent, type LifeState, type Outcome, type Person, type RequestFacts, type StepUp } from '../../src/core/grant-life.js';
import { isLive } from '../../src/core/grant.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { parsePolicy } from '../../src/core/policy.js';

const policy = parsePolicy(`
defaults:
  max_duration: 8h
  request_ttl: 1h
roles:
  web-prod:
    principals: [deploy]
    requesters: [group:engineering]
    max_duration: 4h
    approval:
      approvers: [group:sre-leads, user:carol]
      required: 1
    auto_approve:
      - groups: [oncall]
        max_duration: 2h
    break_glass:
      groups: [sre]
      max_duration: 1h
  db-prod:
    principals: [dba]
    requesters: [group:engineering]
    max_duration: 2h
    require_ticket: true
    approval:
      approvers: [group:sre-leads]
      required: 2
      step_up: optional
  solo:
    principals: [ops]
    requesters: [group:engineering]
    break_glass: {groups: [sre], max_duration: 30m}
notifications:
  webhooks:
    - url: http://127.0.0.1:9/hook
`);
/** The same policy with web-prod gone. */
const withoutWebProd = { ...policy, roles: new Map([...policy.roles].filter(([name]) => name !== 'web-prod')) };

const T0 = new Date('2030-01-07T12:00:00.000Z');
const M = 60;
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

const person = (name: string, groups: string[] = [], extra: Partial<Person> = {}): Person => ({ name, groups, isAdmin: false, isAuditor: false, clientAddress: '198.51.100.7', ...extra });
const eng = person('eng', ['engineering']);
const oncall = person('oncall', ['engineering', 'oncall']);
const sre = person('sre', ['sre']);
const carol = person('carol');
const lead1 = person('lead1', ['sre-leads']);
const lead2 = person('lead2', ['sre-leads']);
const outsider = person('mallory', ['marketing']);
const admin = person('root', [], { isAdmin: true });
const auditor = person('audrey', [], { isAuditor: true });

const REQ = 'R1';
const request = (extra: Partial<RequestFacts> = {}): RequestFacts => ({
  id: REQ,
  requester: 'eng',
  role: 'web-prod',
  duration: 3600,
  reason: 'deploy the checkout fix',
  ticket: null,
  breakGlass: false,
  status: 'pending',
  decision: { outcome: 'pending', rule: 'approval', reason: 'needs 1 approval' },
  policyDigest: policy.digest,
  requiredApprovals: 1,
  extendsGrant: null,
  createdAt: at(-10),
  expiresAt: at(50),
  closedAt: null,
  closedBy: null,
  closeReason: null,
  clientAddress: null,
  ...extra,
});
const GRANT = 'G1';
/** A live one-hour grant of web-prod: half an hour gone, half an hour left. */
const grant = (extra: Partial<GrantState> = {}): GrantState => ({
  id: GRANT,
  username: 'oncall',
  role: 'web-prod',
  startsAt: at(-30),
  endsAt: at(30),
  breakGlass: false,
  endedAt: null,
  relinquishedAt: null,
  endedBy: null,
  endReason: null,
  reviewedBy: null,
  reviewedAt: null,
  reviewComment: null,
  ...extra,
});
const ended = grant({ endedAt: at(-5), endedBy: 'root', endReason: 'revoked: lost laptop' });
const ranOut = grant({ startsAt: at(-90), endsAt: at(-30) });
const extension = (extra: Partial<RequestFacts> = {}) => request({ id: 'X1', requester: 'oncall', extendsGrant: GRANT, duration: 30 * M, ...extra });
const approve = (by: Person, extra: { id?: string; comment?: unknown; stepUp?: StepUp | undefined } = {}): LifeEvent => ({ kind: 'approve', id: REQ, by, comment: 'ok', stepUp: { method: 'totp', at: T0.toISOString(), purpose: 'request.approve', target: REQ }, ...extra });
const deny = (by: Person, comment: unknown = 'not now'): LifeEvent => ({ kind: 'deny', id: REQ, by, comment });
const ask = (by: Person, input: Record<string, unknown>): LifeEvent => ({ kind: 'create', id: 'N1', by, input: { reason: 'deploy the checkout fix', ...input } });
const extend = (by: Person, input: Record<string, unknown>): LifeEvent => ({ kind: 'extend', id: 'X2', grantId: GRANT, by, input: { reason: 'the migration is slow', ...input } });
const account = (name: string, groups: string[], enabled = true) => ({ name, groups, enabled });

interface Row {
  name: string;
  state?: Partial<LifeState>;
  event: LifeEvent;
  policy?: typeof policy;
  now?: Date;
  /** Effect kinds in order. */
  effects: Effect['kind'][];
  refusal?: [ErrorCode, RegExp];
  then?: (o: Outcome) => void;
}

const find = <K extends Effect['kind']>(o: Outcome, kind: K, n = 0) => o.effects.filter((e): e is Extract<Effect, { kind: K }> => e.kind === kind)[n]!;
const audits = (o: Outcome) => o.effects.flatMap((e) => (e.kind === 'audit' ? [e.event.action] : []));
const notices = (o: Outcome) => o.effects.flatMap((e) => (e.kind === 'notify' ? [e.notice.event] : []));

function run(row: Row): Outcome {
  return transition({ approvals: [], ...row.state }, row.event, row.policy ?? policy, row.now ?? T0);
}

function table(title: string, rows: Row[]) {
  describe(title, () => {
    for (const row of rows) {
      test(row.name, () => {
        const o = run(row);
        assert.deepEqual(o.effects.map((e) => e.kind), row.effects);
        if (row.refusal) {
          assert.equal(o.refusal?.code, row.refusal[0], JSON.stringify(o.refusal));
          assert.match(o.refusal!.message, row.refusal[1]);
        } else {
          assert.equal(o.refusal, undefined, JSON.stringify(o.refusal));
        }
        row.then?.(o);
      });
    }
  });
}

table('create', [
  {
    name: 'auto-approved by core/decide.ts: filed approved, the grant starts now',
    event: ask(oncall, { role: 'web-prod', duration: '1h' }),
    effects: ['file-request', 'create-grant', 'audit', 'notify'],
    then: (o) => {
      assert.equal(o.state.request?.status, 'approved');
      assert.equal(o.state.request?.decision.rule, 'auto_approve[0]');
      assert.equal(o.state.request?.closedBy, 'policy');
      assert.deepEqual([o.state.grant?.startsAt, o.state.grant?.endsAt], [T0, at(60)]);
      assert.deepEqual(audits(o), ['request.create']);
      assert.equal(find(o, 'audit').event.details['rule'], 'auto_approve[0]');
      assert.deepEqual(notices(o), ['request.approved']);
    },
  },
  {
    name: 'pending: the approvers hear of it',
    event: ask(eng, { role: 'web-prod', duration: '1h' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => {
      assert.equal(o.state.request?.status, 'pending');
      assert.equal(o.state.request?.closedAt, null);
      assert.deepEqual(o.state.request?.expiresAt, at(60));
      assert.equal(o.state.grant, undefined);
      const n = find(o, 'notify').notice;
      assert.equal(n.event, 'request.created');
      assert.deepEqual(n.notify, ['group:sre-leads', 'user:carol']);
    },
  },
  {
    name: 'denied by policy: filed closed, no grant',
    event: ask(eng, { role: 'web-prod', duration: '5h' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => {
      assert.equal(o.state.request?.status, 'denied');
      assert.equal(o.state.request?.decision.rule, 'duration-exceeds-max');
      assert.deepEqual(notices(o), ['request.denied']);
    },
  },
  {
    name: 'an unknown role is filed and denied',
    event: ask(eng, { role: 'nope' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => assert.deepEqual([o.state.request?.status, o.state.request?.decision.rule], ['denied', 'unknown-role']),
  },
  {
    name: 'no approval path: denied',
    event: ask(eng, { role: 'solo' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => assert.equal(o.state.request?.decision.rule, 'no-approval-path'),
  },
  {
    name: 'break-glass: granted at once, approvers and the break-glass groups told',
    event: ask(sre, { role: 'web-prod', duration: '45m', break_glass: true }),
    effects: ['file-request', 'create-grant', 'audit', 'notify'],
    then: (o) => {
      assert.equal(o.state.grant?.breakGlass, true);
      const n = find(o, 'notify').notice;
      assert.equal(n.event, 'request.break_glass');
      assert.deepEqual(n.notify, ['group:sre-leads', 'user:carol', 'group:sre']);
    },
  },
  {
    name: 'break-glass by someone not on the list: denied',
    event: ask(eng, { role: 'web-prod', break_glass: true }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => assert.equal(o.state.request?.decision.rule, 'not-break-glass'),
  },
  { name: 'refused: no reason', event: { kind: 'create', id: 'N1', by: eng, input: { role: 'web-prod' } }, effects: [], refusal: ['invalid_input', /reason is required/] },
  { name: 'refused: a duration that is no duration', event: ask(eng, { role: 'web-prod', duration: 'soon' }), effects: [], refusal: ['invalid_input', /duration must be like/] },
  { name: 'refused: no role', event: ask(eng, {}), effects: [], refusal: ['invalid_input', /role is required/] },
]);

table('extend', [
  {
    name: 'auto-approved within the rule: the grant ends later',
    state: { grant: grant() },
    event: extend(oncall, { duration: '30m' }),
    effects: ['file-request', 'extend-grant', 'audit', 'notify'],
    then: (o) => {
      assert.deepEqual(o.state.grant?.endsAt, at(60));
      assert.equal(o.state.request?.extendsGrant, GRANT);
      assert.equal(o.state.request?.duration, 30 * M);
      assert.deepEqual(audits(o), ['request.extend']);
      assert.deepEqual(notices(o), ['request.extended']);
    },
  },
  {
    name: 'judged against the whole window: past the auto-approve cap it waits for an approver',
    state: { grant: grant() },
    event: extend(oncall, { duration: '1h30m' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => {
      assert.equal(o.state.request?.status, 'pending');
      assert.deepEqual(o.state.grant?.endsAt, at(30));
    },
  },
  {
    name: 'judged against the whole window: past the role maximum it is denied',
    state: { grant: grant() },
    event: extend(oncall, { duration: '3h30m' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => assert.deepEqual([o.state.request?.status, o.state.request?.decision.rule], ['denied', 'duration-exceeds-max']),
  },
  {
    name: 'break-glass stays break-glass, within its cap (30m + 30m ≤ 1h)',
    state: { grant: grant({ username: 'sre', breakGlass: true, startsAt: at(-15), endsAt: at(15) }) },
    event: extend(sre, { duration: '30m' }),
    effects: ['file-request', 'extend-grant', 'audit', 'notify'],
    then: (o) => assert.equal(o.state.request?.decision.rule, 'break-glass'),
  },
  {
    name: 'break-glass past its cap (30m + 31m): denied',
    state: { grant: grant({ username: 'sre', breakGlass: true, startsAt: at(-15), endsAt: at(15) }) },
    event: extend(sre, { duration: '31m' }),
    effects: ['file-request', 'audit', 'notify'],
    then: (o) => assert.equal(o.state.request?.decision.rule, 'duration-exceeds-break-glass-max'),
  },
  { name: 'refused: someone else’s grant', state: { grant: grant() }, event: extend(eng, { duration: '30m' }), effects: [], refusal: ['not_found', /no grant G1 of yours/] },
  { name: 'refused: no such grant', event: extend(oncall, { duration: '30m' }), effects: [], refusal: ['not_found', /no grant G1 of yours/] },
  { name: 'final: an ended grant is not extended', state: { grant: ended }, event: extend(oncall, { duration: '30m' }), effects: [], refusal: ['conflict', /has ended; file a new request/] },
  { name: 'final: a grant that ran out is not extended', state: { grant: ranOut }, event: extend(oncall, { duration: '30m' }), effects: [], refusal: ['conflict', /has ended/] },
  { name: 'refused: bad input, after the grant is found live', state: { grant: grant() }, event: extend(oncall, { duration: 'x' }), effects: [], refusal: ['invalid_input', /duration/] },
]);

const engAccount = account('eng', ['engineering']);
const pendingState = { request: request(), account: engAccount };
table('approve and deny', [
  {
    name: 'approved with a fresh code: the grant starts now, the requester told',
    state: pendingState,
    event: approve(lead1),
    effects: ['record-decision', 'audit', 'create-grant', 'close-request', 'audit', 'notify'],
    then: (o) => {
      assert.deepEqual(audits(o), ['request.approve', 'request.approved']);
      assert.deepEqual(find(o, 'audit').event.details, { comment: 'ok', step_up: { method: 'totp', at: T0.toISOString() } });
      assert.deepEqual(find(o, 'audit', 1).event.details, { approvals: 1 });
      assert.deepEqual([o.state.request?.status, o.state.request?.closedBy, o.state.request?.closeReason], ['approved', 'lead1', 'approved by lead1']);
      assert.deepEqual([o.state.grant?.id, o.state.grant?.username, o.state.grant?.startsAt, o.state.grant?.endsAt], [REQ, 'eng', T0, at(60)]);
      assert.deepEqual(find(o, 'notify').notice.notify, ['user:eng']);
    },
  },
  { name: 'step-up required by default', state: pendingState, event: approve(lead1, { stepUp: undefined }), effects: [], refusal: ['step_up_required', /fresh code/] },
  {
    name: 'step-up optional in policy: accepted without',
    state: { request: request({ role: 'db-prod', requiredApprovals: 2 }), account: engAccount },
    event: approve(lead1, { stepUp: undefined }),
    effects: ['record-decision', 'audit'],
    then: (o) => {
      assert.equal(o.state.request?.status, 'pending');
      assert.equal(o.state.approvals.length, 1);
      assert.deepEqual(find(o, 'audit').event.details, { comment: 'ok' });
    },
  },
  {
    name: 'the second of two approvals grants',
    state: { request: request({ role: 'db-prod', requiredApprovals: 2 }), approvals: [{ approver: 'lead1', decision: 'approve', comment: null, at: at(-1), clientAddress: null }], account: engAccount },
    event: approve(lead2, { stepUp: undefined }),
    effects: ['record-decision', 'audit', 'create-grant', 'close-request', 'audit', 'notify'],
    then: (o) => assert.deepEqual(find(o, 'audit', 1).event.details, { approvals: 2 }),
  },
  {
    name: 'refused: the same approver twice',
    state: { request: request({ role: 'db-prod', requiredApprovals: 2 }), approvals: [{ approver: 'lead1', decision: 'approve', comment: null, at: at(-1), clientAddress: null }] },
    event: approve(lead1, { stepUp: undefined }),
    effects: [],
    refusal: ['conflict', /you have already decided request R1/],
  },
  { name: 'refused: a code given for another request', state: pendingState, event: approve(lead1, { stepUp: { method: 'totp', at: '', purpose: 'request.approve', target: 'R2' } }), effects: [], refusal: ['forbidden', /another action/] },
  { name: 'refused: a code given for a denial', state: pendingState, event: approve(lead1, { stepUp: { method: 'totp', at: '', purpose: 'request.deny', target: REQ } }), effects: [], refusal: ['forbidden', /another action/] },
  { name: 'refused: one’s own request', state: pendingState, event: approve(eng), effects: [], refusal: ['forbidden', /your own request/] },
  { name: 'refused: an auditor sees it but may not decide it', state: pendingState, event: approve(auditor), effects: [], refusal: ['forbidden', /you may not decide requests for web-prod/] },
  { name: 'refused: the role is gone from the policy', state: pendingState, event: approve(admin), policy: withoutWebProd, effects: [], refusal: ['forbidden', /you may not decide/] },
  { name: 'refused: not visible to the caller', state: pendingState, event: approve(outsider), effects: [], refusal: ['not_found', /no request R1/] },
  { name: 'refused: no such request', event: approve(lead1), effects: [], refusal: ['not_found', /no request R1/] },
  { name: 'refused: a comment that is not text, before anything else', event: approve(lead1, { comment: 42 }), effects: [], refusal: ['invalid_input', /comment must be text/] },
  {
    name: 'refused after it is written: past its time to live, it is marked expired',
    state: { request: request({ expiresAt: T0 }) },
    event: approve(lead1),
    effects: ['close-request', 'audit', 'notify'],
    refusal: ['conflict', /request R1 has expired/],
    then: (o) => {
      assert.equal(o.state.request?.status, 'expired');
      assert.deepEqual(audits(o), ['request.expire']);
      assert.deepEqual(notices(o), ['request.expired']);
    },
  },
  ...(['disabled', 'gone', 'out of the group'] as const).map(
    (how): Row => ({
      name: `refused after it is written: the requester no longer eligible (${how}), the request denied`,
      state: { request: request(), ...(how === 'gone' ? {} : { account: how === 'disabled' ? account('eng', ['engineering'], false) : account('eng', ['marketing']) }) },
      event: approve(lead1),
      effects: ['record-decision', 'audit', 'close-request', 'audit'],
      refusal: ['conflict', /eng no longer may request web-prod; the request was denied/],
      then: (o) => {
        assert.deepEqual([o.state.request?.status, o.state.request?.closedBy], ['denied', 'policy']);
        assert.deepEqual(audits(o), ['request.approve', 'request.deny']);
        assert.equal(find(o, 'audit', 1).event.actor, 'jit-ssh');
      },
    }),
  ),
  {
    name: 'denied with a comment',
    state: pendingState,
    event: deny(lead1),
    effects: ['record-decision', 'audit', 'close-request', 'notify'],
    then: (o) => {
      assert.deepEqual([o.state.request?.status, o.state.request?.closedBy, o.state.request?.closeReason], ['denied', 'lead1', 'not now']);
      assert.deepEqual(notices(o), ['request.denied']);
    },
  },
  { name: 'denied without a comment, and without a code', state: pendingState, event: deny(carol, null), effects: ['record-decision', 'audit', 'close-request', 'notify'], then: (o) => assert.equal(o.state.request?.closeReason, 'denied by carol') },
]);

const extensionState = (g: GrantState | undefined) => ({ request: extension(), ...(g ? { grant: g } : {}), account: account('oncall', ['engineering', 'oncall']) });
const approveExt = approve(lead1, { id: 'X1', stepUp: { method: 'totp', at: '', purpose: 'request.approve', target: 'X1' } });
table('approving an extension, judged again against the grant as it is now', [
  {
    name: 'it fits: the grant ends later',
    state: extensionState(grant()),
    event: approveExt,
    effects: ['record-decision', 'audit', 'extend-grant', 'close-request', 'audit', 'notify'],
    then: (o) => {
      assert.deepEqual(o.state.grant?.endsAt, at(60));
      assert.deepEqual(notices(o), ['request.extended']);
    },
  },
  {
    name: 'the grant grew meanwhile past the role maximum: denied',
    state: extensionState(grant({ endsAt: at(200) })),
    event: approveExt,
    effects: ['record-decision', 'audit', 'close-request', 'audit', 'notify'],
    refusal: ['conflict', /request X1 was denied: the grant would last 4h20m in all, more than the 4h web-prod allows/],
    then: (o) => {
      assert.deepEqual(o.state.grant?.endsAt, at(200));
      assert.deepEqual(audits(o), ['request.approve', 'request.deny']);
      assert.deepEqual(notices(o), ['request.denied']);
    },
  },
  { name: 'the grant ended meanwhile: denied', state: extensionState(ended), event: approveExt, effects: ['record-decision', 'audit', 'close-request', 'audit', 'notify'], refusal: ['conflict', /was denied: the grant has ended; file a new request/] },
  { name: 'the grant is not there: denied', state: extensionState(undefined), event: approveExt, effects: ['record-decision', 'audit', 'close-request', 'audit', 'notify'], refusal: ['conflict', /the grant has ended/] },
]);

table('cancel and expire', [
  {
    name: 'cancelled by its requester: the approvers told',
    state: pendingState,
    event: { kind: 'cancel', id: REQ, by: eng },
    effects: ['close-request', 'audit', 'notify'],
    then: (o) => {
      assert.deepEqual([o.state.request?.status, o.state.request?.closeReason], ['cancelled', 'cancelled by the requester']);
      assert.deepEqual(find(o, 'notify').notice.notify, ['group:sre-leads', 'user:carol']);
    },
  },
  { name: 'refused: cancelled by an approver', state: pendingState, event: { kind: 'cancel', id: REQ, by: lead1 }, effects: [], refusal: ['forbidden', /only the requester/] },
  { name: 'refused: not visible', state: pendingState, event: { kind: 'cancel', id: REQ, by: outsider }, effects: [], refusal: ['not_found', /no request R1/] },
  { name: 'refused after it is written: past its time to live', state: { request: request({ expiresAt: at(-1) }) }, event: { kind: 'cancel', id: REQ, by: eng }, effects: ['close-request', 'audit', 'notify'], refusal: ['conflict', /has expired/] },
  { name: 'expired past its time to live', state: { request: request({ expiresAt: T0 }) }, event: { kind: 'expire' }, effects: ['close-request', 'audit', 'notify'], then: (o) => assert.deepEqual([o.state.request?.status, o.state.request?.closedBy], ['expired', null]) },
  { name: 'not expired before its time', state: pendingState, event: { kind: 'expire' }, effects: [] },
  { name: 'final: a closed request does not expire', state: { request: request({ status: 'approved', expiresAt: at(-1) }) }, event: { kind: 'expire' }, effects: [] },
]);

describe('final: a closed request is never decided or cancelled again', () => {
  for (const status of ['approved', 'denied', 'cancelled', 'expired'] as const) {
    for (const event of [approve(lead1), deny(lead1), { kind: 'cancel', id: REQ, by: eng } as LifeEvent]) {
      test(`${event.kind} of a request ${status}`, () => {
        // Past its time to live too: only a pending request expires.
        const o = transition({ request: request({ status, expiresAt: at(-1) }), approvals: [] }, event, policy, T0);
        assert.deepEqual(o.effects, []);
        assert.deepEqual(o.refusal, { code: 'conflict', message: `request R1 is already ${status}` });
      });
    }
  }
});

const breakGlass = grant({ username: 'sre', breakGlass: true });
const review = (by: Person, comment: unknown = 'checked the outage log'): LifeEvent => ({ kind: 'review', grantId: GRANT, by, comment });
table('the grant: relinquish, review, end, recheck', [
  {
    name: 'relinquished by its holder: ended now, its certificates to revoke',
    state: { grant: grant() },
    event: { kind: 'relinquish', grantId: GRANT, by: oncall },
    effects: ['end-grant'],
    then: (o) => {
      assert.deepEqual(find(o, 'end-grant').end, { actor: 'oncall', reason: 'relinquished by oncall', clientAddress: oncall.clientAddress, relinquished: true, cause: 'relinquish' });
      assert.deepEqual([o.state.grant?.endedAt, o.state.grant?.relinquishedAt, o.state.grant?.endedBy], [T0, T0, 'oncall']);
      assert.equal(isLive(o.state.grant!, T0), false);
    },
  },
  { name: 'refused: someone else relinquishes it', state: { grant: grant() }, event: { kind: 'relinquish', grantId: GRANT, by: eng }, effects: [], refusal: ['not_found', /no grant G1 of yours/] },
  { name: 'refused: no such grant', event: { kind: 'relinquish', grantId: GRANT, by: oncall }, effects: [], refusal: ['not_found', /no grant G1 of yours/] },
  { name: 'final: an ended grant is not relinquished', state: { grant: ended }, event: { kind: 'relinquish', grantId: GRANT, by: oncall }, effects: [], refusal: ['conflict', /grant G1 has already ended/] },
  { name: 'final: a grant that ran out is not relinquished', state: { grant: ranOut }, event: { kind: 'relinquish', grantId: GRANT, by: oncall }, effects: [], refusal: ['conflict', /has already ended/] },
  {
    name: 'a break-glass grant reviewed by an approver',
    state: { grant: breakGlass },
    event: review(carol),
    effects: ['review-grant', 'audit'],
    then: (o) => {
      assert.deepEqual([o.state.grant?.reviewedBy, o.state.grant?.reviewedAt, o.state.grant?.reviewComment], ['carol', T0, 'checked the outage log']);
      assert.deepEqual(audits(o), ['grant.review']);
    },
  },
  { name: 'a break-glass grant reviewed by an admin', state: { grant: breakGlass }, event: review(admin, null), effects: ['review-grant', 'audit'] },
  { name: 'reviewed after it ended, too', state: { grant: { ...breakGlass, endedAt: at(-1) } }, event: review(carol), effects: ['review-grant', 'audit'] },
  { name: 'refused: not a break-glass grant', state: { grant: grant() }, event: review(carol), effects: [], refusal: ['not_found', /no break-glass grant G1/] },
  { name: 'refused: no such grant', event: review(carol), effects: [], refusal: ['not_found', /no break-glass grant G1/] },
  { name: 'refused: its holder reviews it', state: { grant: breakGlass }, event: review(person('sre', ['sre', 'sre-leads'])), effects: [], refusal: ['forbidden', /someone other than the holder/] },
  { name: 'refused: neither approver nor admin', state: { grant: breakGlass }, event: review(eng), effects: [], refusal: ['forbidden', /you may not review grants for web-prod/] },
  { name: 'refused: reviewed once only', state: { grant: { ...breakGlass, reviewedBy: 'lead1', reviewedAt: at(-1) } }, event: review(carol), effects: [], refusal: ['conflict', /already reviewed by lead1/] },
  { name: 'refused: a comment that is not text', state: { grant: breakGlass }, event: review(carol, { x: 1 }), effects: [], refusal: ['invalid_input', /comment/] },
  {
    name: 'ended (revoked): ended now',
    state: { grant: grant() },
    event: { kind: 'end', end: { actor: 'os:root', reason: 'revoked: lost laptop', revocationReason: 'lost laptop', cause: 'revoke' } },
    effects: ['end-grant'],
    then: (o) => assert.deepEqual([o.state.grant?.endedAt, o.state.grant?.endedBy, o.state.grant?.relinquishedAt], [T0, 'os:root', null]),
  },
  { name: 'final: an ended grant is not ended again', state: { grant: ended }, event: { kind: 'end', end: { actor: 'os:root', reason: 'again', cause: 'revoke' } }, effects: [] },
  { name: 'final: a grant that ran out is not ended', state: { grant: ranOut }, event: { kind: 'end', end: { actor: 'os:root', reason: 'late', cause: 'revoke' } }, effects: [] },
  { name: 'recheck: a holder still eligible keeps it', state: { grant: grant(), account: account('oncall', ['engineering']) }, event: { kind: 'recheck' }, effects: [] },
  ...([
    ['disabled', account('oncall', ['engineering'], false), /^oncall is disabled \(policy [0-9a-f]{12}\)$/],
    ['gone', undefined, /^the user no longer exists/],
    ['out of the requesters', account('oncall', ['marketing']), /^oncall no longer may request web-prod/],
  ] as const).map(
    ([how, who, reason]): Row => ({
      name: `recheck: a holder ${how} loses it`,
      state: { grant: grant(), ...(who ? { account: who } : {}) },
      event: { kind: 'recheck' },
      effects: ['end-grant'],
      then: (o) => {
        const e = find(o, 'end-grant').end;
        assert.equal(e.actor, 'jit-ssh');
        assert.equal(e.cause, 'ineligible');
        assert.match(e.reason, reason);
      },
    }),
  ),
  { name: 'recheck: the role gone from the policy ends it', state: { grant: grant(), account: account('oncall', ['engineering']) }, event: { kind: 'recheck' }, policy: withoutWebProd, effects: ['end-grant'] },
  { name: 'recheck: break-glass answers to the break-glass list', state: { grant: breakGlass, account: account('sre', ['engineering']) }, event: { kind: 'recheck' }, effects: ['end-grant'] },
  { name: 'final: recheck of an ended grant', state: { grant: ended }, event: { kind: 'recheck' }, effects: [] },
]);

describe('lives end to end through the outcome state', () => {
  const step = (s: LifeState, e: LifeEvent, now = T0) => transition(s, e, policy, now);

  test('filed, approved, extended, relinquished: nothing after the end', () => {
    const filed = step({ approvals: [] }, ask(eng, { role: 'web-prod', duration: '1h' }));
    const r = filed.state.request!;
    const approved = step({ ...filed.state, account: account('eng', ['engineering']) }, approve(lead1, { id: r.id, stepUp: { method: 'totp', at: '', purpose: 'request.approve', target: r.id } }));
    assert.equal(approved.state.request?.status, 'approved');
    const again = step(approved.state, approve(lead2, { id: r.id, stepUp: { method: 'totp', at: '', purpose: 'request.approve', target: r.id } }));
    assert.deepEqual(again.refusal, { code: 'conflict', message: `request ${r.id} is already approved` });
    const ext = step({ approvals: [], grant: approved.state.grant! }, extend(eng, { duration: '30m' }));
    assert.equal(ext.state.request?.status, 'pending');
    const gone = step({ approvals: [], grant: approved.state.grant! }, { kind: 'relinquish', grantId: r.id, by: eng }, at(10));
    assert.equal(gone.refusal, undefined);
    const g = gone.state.grant!;
    assert.equal(step({ approvals: [], grant: g }, { kind: 'relinquish', grantId: r.id, by: eng }, at(11)).refusal?.code, 'conflict');
    assert.equal(step({ approvals: [], grant: g }, extend(eng, { duration: '30m' }), at(11)).refusal?.code, 'conflict');
    assert.deepEqual(step({ approvals: [], grant: g }, { kind: 'end', end: { actor: 'os:root', reason: 'x', cause: 'revoke' } }, at(11)).effects, []);
    // The extension filed before the end is denied at approval: the grant has ended.
    const late = step({ request: ext.state.request!, approvals: [], grant: g, account: account('eng', ['engineering']) }, approve(lead1, { id: 'X2', stepUp: { method: 'totp', at: '', purpose: 'request.approve', target: 'X2' } }), at(11));
    assert.match(late.refusal?.message ?? '', /the grant has ended/);
  });

  test('a grant runs out by the clock alone', () => {
    const g = step({ approvals: [] }, ask(oncall, { role: 'web-prod', duration: '1h' })).state.grant!;
    assert.equal(isLive(g, at(59)), true);
    assert.equal(isLive(g, at(60)), false);
  });
});

describe('what an end reports, and who sees what', () => {
  test('the end, its revocations and the extensions it closed, in that order', () => {
    const events = endReport({ id: GRANT, username: 'oncall', role: 'web-prod' }, { actor: 'os:root', reason: 'revoked: lost laptop', revocationReason: 'lost laptop', cause: 'revoke', clientAddress: null }, ['7', '9'], ['X1']);
    assert.deepEqual(
      events.map((e) => [e.action, e.target, e.actor]),
      [['grant.end', GRANT, 'os:root'], ['certificate.revoke', GRANT, 'os:root'], ['request.cancel', 'X1', 'jit-ssh']],
    );
    assert.deepEqual(events[0]!.details, { cause: 'revoke', reason: 'revoked: lost laptop', holder: 'oncall', role: 'web-prod', revoked: ['7', '9'], closed_extensions: ['X1'] });
    assert.deepEqual(events[1]!.details, { reason: 'lost laptop', serials: ['7', '9'], grant: GRANT });
  });

  test('a relinquishment with nothing to revoke is one event, its reason the default', () => {
    const events = endReport({ id: GRANT, username: 'oncall', role: 'web-prod' }, { actor: 'oncall', reason: 'relinquished by oncall', relinquished: true, cause: 'relinquish' }, [], []);
    assert.deepEqual(events.map((e) => e.action), ['grant.relinquish']);
    assert.deepEqual(events[0]!.details, { cause: 'relinquish', reason: 'relinquished by oncall', holder: 'oncall', role: 'web-prod', revoked: [] });
  });

  test('requests are seen by their requester, their approvers, admins and auditors', () => {
    const r = { requester: 'eng', role: 'web-prod' };
    assert.deepEqual([eng, carol, lead1, admin, auditor, outsider, oncall].map((p) => mayView(policy, p, r)), [true, true, true, true, true, false, false]);
  });

  test('needs approval: unless an auto-approve rule covers the requester', () => {
    const role = policy.roles.get('web-prod')!;
    assert.deepEqual([needsApproval(role, oncall), needsApproval(role, eng)], [false, true]);
  });
});

/** The same roles, with passkeys asked for approvals, and web-prod taking requests only from passkey sessions. */
const passkeyPolicy = (() => {
  const roles = new Map([...policy.roles].map(([n, r]) => [n, n === 'web-prod' ? { ...r, requireMfa: 'webauthn' as const } : r]));
  return { ...policy, roles, mfa: { login: 'totp' as const, approval: 'webauthn' as const } };
})();
const passkeyProof = (target = REQ): StepUp => ({ method: 'webauthn', credential: 'cred-1', at: T0.toISOString(), purpose: 'request.approve', target });
const withPasskey = (p: Person): Person => ({ ...p, auth: { method: 'password+totp', webauthn: 'cred-9' } });

table('passkeys in policy (mfa, require_mfa)', [
  { name: 'refused: mfa.approval webauthn, and the step-up was a code', state: pendingState, event: approve(lead1), policy: passkeyPolicy, effects: [], refusal: ['mfa_required', /passkey .*an authenticator code is not enough/] },
  { name: 'refused: mfa.approval webauthn, and no step-up at all: the message names the passkey', state: pendingState, event: approve(lead1, { stepUp: undefined }), policy: passkeyPolicy, effects: [], refusal: ['step_up_required', /needs your passkey/] },
  {
    name: 'approved: mfa.approval webauthn with a passkey step-up; the audit names the credential',
    state: pendingState,
    event: approve(lead1, { stepUp: passkeyProof() }),
    policy: passkeyPolicy,
    effects: ['record-decision', 'audit', 'create-grant', 'close-request', 'audit', 'notify'],
    then: (o) => assert.deepEqual(find(o, 'audit').event.details, { comment: 'ok', step_up: { method: 'webauthn', at: T0.toISOString(), credential: 'cred-1' } }),
  },
  { name: 'refused: a passkey step-up for another request', state: pendingState, event: approve(lead1, { stepUp: passkeyProof('R2') }), policy: passkeyPolicy, effects: [], refusal: ['forbidden', /another action/] },
  { name: 'approved: under the default policy a code is enough', state: pendingState, event: approve(lead1), effects: ['record-decision', 'audit', 'create-grant', 'close-request', 'audit', 'notify'] },
  { name: 'refused: require_mfa webauthn, a session without a passkey', event: ask(oncall, { role: 'web-prod', duration: '1h' }), policy: passkeyPolicy, effects: [], refusal: ['mfa_required', /session opened with a passkey/] },
  { name: 'refused: require_mfa webauthn holds for break-glass too', event: ask(sre, { role: 'web-prod', duration: '30m', break_glass: true }), policy: passkeyPolicy, effects: [], refusal: ['mfa_required', /passkey/] },
  { name: 'filed: require_mfa webauthn, a session opened with a passkey', event: ask(withPasskey(oncall), { role: 'web-prod', duration: '1h' }), policy: passkeyPolicy, effects: ['file-request', 'create-grant', 'audit', 'notify'] },
  { name: 'filed: a role without require_mfa takes any session', event: ask(eng, { role: 'db-prod', duration: '1h', ticket: 'OPS-1' }), policy: passkeyPolicy, effects: ['file-request', 'audit', 'notify'] },
  { name: 'refused: extending a require_mfa role without a passkey session', state: { grant: grant() }, event: extend(oncall, { duration: '30m' }), policy: passkeyPolicy, effects: [], refusal: ['mfa_required', /passkey/] },
]);
