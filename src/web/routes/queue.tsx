// The approver's queue: every pending request the viewer may decide, with
// what a decision needs on one screen (who, what, for how long, why, the
// ticket, what policy said and by which rule, the requester's recent
// history), and the break-glass uses waiting for a review.

import { Hono } from 'hono';
import type { Principal } from '../../services/auth.js';
import type { RequestView } from '../../services/requests.js';
import { mfaRules, type WebDeps, type WebEnv } from '../context.js';
import { Badge, Time } from '../views/components.js';
import { page } from '../views/layout.js';
import { AcknowledgeForm, DecisionForm, PolicyDecision, RequestFacts, RequestTable } from '../views/requests.js';
import { mayAcknowledge, mayDecide } from './request.js';

/** Pending requests `who` may decide and has not decided yet, oldest first (they expire first). */
export async function pendingFor(deps: WebDeps, who: Principal): Promise<RequestView[]> {
  if (deps.requests.decidableRoles(who).length === 0) return [];
  const rows = await deps.requests.list(who, { status: 'pending' });
  return rows.filter((r) => mayDecide(deps, who, r)).reverse();
}

/** Break-glass grants waiting for a review `who` may give (approvers of the role, or admins). */
async function reviewsFor(deps: WebDeps, who: Principal): Promise<RequestView[]> {
  const rows = await deps.requests.list(who, { reviews: true });
  const seen = new Set<string>();
  return rows.filter((r) => mayAcknowledge(deps, who, r) && !seen.has(r.grant!.id) && seen.add(r.grant!.id));
}

export function queueRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();

  app.get('/ui/queue', async (c) => {
    const v = c.get('viewer');
    const pending = await pendingFor(deps, v.who);
    const reviews = await reviewsFor(deps, v.who);
    const histories = await Promise.all(pending.map(async (r) => (await deps.requests.history(v.who, r.requester, 6)).filter((h) => h.id !== r.id).slice(0, 5)));
    return page(c, 200, { title: 'Approvals', viewer: v, current: 'queue' }, (
      <>
        <h1>Approvals</h1>
        <h2>Waiting for your decision ({pending.length})</h2>
        {pending.length === 0 && <p class="muted">Nothing waits for you.</p>}
        {pending.map((r, i) => (
          <article class="card" aria-labelledby={`q-${r.id}`}>
            <h3 id={`q-${r.id}`}>
              <a href={`/ui/requests/${r.id}`}>
                {r.requester} asks for {r.role} for {r.duration}
              </a>{' '}
              {r.break_glass && <Badge status="pending" label="break-glass" />}
            </h3>
            <RequestFacts r={r} />
            <PolicyDecision decision={r.decision} required={r.required_approvals} />
            {r.approvals.length > 0 && <p>Already decided: {r.approvals.map((a) => `${a.approver} (${a.decision})`).join(', ')}</p>}
            <RequestTable rows={histories[i]!} caption={`${r.requester}'s recent requests`} />
            {mfaRules(deps).approval === 'webauthn' ? (
              <p>
                <a class="button primary" href={`/ui/requests/${r.id}`}>
                  Decide, with your passkey
                </a>
              </p>
            ) : (
              <DecisionForm r={r} csrf={v.csrf} />
            )}
          </article>
        ))}
        <h2>Break-glass uses to review ({reviews.length})</h2>
        {reviews.length === 0 && <p class="muted">No break-glass use waits for a review.</p>}
        {reviews.map((r) => (
          <article class="card" aria-labelledby={`bg-${r.grant!.id}`}>
            <h3 id={`bg-${r.grant!.id}`}>
              <a href={`/ui/requests/${r.id}`}>
                {r.requester} used break-glass for {r.role}
              </a>
            </h3>
            <p>
              From <Time iso={r.grant!.starts_at} /> until <Time iso={r.grant!.ends_at} />.
            </p>
            <RequestFacts r={r} />
            <AcknowledgeForm r={r} csrf={v.csrf} />
          </article>
        ))}
      </>
    ));
  });

  return app;
}
