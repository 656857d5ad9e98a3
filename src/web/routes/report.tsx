// The access review (src/audit/report.ts) as HTML tables built from its JSON
// data, with downloads in the formats the API and CLI give (CSV, JSON, Markdown).

import { Hono } from 'hono';
import type { Child } from 'hono/jsx';
import { approvalText, renderAccessReport, signInText, type AccessReport, type Bounded, type GrantTotals, type ReportGrant } from '../../audit/report.js';
import { formatDuration } from '../../core/duration.js';
import { DomainError } from '../../core/errors.js';
import type { WebDeps, WebEnv } from '../context.js';
import { Alert, Badge, DataTable, Field, FilterForm, Time } from '../views/components.js';
import { page } from '../views/layout.js';
import { filtersOf } from './audit-export.js';

const dur = (s: number) => formatDuration(s);
const share = (n: number, s: number) => (n === 0 ? '0' : `${n} (${dur(s)})`);

/** A section's table, with a note when the report cut its list. */
function Table({ caption, head, rows, list, what }: { caption: string; head: string[]; rows: Child[][]; list?: Bounded<unknown>; what?: string }) {
  return (
    <>
      <DataTable caption={caption} columns={head} rows={rows} empty={`${caption}: none.`} />
      {rows.length > 0 && list?.truncated && <p class="notice">Only the first {list.limit} {what} are listed. Narrow the period to see them all.</p>}
    </>
  );
}

const totalsRows = (rows: Array<{ key: string } & GrantTotals>) =>
  rows.map((r) => [r.key, r.grants, dur(r.granted_seconds), share(r.auto_approved.grants, r.auto_approved.granted_seconds), r.auto_approved.rules.map((x) => `${x.rule} ×${x.grants}`).join(', '), share(r.approved.grants, r.approved.granted_seconds), r.approved.approvers.map((x) => `${x.approver} ×${x.grants}`).join(', '), share(r.break_glass.grants, r.break_glass.granted_seconds)]);
const totalsHead = (key: string) => [key, 'Grants', 'Granted time', 'Auto-approved', 'Rules', 'Approved', 'Approvers', 'Break-glass'];

const grantLink = (g: ReportGrant) => <a href={`/ui/audit/requests/${g.grant_id}`} class="mono">{g.grant_id}</a>;
const grantHead = ['Grant', 'User', 'Role', 'Starts', 'Ends', 'Duration', 'Approval', 'Reason', 'Ticket', 'Certificates', 'First used', 'Last used', 'Extensions', 'Signed in'];
const grantRow = (g: ReportGrant): Child[] => [grantLink(g), g.user, g.role, <Time iso={g.starts_at} />, <Time iso={g.ends_at} />, dur(g.duration_seconds), approvalText(g), g.reason, g.ticket, g.certificates, <Time iso={g.first_used} />, <Time iso={g.last_used} />, g.extensions, signInText(g)];
const bgHead = ['Grant', 'User', 'Role', 'Starts', 'Duration', 'Reason', 'Review', 'Reviewed by', 'Reviewed at', 'Comment'];
const bgRow = (g: ReportGrant): Child[] => [grantLink(g), g.user, g.role, <Time iso={g.starts_at} />, dur(g.duration_seconds), g.reason, g.review?.status === 'open' ? <Badge status="open" label="OPEN" /> : 'acknowledged', g.review?.by ?? null, <Time iso={g.review?.at} />, g.review?.comment ?? null];

