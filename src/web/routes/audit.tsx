// The auditor's search pages: issued certificates and access events with the
// API's filters (GET forms: a search is a link one can share and reload),
// pages by cursor, downloads of the whole search, and the log's integrity.

import { Hono } from 'hono';
import type { CertificateView, EventView } from '../../audit/queries.js';
import { DomainError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import { ID_FORM } from '../../services/ids.js';
import type { WebContext, WebDeps, WebEnv } from '../context.js';
import { Alert, Badge, DataTable, Field, FilterForm, Time } from '../views/components.js';
import { page } from '../views/layout.js';
import { CERT_FILTERS, EVENT_FILTERS, exportSearch, filtersOf } from './audit-export.js';

const PAGE_SIZE = '50';
const qs = (params: Record<string, string>) => new URLSearchParams(params).toString();

const TIME_HINT = { id: 'time-hint', text: 'Times: RFC 3339 (2026-11-01T00:00:00Z) or a duration back from now (30d, 12h).' };

const CertFilters = ({ f, bad }: { f: Record<string, string>; bad: boolean }) => (
  <FilterForm action="/ui/audit/certificates" label="Search certificates" button="Search" hint={TIME_HINT}>
    <Field id="f-user" name="user" label="User" value={f['user']} invalid={bad} errorId="search-error" />
    <Field id="f-principal" name="principal" label="Principal" value={f['principal']} invalid={bad} errorId="search-error" />
    <Field id="f-role" name="role" label="Role" value={f['role']} invalid={bad} errorId="search-error" />
    <Field id="f-serial" name="serial" label="Serial" value={f['serial']} inputmode="numeric" invalid={bad} errorId="search-error" />
    <Field id="f-request" name="request" label="Request id" value={f['request']} invalid={bad} errorId="search-error" />
    <Field id="f-approver" name="approver" label="Approved by" value={f['approver']} invalid={bad} errorId="search-error" />
    <div class="field">
      <label for="f-bg">Break-glass</label>
      <select id="f-bg" name="break_glass">
        <option value="" selected={!f['break_glass']}>either</option>
        <option value="true" selected={f['break_glass'] === 'true'}>only break-glass</option>
        <option value="false" selected={f['break_glass'] === 'false'}>no break-glass</option>
      </select>
    </div>
    <Field id="f-since" name="since" label="Issued since" value={f['since']} describedBy={TIME_HINT.id} invalid={bad} errorId="search-error" />
    <Field id="f-until" name="until" label="Issued before" value={f['until']} describedBy={TIME_HINT.id} invalid={bad} errorId="search-error" />
  </FilterForm>
);

const EventFilters = ({ f, bad }: { f: Record<string, string>; bad: boolean }) => (
  <FilterForm action="/ui/audit/events" label="Search events" button="Search" hint={TIME_HINT}>
    <Field id="f-actor" name="actor" label="Actor" value={f['actor']} invalid={bad} errorId="search-error" />
    <Field id="f-action" name="action" label="Action" value={f['action']} placeholder="request.approve" invalid={bad} errorId="search-error" />
    <Field id="f-target" name="target" label="Target" value={f['target']} invalid={bad} errorId="search-error" />
    <Field id="f-since" name="since" label="Since" value={f['since']} describedBy={TIME_HINT.id} invalid={bad} errorId="search-error" />
    <Field id="f-until" name="until" label="Before" value={f['until']} describedBy={TIME_HINT.id} invalid={bad} errorId="search-error" />
  </FilterForm>
);

const Downloads = ({ base, f }: { base: string; f: Record<string, string> }) => (
  <p class="actions">
    Download this search:
    <a class="button" href={`${base}.csv?${qs(f)}`} download>
      CSV
    </a>
    <a class="button" href={`${base}.json?${qs(f)}`} download>
      JSON
    </a>
  </p>
);

const CertRows = ({ rows }: { rows: CertificateView[] }) => (
  <DataTable
    caption="Certificates, newest first"
    label="Certificates found"
    columns={[{ label: 'Serial', class: 'mono' }, 'Issued', 'User', 'Role', 'Principals', 'Valid until', 'Request', 'Flags']}
    rows={rows.map((x) => [
      x.serial,
      <Time iso={x.issued_at} />,
      x.username,
      x.role,
      <code>{x.principals.join(', ')}</code>,
      <Time iso={x.valid_before} />,
      x.request_id && <RequestLink id={x.request_id} />,
      <>
        {x.break_glass && <Badge status="pending" label="break-glass" />} {x.revoked_at && <Badge status="bad" label="revoked" />} {x.first_used && <Badge status="ok" label="used" />} {x.last_refusal && (
          <>
            <Badge status="bad" label="refused" /> <small>{x.refusals}× by sshd, last on {x.last_refusal.host}: {x.last_refusal.reason}</small>
          </>
        )}
      </>,
    ])}
  />
);

const EventRows = ({ rows }: { rows: EventView[] }) => (
  <DataTable
    caption="Events, newest first"
    label="Events found"
    columns={[{ label: '#', class: 'mono' }, 'At', 'Actor', 'Action', 'Target', 'Outcome', { label: 'From', class: 'mono' }, 'Details']}
    rows={rows.map((e) => [
      e.id,
      <Time iso={e.at} />,
      e.actor,
      <code>{e.action}</code>,
      e.target && ID_FORM.test(e.target) ? <RequestLink id={e.target} /> : <span class="mono">{e.target ?? '–'}</span>,
      <Badge status={e.outcome} />,
      e.client_address,
      <code>{Object.keys(e.details).length > 0 ? JSON.stringify(e.details) : ''}</code>,
    ])}
  />
);

/** A request id linking to its timeline. */
const RequestLink = ({ id }: { id: string }) => (
  <a href={`/ui/audit/requests/${id}`} class="mono">
    {id}
  </a>
);

export function auditRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();

  app.get('/ui/audit', (c) =>
    page(c, 200, { title: 'Audit', viewer: c.get('viewer'), current: 'audit' }, (
      <>
        <h1>Audit</h1>
        <ul>
          <li><a href="/ui/audit/certificates">Issued certificates</a>: who got which principals, when, for which request.</li>
          <li><a href="/ui/audit/events">Access events</a>: logins, requests, decisions, step-ups, revocations, administration.</li>
          <li><a href="/ui/audit/integrity">Log integrity</a>: checks the hash chain and its signed checkpoints.</li>
          <li><a href="/ui/audit/report">Access review</a>: who had access to what, when, why, approved by whom, and whether it was used.</li>
        </ul>
      </>
    )),
  );

  /** One search page: filters kept in the form, results or the reason there are none, next page, downloads. */
  const search = async <T,>(c: WebContext, kind: 'certificates' | 'events', run: (q: Record<string, string>) => Promise<{ rows: T[]; next: string | null }>) => {
    const f = filtersOf(c.req.query(), kind === 'certificates' ? CERT_FILTERS : EVENT_FILTERS);
    const cursor = c.req.query('cursor');
    let result: { rows: T[]; next: string | null } | null = null;
    let error: string | undefined;
    try {
      result = await run({ ...f, limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      error = e.message;
    }
    const title = kind === 'certificates' ? 'Issued certificates' : 'Access events';
    const base = `/ui/audit/${kind}`;
    return page(c, error ? (STATUS_OF['invalid_input'] as 400) : 200, { title, viewer: c.get('viewer'), current: 'audit' }, (
      <>
        <h1>{title}</h1>
        {kind === 'certificates' ? <CertFilters f={f} bad={!!error} /> : <EventFilters f={f} bad={!!error} />}
        <Alert message={error} id="search-error" />
        {result && (
          <>
            <Downloads base={base} f={f} />
            {result.rows.length === 0 ? (
              <p class="muted">Nothing matches.</p>
            ) : kind === 'certificates' ? (
              <CertRows rows={result.rows as CertificateView[]} />
            ) : (
              <EventRows rows={result.rows as EventView[]} />
            )}
            {result.next && (
              <p>
                <a href={`${base}?${qs({ ...f, cursor: result.next })}`}>Older {kind} →</a>
              </p>
            )}
          </>
        )}
      </>
    ));
  };

  app.get('/ui/audit/certificates', (c) => search(c, 'certificates', async (q) => {
    const p = await deps.audit.certificates(q);
    return { rows: p.certificates, next: p.next_cursor };
  }));
  app.get('/ui/audit/events', (c) => search(c, 'events', async (q) => {
    const p = await deps.audit.events(q);
    return { rows: p.events, next: p.next_cursor };
  }));
  app.get('/ui/audit/certificates.csv', (c) => exportSearch(c, deps, 'certificates', 'csv'));
  app.get('/ui/audit/certificates.json', (c) => exportSearch(c, deps, 'certificates', 'json'));
  app.get('/ui/audit/events.csv', (c) => exportSearch(c, deps, 'events', 'csv'));
  app.get('/ui/audit/events.json', (c) => exportSearch(c, deps, 'events', 'json'));

  app.get('/ui/audit/integrity', async (c) => {
    const result = await deps.audit.verify();
    return page(c, 200, { title: 'Log integrity', viewer: c.get('viewer'), current: 'audit' }, (
      <>
        <h1>Log integrity</h1>
        <p class={result.ok ? 'notice' : 'alert'} role="status">
          {result.ok ? 'Intact: every sealed record matches its hash chain and the signed checkpoints.' : 'NOT intact: the log was altered or damaged. The first bad record is named below.'}
        </p>
        <DataTable
          caption={
            <>
              Checked <Time iso={new Date().toISOString()} />
            </>
          }
          label="Streams checked"
          columns={['Log', 'Status', { label: 'Sealed records', class: 'num' }, { label: 'Not yet sealed', class: 'num' }, { label: 'Checkpoints', class: 'num' }, 'Problem']}
          rows={result.streams.map((s) => [
            s.stream,
            <Badge status={s.ok ? 'ok' : 'bad'} label={s.ok ? 'intact' : 'FAILED'} />,
            s.sealed,
            s.unsealed,
            s.checkpoints,
            s.problem ? `${s.problem.detail}${s.problem.record ? ` (record ${s.problem.record})` : ''}` : null,
          ])}
        />
        <p class={result.workflow.ok ? 'notice' : 'alert'}>
          {result.workflow.ok
            ? `Requests (${result.workflow.rows.requests}), approvals (${result.workflow.rows.approvals}), grants (${result.workflow.rows.grants}) and revocations (${result.workflow.rows.revocations}) agree with their chained history and the audit events.`
            : `The workflow tables do NOT agree with their chained history: ${result.workflow.problem}`}
        </p>
        <p class="muted">Records not yet sealed are new ones the server seals within a second or so; they are not a problem.</p>
      </>
    ));
  });

  return app;
}
