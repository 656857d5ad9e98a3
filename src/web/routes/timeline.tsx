// A request's full story for an auditor, in time order: filed and decided by
// policy, every event naming it (approvals with their step-up, denials,
// cancellation, expiry, relinquishment, break-glass review, revocation), the
// grant's window, and each certificate issued for it and whether it was used.

import { Hono } from 'hono';
import type { Child } from 'hono/jsx';
import { asSessionAuth, describeAuth } from '../../core/auth-method.js';
import { ID_FORM } from '../../services/ids.js';
import type { WebDeps, WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { Badge, DataTable, Time } from '../views/components.js';
import { page } from '../views/layout.js';
import { PolicyDecision, RequestFacts } from '../views/requests.js';

/** The actor, and how they had signed in when their event recorded it. */
const signedIn = (actor: string, details: Record<string, unknown>) => (details['auth'] ? `${actor} (${describeAuth(asSessionAuth(details['auth']))})` : actor);

interface Entry {
  at: string;
  who: string;
  what: Child;
  outcome?: string;
  detail?: Child;
}

const json = (d: Record<string, unknown>) => (Object.keys(d).length > 0 ? <code>{JSON.stringify(d)}</code> : '');

export function timelineRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();
  const now = deps.now ?? (() => new Date());

  app.get('/ui/audit/requests/:id', async (c) => {
    const id = c.req.param('id');
    if (!ID_FORM.test(id)) throw new WebError(404, 'There is no such request.');
    const v = c.get('viewer');
    const r = await deps.requests.get(v.who, id);
    const { events } = await deps.audit.events({ target: id, limit: '1000' });
    const { certificates } = await deps.audit.certificates({ request: id, limit: '1000' });
    const bySerial = await Promise.all(certificates.map((x) => deps.audit.events({ target: x.serial, limit: '100' })));

    const entries: Entry[] = [
      { at: r.created_at, who: r.requester, what: `filed: ${r.role} for ${r.duration}`, outcome: r.decision.outcome, detail: `policy rule ${r.decision.rule}: ${r.decision.reason}` },
      // Searches answer newest first; reversed, records of one instant keep the order they were written in.
      ...events.toReversed().map((e) => ({ at: e.at, who: signedIn(e.actor, e.details), what: <code>{e.action}</code>, outcome: e.outcome, detail: json(e.details) })),
      ...bySerial.flatMap((p) => p.events.toReversed().map((e) => ({ at: e.at, who: e.actor, what: <><code>{e.action}</code> of serial {e.target}</>, outcome: e.outcome, detail: json(e.details) }))),
      ...certificates.flatMap((x) => [
        { at: x.issued_at, who: x.username, what: <>certificate <span class="mono">{x.serial}</span> issued</>, detail: <>principals <code>{x.principals.join(', ')}</code>, valid until <Time iso={x.valid_before} />, key <code>{x.public_key_fingerprint}</code>{x.client_address ? ` from ${x.client_address}` : ''}</> },
        ...(x.first_used ? [{ at: x.first_used, who: x.username, what: <>certificate <span class="mono">{x.serial}</span> first used</>, detail: x.last_used ? <>last used <Time iso={x.last_used} /></> : '' }] : []),
      ]),
    ];
    if (r.grant) {
      entries.push({ at: r.grant.starts_at, who: 'jit-ssh', what: 'grant starts' });
      const ended = r.grant.relinquished_at ?? (Date.parse(r.grant.ends_at) <= now().getTime() ? r.grant.ends_at : null);
      if (ended === r.grant.ends_at) entries.push({ at: r.grant.ends_at, who: 'jit-ssh', what: 'grant ends' });
    }
    // A stable sort: entries of the same instant stay in the order above.
    entries.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));

    return page(c, 200, { title: `Timeline of ${r.id}`, viewer: v, current: 'audit' }, (
      <>
        <h1>
          Timeline: {r.requester} for {r.role} <Badge status={r.status} />
        </h1>
        <p class="actions">
          <a href={`/ui/requests/${r.id}`}>Request page</a>
          <a href={`/ui/audit/events?target=${encodeURIComponent(r.id)}`}>Events naming it</a>
          <a href={`/ui/audit/certificates?request=${encodeURIComponent(r.id)}`}>Its certificates</a>
          {r.extends_grant && <a href={`/ui/audit/requests/${r.extends_grant}`}>The grant it extends</a>}
        </p>
        <RequestFacts r={r} />
        <PolicyDecision decision={r.decision} required={r.required_approvals} />
        <DataTable
          caption="Everything recorded about this request, oldest first"
          label="Timeline"
          columns={['When', 'Who', 'What', 'Outcome', 'Details']}
          rows={entries.map((e) => [<Time iso={e.at} />, e.who, e.what, e.outcome ? <Badge status={e.outcome} /> : '', e.detail ?? ''])}
        />
      </>
    ));
  });

  return app;
}
