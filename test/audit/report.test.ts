// The access review report over a week of history made by the real workflow
// (HTTP app, policy, approvals, certificates, sshd log ingestion, revocation),
// with records on both sides of the period that must not be counted.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { csvCell } from '../../src/audit/csv.js';
import { buildAccessReport, CSV_COLUMNS, LONGEST_GRANTS, MAX_LIST_ROWS, renderAccessReport, STANDING_ACCESS_MIN_DAYS, type AccessReport } from '../../src/audit/report.js';
import { ingestSshdLog } from '../../src/audit/usage.js';
import { DomainError } from '../../src/core/errors.js';
import { appendEvent } from '../../src/db/audit-events.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');
const SINCE = new Date('2026-11-23T00:00:00.000Z');
const UNTIL = new Date('2026-11-30T00:00:00.000Z');
const HOUR = 3600;
const FORMULA_REASON = '=HYPERLINK("http://evil.example","fix, deploy")';

test('ok: csv cells quote per RFC 4180 and defuse formulas', () => {
  const cases: Array<[string | number | null, string]> = [
    ['plain', 'plain'],
    [null, ''],
    [42, '42'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    ['=a,b', `"'=a,b"`],
    ['a=b', 'a=b'],
  ];
  for (const [input, want] of cases) assert.equal(csvCell(input), want, JSON.stringify(input));
});

for (const backend of BACKENDS) {
  describe(`access review report (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let report: AccessReport;
    const as: Record<string, Awaited<ReturnType<typeof id.as>>> = {};
    const g: Record<string, string> = {};
    const serial: Record<string, string> = {};

    const at = (day: number, hour: number) => {
      clock.ms = SINCE.getTime() + (day - 1) * 86_400_000 + hour * 3_600_000;
    };
    const call = async (who: string, path: string, body: unknown, status: number) => {
      const r = await as[who]!('POST', path, body);
      assert.equal(r.status, status, `${who} ${path}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const ask = (who: string, body: Record<string, unknown>) => call(who, '/v1/requests', body, 201);
    const cert = async (who: string, grant: string) => (await call(who, '/v1/certificates', { public_key: laptop.publicLine, request_id: grant }, 201)).serial as string;
    /** A synthetic sshd line for the certificate, ingested as the log pipeline would. */
    const used = async (s: string, when: Date) => {
      const line = `${when.toISOString()} web1 sshd[4242]: Accepted publickey for deploy from 10.0.0.5 port 50576 ssh2: ED25519-CERT SHA256:AAAA ID x@jit-ssh req=r serial=${s} (serial ${s}) CA ED25519 SHA256:BBBB`;
      assert.equal((await ingestSshdLog(t.db, `${line}\n`, { host: 'web1', now: clock.now() })).matched, 1);
    };
    const reload = (details: Record<string, unknown>, outcome: 'ok' | 'refused' = 'ok') =>
      appendEvent(t.db, { at: clock.now(), actor: 'os:root', action: 'policy.reload', target: '/etc/jit-ssh/policy.yaml', outcome, clientAddress: null, details });

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      const people = { oncall: ['engineering', 'oncall'], eng: ['engineering'], carol: [], sre: ['sre'], lead1: ['sre-leads'], lead2: ['sre-leads'] };
      for (const [name, groups] of Object.entries(people)) as[name] = await id.as(await id.addUser(name, groups));

      // The day before the period: none of this may be counted.
      clock.ms = Date.parse('2026-11-22T12:30:00Z');
      g['before'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: 'deploy before the period' })).id;
      serial['before'] = await cert('oncall', g['before']!);
      await used(serial['before']!, clock.now());
      await id.revocation.revoke({ serial: serial['before'] }, 'rotated before the period', 'os:admin');
      g['bg0'] = (await ask('sre', { role: 'web-prod', duration: '30m', reason: 'outage before the period', break_glass: true })).id;
      await reload({ ok: true, changed: true, digest: 'digest-0', roles: 2 });

      // Day 1, starting exactly at `since`.
      at(1, 0);
      g['g1'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: 'routine deploy day 1' })).id;
      serial['g1a'] = await cert('oncall', g['g1']!);
      serial['g1b'] = await cert('oncall', g['g1']!); // a second certificate, never used: the grant still was
      await used(serial['g1a']!, new Date(clock.ms + 600_000));
      at(1, 9);
      g['appr'] = (await ask('eng', { role: 'web-prod', duration: '3h', reason: 'migrate the session store' })).id;
      await call('carol', `/v1/requests/${g['appr']}/approve`, {}, 200);
      serial['appr'] = await cert('eng', g['appr']!);
      clock.advance(600);
      const ext = await call('eng', `/v1/requests/${g['appr']}/extend`, { duration: '1h', reason: 'the migration runs long' }, 201);
      assert.equal(ext.status, 'pending');
      await call('carol', `/v1/requests/${ext.id}/approve`, { comment: 'fine' }, 200);
      // Past the role's 4h cap counting what is left: denied, adds nothing.
      assert.equal((await call('eng', `/v1/requests/${g['appr']}/extend`, { duration: '30m', reason: 'and a little longer' }, 201)).status, 'denied');
      g['bg1'] = (await ask('sre', { role: 'web-prod', duration: '30m', reason: 'site down, pager fired', break_glass: true })).id;
      serial['bg1'] = await cert('sre', g['bg1']!);
      await used(serial['bg1']!, clock.now());
      await call('carol', `/v1/requests/${g['bg1']}/acknowledge`, { comment: 'postmortem PM-7 reviewed' }, 200);

      // Day 2.
      at(2, 9);
      g['g2'] = (await ask('oncall', { role: 'web-prod', duration: '2h', reason: 'rotate the web certificates' })).id;
      clock.advance(60);
      const cancelled = await ask('eng', { role: 'web-prod', duration: '1h', reason: 'look at the cache hit rate' });
      await call('eng', `/v1/requests/${cancelled.id}/cancel`, {}, 200);
      clock.advance(60);
      g['bg2'] = (await ask('sre', { role: 'web-prod', duration: '45m', reason: 'database failover, paged', break_glass: true })).id;
      serial['bg2'] = await cert('sre', g['bg2']!);
      await used(serial['bg2']!, clock.now());
      clock.advance(600);
      await id.revocation.revoke({ serial: serial['bg2'] }, 'laptop stolen', 'os:admin');
      await reload({ ok: true, changed: true, digest: 'digest-1', roles: 2 });

      // Day 3.
      at(3, 9);
      g['g3'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: FORMULA_REASON })).id;
      serial['g3'] = await cert('oncall', g['g3']!);
      clock.advance(60);
      g['db'] = (await ask('eng', { role: 'db-prod', duration: '2h', ticket: 'OPS-42', reason: 'vacuum the orders table' })).id;
      await call('lead1', `/v1/requests/${g['db']}/approve`, {}, 200);
      await call('lead2', `/v1/requests/${g['db']}/approve`, {}, 200);
      await reload({ ok: true, changed: false, digest: 'digest-1', roles: 2 });

      // Day 4: reloads logged without `changed`, judged by their digest.
      at(4, 9);
      g['g4'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: 'deploy | restart web' })).id;
      const second = await ask('eng', { role: 'web-prod', duration: '1h', reason: 'profile the image resizer' });
      await call('eng', `/v1/requests/${second.id}/cancel`, {}, 200);
      assert.equal((await ask('eng', { role: 'db-prod', duration: '1h', reason: 'count the stale sessions' })).status, 'denied');
      await reload({ ok: true, digest: 'digest-2', roles: 2 });
      clock.advance(60);
      await reload({ ok: false, problems: ['roles.web-prod: bad'] }, 'refused');
      clock.advance(60);
      await reload({ ok: true, digest: 'digest-2', roles: 2 });

      // Day 5: two denials, by policy and by an approver.
      at(5, 9);
      g['g5'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: 'routine deploy day 5' })).id;
      assert.equal((await ask('eng', { role: 'db-prod', duration: '1h', reason: 'look at slow queries' })).status, 'denied');
      const denied = await ask('eng', { role: 'web-prod', duration: '1h', reason: 'debug the login page' });
      await call('carol', `/v1/requests/${denied.id}/deny`, { comment: 'use staging' }, 200);

      // Day 6: three short grants, and a request nobody answers.
      at(6, 9);
      for (const n of ['a', 'b', 'c']) {
        g[`g6${n}`] = (await ask('oncall', { role: 'web-prod', duration: '30m', reason: `hotfix rollout part ${n}` })).id;
        clock.advance(60);
      }
      await ask('eng', { role: 'web-prod', duration: '1h', reason: 'check the error budget' });
      clock.advance(2 * HOUR);
      assert.equal(await id.requests.expireDue(), 1);

      // Filed in the period, granted exactly at `until`: the request is this
      // period's, the grant the next one's.
      clock.ms = UNTIL.getTime() - 30 * 60_000;
      g['late'] = (await ask('eng', { role: 'db-prod', duration: '1h', ticket: 'OPS-43', reason: 'reindex the orders table' })).id;
      await call('lead1', `/v1/requests/${g['late']}/approve`, {}, 200);

      // Exactly at `until`: the next period's.
      clock.ms = UNTIL.getTime();
      await call('lead2', `/v1/requests/${g['late']}/approve`, {}, 200);
      g['after'] = (await ask('oncall', { role: 'web-prod', duration: '1h', reason: 'deploy after the period' })).id;
      serial['after'] = await cert('oncall', g['after']!);
      await id.revocation.revoke({ serial: serial['after'] }, 'rotated after the period', 'os:admin');
      await reload({ ok: true, changed: true, digest: 'digest-3', roles: 2 });

      report = await buildAccessReport(t.db, { since: SINCE, until: UNTIL });
    });
    after(() => t.cleanup());

    const ids = (rows: Array<{ grant_id: string }>) => rows.map((r) => r.grant_id);

    test('ok: totals count the requests, grants, certificates and people of the period only', () => {
      assert.deepEqual(report.period, { since: SINCE.toISOString(), until: UNTIL.toISOString() });
      assert.deepEqual(report.totals, { requests: 21, approved: 14, pending: 0, denied: 4, expired: 1, cancelled: 2, grants: 12, certificates: 6, users: 3 });
    });

    test('ok: grants per role and per user are split by auto-approval rule, approvers and break-glass', () => {
      assert.equal(report.grants_by_role.truncated, false);
      assert.deepEqual(report.grants_by_role.rows, [
        {
          role: 'db-prod', grants: 1, granted_seconds: 2 * HOUR,
          auto_approved: { grants: 0, granted_seconds: 0, rules: [] },
          approved: { grants: 1, granted_seconds: 2 * HOUR, approvers: [{ approver: 'lead1', grants: 1 }, { approver: 'lead2', grants: 1 }] },
          break_glass: { grants: 0, granted_seconds: 0 },
        },
        {
          role: 'web-prod', grants: 11, granted_seconds: 45_900,
          auto_approved: { grants: 8, granted_seconds: 7.5 * HOUR, rules: [{ rule: 'auto_approve[0]', grants: 8 }] },
          approved: { grants: 1, granted_seconds: 4 * HOUR, approvers: [{ approver: 'carol', grants: 1 }] },
          break_glass: { grants: 2, granted_seconds: 75 * 60 },
        },
      ]);
      assert.deepEqual(
        report.grants_by_user.rows.map((u) => [u.user, u.grants, u.granted_seconds, u.auto_approved.grants, u.approved.approvers.map((a) => a.approver), u.break_glass.grants]),
        [
          ['eng', 2, 6 * HOUR, 0, ['carol', 'lead1', 'lead2'], 0],
          ['oncall', 8, 7.5 * HOUR, 8, [], 0],
          ['sre', 2, 75 * 60, 0, [], 2],
        ],
      );
    });

    test('ok: break-glass uses show their review; open reviews are flagged, also from before the period', () => {
      const uses = report.break_glass.uses.rows;
      assert.deepEqual(ids(uses), [g['bg1'], g['bg2']]);
      assert.equal(uses[0]!.review?.status, 'acknowledged');
      assert.equal(uses[0]!.review?.by, 'carol');
      assert.equal(uses[0]!.review?.comment, 'postmortem PM-7 reviewed');
      assert.deepEqual(uses[1]!.review, { status: 'open', by: null, at: null, comment: null });
      assert.equal(report.break_glass.open_reviews, 1);
      assert.deepEqual(ids(report.break_glass.open_from_earlier.rows), [g['bg0']]);
    });

    test('ok: the longest grants come first, extensions included, and the cut is reported', () => {
      const longest = report.longest_grants;
      assert.equal(longest.limit, LONGEST_GRANTS);
      assert.equal(longest.rows.length, LONGEST_GRANTS);
      assert.equal(longest.truncated, true, '12 grants, 10 shown');
      assert.deepEqual(ids(longest.rows.slice(0, 4)), [g['appr'], g['g2'], g['db'], g['g1']]);
      const top = longest.rows[0]!;
      assert.equal(top.duration_seconds, 4 * HOUR);
      assert.equal(top.extensions, 1);
      assert.equal(top.approval, 'approved');
      assert.deepEqual(top.approvers, ['carol']);
      for (let i = 1; i < longest.rows.length; i++) assert.ok(longest.rows[i - 1]!.duration_seconds >= longest.rows[i]!.duration_seconds);
    });

    test('ok: extensions are listed per grant with the time added and who approved it', () => {
      assert.deepEqual(report.extensions, {
        rows: [{ grant_id: g['appr'], user: 'eng', role: 'web-prod', requests: 2, approved: 1, added_seconds: HOUR, approvers: ['carol'] }],
        limit: MAX_LIST_ROWS,
        truncated: false,
      });
    });

    test('ok: grants never used are those whose certificates no sshd log shows', () => {
      assert.equal(report.never_used.usage_data, true);
      assert.deepEqual(ids(report.never_used.grants.rows), [g['appr'], g['g3']]);
      assert.equal(report.never_used.without_certificate, 7);
      const g1 = report.grants.rows.find((x) => x.grant_id === g['g1'])!;
      assert.equal(g1.certificates, 2);
      assert.equal(g1.first_used, new Date(SINCE.getTime() + 600_000).toISOString());
    });

    test(`ok: standing-access candidates asked for one role on at least ${STANDING_ACCESS_MIN_DAYS} distinct days; 4 days are not enough`, () => {
      assert.equal(STANDING_ACCESS_MIN_DAYS, 5, 'the history below is built around 5');
      assert.equal(report.standing_access.min_days, STANDING_ACCESS_MIN_DAYS);
      // eng asked for db-prod on 4 days (one of them before a grant that started in the next period).
      assert.deepEqual(
        report.standing_access.candidates.rows.map((c) => [c.user, c.role, c.days, c.requests, c.first_at]),
        [
          ['oncall', 'web-prod', 6, 8, SINCE.toISOString()],
          ['eng', 'web-prod', 5, 7, new Date(SINCE.getTime() + 9 * 3_600_000).toISOString()],
        ],
      );
    });

    test('ok: policy changes are the reloads in the period that changed the digest', () => {
      assert.deepEqual(
        report.policy_changes.rows.map((c) => [c.digest, c.actor, c.roles, c.target]),
        [
          ['digest-1', 'os:root', 2, '/etc/jit-ssh/policy.yaml'],
          ['digest-2', 'os:root', 2, '/etc/jit-ssh/policy.yaml'],
        ],
      );
    });

    test('ok: revocations of the period only', () => {
      assert.deepEqual(
        report.revocations.rows.map((v) => [v.serial, v.user, v.grant_id, v.reason, v.revoked_by]),
        [[serial['bg2'], 'sre', g['bg2'], 'laptop stolen', 'os:admin']],
      );
    });

    test('ok: every grant of the period once, in start order, with how it was approved', async () => {
      // The grants just outside exist: one approved exactly at `until` after being filed inside the period.
      const outside = await t.db.selectFrom('grants').select(['id', 'starts_at']).where('id', 'in', [g['before']!, g['late']!, g['after']!]).orderBy('starts_at').orderBy('id').execute();
      assert.equal(outside.length, 3);
      assert.ok(outside[0]!.starts_at < SINCE && outside.slice(1).every((x) => x.starts_at.getTime() === UNTIL.getTime()));
      const rows = report.grants.rows;
      assert.deepEqual(ids(rows), ['g1', 'appr', 'bg1', 'g2', 'bg2', 'g3', 'db', 'g4', 'g5', 'g6a', 'g6b', 'g6c'].map((k) => g[k]));
      assert.equal(report.grants.truncated, false);
      const db = rows.find((x) => x.grant_id === g['db'])!;
      assert.deepEqual([db.approval, db.rule, db.approvers, db.ticket], ['approved', 'approval', ['lead1', 'lead2'], 'OPS-42']);
      // How each person had signed in comes from the events of filing and deciding.
      assert.deepEqual(db.sign_in, { requester: { method: 'password+totp' }, approvers: [{ approver: 'lead1', auth: { method: 'password+totp' } }, { approver: 'lead2', auth: { method: 'password+totp' } }] });
      assert.match(renderAccessReport(report, 'csv'), new RegExp(`^${g['db']},.*,"?${db.user}: password\\+totp; lead1: password\\+totp; lead2: password\\+totp"?\r$`, 'm'));
      assert.deepEqual([rows[0]!.approval, rows[0]!.rule], ['auto', 'auto_approve[0]']);
    });

    test('ok: markdown has a section per question and the known rows', () => {
      const md = renderAccessReport(report, 'md');
      for (const h of ['# Access review', '## Totals', '## Grants by role', '## Grants by user', '## Break-glass use', '## Longest grants', '## Extensions', '## Grants never used', '## Standing-access candidates', '## Policy changes', '## Revocations', '## All grants']) {
        assert.ok(md.includes(`\n${h}`) || md.startsWith(h), `missing ${h}`);
      }
      assert.match(md, /\| 21 \| 14 \| 0 \| 4 \| 1 \| 2 \| 12 \| 6 \| 3 \|/);
      assert.match(md, /\| web-prod \| 11 \| 12h45m \| 8 \(7h30m\) \| auto_approve\\\[0\\\] ×8 \| 1 \(4h\) \| carol ×1 \| 2 \(1h15m\) \|/);
      assert.match(md, /\| oncall \| web-prod \| 6 \| 8 \|/);
      assert.match(md, /\| eng \| web-prod \| 5 \| 7 \|/);
      assert.ok(md.includes(`| ${g['bg2']} | sre | web-prod |`) && md.includes('| OPEN |'));
      assert.ok(md.includes('1 still awaiting review'));
      const unused = md.slice(md.indexOf('## Grants never used'), md.indexOf('## Standing-access'));
      assert.ok(unused.includes(g['appr']!) && unused.includes(g['g3']!) && !unused.includes(g['g1']!));
      assert.ok(md.includes('deploy \\| restart web'), 'a pipe in a reason does not split the table');
      assert.ok(md.includes('(top 10 of 12 grants)'));
      assert.ok(!md.includes('no sshd logs have been ingested'));
      assert.ok(!md.includes(g['before']!) && !md.includes(g['after']!) && !md.includes(g['late']!));
    });

    test('ok: csv is one row per grant under the header, with the formula reason defused', () => {
      const csv = renderAccessReport(report, 'csv');
      assert.ok(csv.endsWith('\r\n'));
      const lines = csv.slice(0, -2).split('\r\n');
      assert.equal(lines[0], CSV_COLUMNS.join(','));
      assert.equal(lines[0], 'grant_id,user,role,starts_at,ends_at,duration_seconds,approval,reason,ticket,certificates,first_used,last_used,extensions,review,sign_in');
      assert.equal(lines.length, 1 + 12);
      const g3 = lines.find((l) => l.startsWith(`${g['g3']},`))!;
      assert.ok(g3.includes(`,"'=HYPERLINK(""http://evil.example"",""fix, deploy"")",`), g3);
      assert.ok(lines.find((l) => l.startsWith(`${g['db']},`))!.includes(',"approved:lead1,lead2",'));
      assert.ok(lines.find((l) => l.startsWith(`${g['g1']},`))!.includes(',auto:auto_approve[0],'));
      const bg1 = lines.find((l) => l.startsWith(`${g['bg1']},`))!;
      assert.ok(bg1.includes(',break-glass,') && bg1.includes('acknowledged by carol at ') && bg1.endsWith(': postmortem PM-7 reviewed,sre: password+totp'), bg1);
      assert.ok(lines.find((l) => l.startsWith(`${g['bg2']},`))!.endsWith(',open,sre: password+totp'));
      assert.ok(lines.find((l) => l.startsWith(`${g['appr']},`))!.includes(`,${4 * HOUR},approved:carol,`));
    });

    test('ok: json round-trips', () => {
      const json = renderAccessReport(report, 'json');
      assert.deepEqual(JSON.parse(json), report);
      assert.equal(json, JSON.stringify(report, null, 2));
    });

    test('ok: a database without history reports zeros and says usage is unknown', async () => {
      const empty = await backend.open();
      try {
        const r = await buildAccessReport(empty.db, { since: SINCE, until: UNTIL });
        assert.deepEqual(r.totals, { requests: 0, approved: 0, pending: 0, denied: 0, expired: 0, cancelled: 0, grants: 0, certificates: 0, users: 0 });
        assert.equal(r.never_used.usage_data, false);
        for (const list of [r.grants, r.grants_by_role, r.grants_by_user, r.longest_grants, r.extensions, r.never_used.grants, r.policy_changes, r.revocations, r.standing_access.candidates, r.break_glass.uses]) {
          assert.deepEqual([list.rows.length, list.truncated], [0, false]);
        }
        assert.ok(renderAccessReport(r, 'md').includes('no sshd logs have been ingested'));
        assert.equal(renderAccessReport(r, 'csv'), CSV_COLUMNS.join(',') + '\r\n');
      } finally {
        await empty.cleanup();
      }
    });

    test('fail: a period that does not start before it ends, or has no valid times, is refused', async () => {
      const invalid = (e: unknown) => e instanceof DomainError && e.code === 'invalid_input';
      await assert.rejects(buildAccessReport(t.db, { since: UNTIL, until: SINCE }), invalid);
      await assert.rejects(buildAccessReport(t.db, { since: SINCE, until: SINCE }), invalid);
      await assert.rejects(buildAccessReport(t.db, { since: new Date('nope'), until: UNTIL }), invalid);
    });

    test('fail: an unknown format is refused', () => {
      assert.throws(() => renderAccessReport(report, 'xml' as 'md'), (e: unknown) => e instanceof DomainError && e.code === 'invalid_input');
    });
  });
}