const Report = ({ r }: { r: AccessReport }) => {
  const t = r.totals;
  const bg = r.break_glass;
  const nu = r.never_used;
  return (
    <>
      <p>
        From <Time iso={r.period.since} /> (included) to <Time iso={r.period.until} /> (excluded); generated <Time iso={r.generated_at} />. A grant belongs to the period in which it started, a request to the
        period in which it was filed; review and usage states are as of now.
      </p>
      <h2>Totals</h2>
      <Table caption="Totals" head={['Requests', 'Approved', 'Pending', 'Denied', 'Expired', 'Cancelled', 'Grants', 'Certificates issued', 'Users']} rows={[[t.requests, t.approved, t.pending, t.denied, t.expired, t.cancelled, t.grants, t.certificates, t.users]]} />
      <h2>Grants by role</h2>
      <Table caption="Grants by role" head={totalsHead('Role')} rows={totalsRows(r.grants_by_role.rows.map(({ role, ...x }) => ({ key: role, ...x })))} list={r.grants_by_role} what="roles" />
      <h2>Grants by user</h2>
      <Table caption="Grants by user" head={totalsHead('User')} rows={totalsRows(r.grants_by_user.rows.map(({ user, ...x }) => ({ key: user, ...x })))} list={r.grants_by_user} what="users" />
      <h2>Break-glass use</h2>
      <p>
        {bg.uses.rows.length}
        {bg.uses.truncated ? '+' : ''} break-glass grant(s) in the period; <strong>{bg.open_reviews} still awaiting review</strong>.
      </p>
      <Table caption="Break-glass grants" head={bgHead} rows={bg.uses.rows.map(bgRow)} list={bg.uses} what="break-glass grants" />
      {bg.open_from_earlier.rows.length > 0 && <Table caption="Still awaiting review from before the period" head={bgHead} rows={bg.open_from_earlier.rows.map(bgRow)} list={bg.open_from_earlier} what="open reviews" />}
      <h2>Longest grants</h2>
      <Table caption={`The ${r.longest_grants.limit} longest grants, extensions included`} head={grantHead} rows={r.longest_grants.rows.map(grantRow)} />
      <h2>Extensions</h2>
      <Table caption="Extended grants" head={['Grant', 'User', 'Role', 'Extension requests', 'Approved', 'Time added', 'Approvers']} rows={r.extensions.rows.map((e) => [e.grant_id, e.user, e.role, e.requests, e.approved, dur(e.added_seconds), e.approvers.join(', ')])} list={r.extensions} what="extended grants" />
      <h2>Grants never used</h2>
      {nu.usage_data ? (
        <Table caption="Grants whose certificates were never seen in an ingested sshd log" head={grantHead} rows={nu.grants.rows.map(grantRow)} list={nu.grants} what="unused grants" />
      ) : (
        <p class="notice">No sshd logs have been ingested, so whether grants were used is unknown and none is listed here.</p>
      )}
      <p>{nu.without_certificate} grant(s) in the period never had a certificate issued.</p>
      <h2>Standing-access candidates</h2>
      <Table caption={`Requests for one role on at least ${r.standing_access.min_days} distinct days (UTC)`} head={['User', 'Role', 'Days', 'Requests', 'First', 'Last']} rows={r.standing_access.candidates.rows.map((x) => [x.user, x.role, x.days, x.requests, <Time iso={x.first_at} />, <Time iso={x.last_at} />])} list={r.standing_access.candidates} what="candidates" />
      <h2>Policy changes</h2>
      <Table caption="Policy changes" head={['At', 'By', 'Digest', 'Roles', 'File']} rows={r.policy_changes.rows.map((x) => [<Time iso={x.at} />, x.actor, <code>{x.digest ?? '–'}</code>, x.roles, x.target])} list={r.policy_changes} what="changes" />
      <h2>Revocations</h2>
      <Table caption="Revocations" head={['Serial', 'User', 'Role', 'Grant', 'Revoked at', 'By', 'Reason', 'Valid until']} rows={r.revocations.rows.map((x) => [<span class="mono">{x.serial}</span>, x.user, x.role, x.grant_id, <Time iso={x.revoked_at} />, x.revoked_by, x.reason, <Time iso={x.valid_before} />])} list={r.revocations} what="revocations" />
      <h2>All grants</h2>
      <Table caption="All grants of the period" head={grantHead} rows={r.grants.rows.map(grantRow)} list={r.grants} what="grants" />
    </>
  );
};

export function reportRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();

  app.get('/ui/audit/report', async (c) => {
    const f = filtersOf(c.req.query(), ['since', 'until']);
    let report: AccessReport | null = null;
    let error: string | undefined;
    try {
      report = await deps.audit.report(f);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      error = e.message;
    }
    const q = new URLSearchParams(f).toString();
    return page(c, error ? 400 : 200, { title: 'Access review', viewer: c.get('viewer'), current: 'audit' }, (
      <>
        <h1>Access review</h1>
        <FilterForm action="/ui/audit/report" label="Report period" button="Show" hint={{ id: 'period-hint', text: 'RFC 3339 times or durations back from now (30d); by default the last 30 days.' }}>
          <Field id="r-since" name="since" label="Since" value={f['since']} placeholder="30d" describedBy="period-hint" invalid={!!error} errorId="report-error" />
          <Field id="r-until" name="until" label="Until" value={f['until']} placeholder="now" describedBy="period-hint" invalid={!!error} errorId="report-error" />
        </FilterForm>
        <Alert message={error} id="report-error" />
        {report && (
          <>
            <p class="actions">
              Download: <a class="button" href={`/ui/audit/report.csv?${q}`} download>CSV (grants)</a>
              <a class="button" href={`/ui/audit/report.json?${q}`} download>JSON</a>
              <a class="button" href={`/ui/audit/report.md?${q}`} download>Markdown</a>
            </p>
            <Report r={report} />
          </>
        )}
      </>
    ));
  });

  for (const format of ['csv', 'json', 'md'] as const) {
    app.get(`/ui/audit/report.${format}`, async (c) => {
      const report = await deps.audit.report(filtersOf(c.req.query(), ['since', 'until']));
      const type = { csv: 'text/csv', json: 'application/json', md: 'text/markdown' }[format];
      c.header('Content-Disposition', `attachment; filename="access-review-${report.period.since.slice(0, 10)}.${format}"`);
      return c.body(renderAccessReport(report, format), 200, { 'Content-Type': `${type}; charset=utf-8` });
    });
  }

  return app;
}
