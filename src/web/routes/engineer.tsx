// The engineer's pages: live grants with the time left, recent requests, and
// the new-request form, which asks policy for a dry run before filing.

import { Hono } from 'hono';
import { DomainError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import type { DryRunView, RequestView, RoleView } from '../../services/requests.js';
import { callerOf, type WebContext, type WebDeps, type WebEnv } from '../context.js';
import { Alert, Badge, Csrf, DataTable, Field, Hint, PostButton, TextArea, Time, timeLeft } from '../views/components.js';
import { page } from '../views/layout.js';
import { PolicyDecision, RequestTable } from '../views/requests.js';
import { pendingFor } from './queue.js';

/** Live grants, once each (an extension request shows the grant it extends). */
function liveGrants(mine: RequestView[]): RequestView[] {
  const seen = new Set<string>();
  return mine.filter((r) => r.grant?.live && r.status === 'approved' && !seen.has(r.grant.id) && seen.add(r.grant.id));
}

interface RequestFormState {
  role?: string;
  duration?: string;
  reason?: string;
  ticket?: string;
  breakGlass?: boolean;
  error?: string;
  preview?: DryRunView;
}

/** Which field a service message is about ("duration must be like…" → duration), to mark it invalid. */
const fieldOf = (message: string | undefined) => /^(role|duration|reason|ticket)\b/.exec(message ?? '')?.[1];

const NewRequestForm = ({ roles, csrf, s }: { roles: RoleView[]; csrf: string; s: RequestFormState }) => {
  const bad = fieldOf(s.error);
  const chosen = roles.find((r) => r.name === s.role);
  return (
    <form method="post" action="/ui/requests/new" class="stack">
      <Csrf token={csrf} />
      <Alert message={s.error} id="request-error" />
      <div class="field">
        <label for="role">Role</label>
        <select id="role" name="role" required aria-invalid={bad === 'role' ? 'true' : undefined} aria-describedby={bad === 'role' ? 'request-error' : undefined}>
          {roles.map((r) => (
            <option value={r.name} selected={r.name === s.role}>
              {r.name} — {r.principals.join(', ')} (up to {r.max_duration})
            </option>
          ))}
        </select>
      </div>
      <Field id="duration" name="duration" label="Duration" value={s.duration} placeholder={chosen?.default_duration ?? '1h'} maxlength={32} hint="Like 30m, 2h or 1h30m; empty for the role's default." invalid={bad === 'duration'} errorId="request-error" />
      <TextArea id="reason" name="reason" label="Reason" value={s.reason} required maxlength={1000} hint="Say why you need access: approvers and auditors read it." invalid={bad === 'reason'} errorId="request-error" />
      <Field id="ticket" name="ticket" label="Ticket (optional)" value={s.ticket} maxlength={128} hint="An issue or change id such as OPS-123; some roles require one." invalid={bad === 'ticket'} errorId="request-error" />
      {roles.some((r) => r.break_glass) && (
        <div class="field">
          <label class="check" for="break_glass">
            <input type="checkbox" id="break_glass" name="break_glass" value="on" checked={s.breakGlass} aria-describedby="break_glass-hint" />
            Break-glass: an emergency
          </label>
          <Hint id="break_glass" hint="Granted at once for the roles that allow it, and reviewed afterwards by an approver." />
        </div>
      )}
      {s.preview && <PolicyDecision decision={s.preview.decision} required={s.preview.required_approvals} title={`If you submit now (${s.preview.role} for ${s.preview.duration})`} />}
      <div class="actions">
        <button type="submit" name="action" value="preview" class={s.preview ? undefined : 'primary'}>
          {s.preview ? 'Check again' : 'Check with policy'}
        </button>
        {s.preview && s.preview.status !== 'denied' && (
          <button type="submit" name="action" value="submit" class="primary">
            Submit request
          </button>
        )}
      </div>
    </form>
  );
};

const RolesTable = ({ roles }: { roles: RoleView[] }) => (
  <DataTable
    caption="Roles you may request"
    columns={['Role', 'Description', 'Principals', 'Longest', 'Approval']}
    rows={roles.map((r) => [
      r.name,
      r.description,
      <code>{r.principals.join(', ')}</code>,
      r.max_duration,
      `${r.needs_approval ? 'by approvers' : 'automatic within limits'}${r.require_ticket ? '; ticket required' : ''}${r.require_key === 'fido' ? '; security key only' : ''}`,
    ])}
  />
);

export function engineerRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();
  const now = deps.now ?? (() => new Date());

  app.get('/ui', async (c) => {
    const v = c.get('viewer');
    const mine = await deps.requests.history(v.who, v.who.username, 50);
    const live = liveGrants(mine);
    const waiting = v.approver ? (await pendingFor(deps, v.who)).length : 0;
    const at = now();
    return page(c, 200, { title: 'My access', viewer: v, current: 'home' }, (
      <>
        <h1>My access</h1>
        {waiting > 0 && (
          <p class="notice">
            <a href="/ui/queue">{waiting} request(s) wait for your decision.</a>
          </p>
        )}
        <h2>Live grants</h2>
        {live.length === 0 ? (
          <p class="muted">
            You hold no access right now. <a href="/ui/requests/new">Request some.</a>
          </p>
        ) : (
          live.map((r) => (
            <section class="card" aria-label={`Grant ${r.role}`}>
              <h3>
                {r.role} <Badge status="ok" label={timeLeft(r.grant!.ends_at, at)} /> {r.grant!.break_glass && <Badge status="pending" label="break-glass" />}
              </h3>
              <p>
                As <code>{r.principals.join(', ')}</code> until <Time iso={r.grant!.ends_at} />. Get a certificate with <code>jit-ssh cert {r.grant!.id}</code>.
              </p>
              <PostButton action={`/ui/grants/${r.grant!.id}/relinquish`} csrf={v.csrf} label="Give up this access now" />
            </section>
          ))
        )}
        <h2>My requests</h2>
        <RequestTable rows={mine} caption="Your recent requests" />
      </>
    ));
  });

  const form = (c: WebContext, status: 200 | 400 | 403 | 404 | 409 | 429, s: RequestFormState) => {
    const v = c.get('viewer');
    const roles = deps.requests.roles(v.who);
    return page(c, status, { title: 'New request', viewer: v, current: 'new' }, (
      <>
        <h1>Request access</h1>
        {roles.length === 0 ? (
          <p class="notice">The policy names no role you may request.</p>
        ) : (
          <>
            <p>Policy says what it would decide before anything is filed; then submit.</p>
            <NewRequestForm roles={roles} csrf={v.csrf} s={s} />
            <RolesTable roles={roles} />
          </>
        )}
      </>
    ));
  };

  app.get('/ui/requests/new', (c) => form(c, 200, { role: c.req.query('role') }));

  app.post('/ui/requests/new', async (c) => {
    const f = c.get('form');
    const s: RequestFormState = { role: f['role'], duration: f['duration']?.trim(), reason: f['reason'], ticket: f['ticket']?.trim(), breakGlass: f['break_glass'] === 'on' };
    const input = { role: s.role, duration: s.duration || undefined, reason: s.reason, ticket: s.ticket || undefined, break_glass: s.breakGlass };
    const submit = f['action'] === 'submit';
    try {
      const out = await deps.requests.create(callerOf(c, deps), input, !submit);
      if (!submit) return form(c, 200, { ...s, preview: out as DryRunView });
      return c.redirect(`/ui/requests/${(out as RequestView).id}`, 303);
    } catch (e) {
      if (e instanceof DomainError && e.code !== 'unavailable') return form(c, STATUS_OF[e.code] as 400, { ...s, error: e.message });
      throw e;
    }
  });

  return app;
}
