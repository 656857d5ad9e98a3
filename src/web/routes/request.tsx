// One request's page, and what can be done to it from there: decide it (with
// a fresh authenticator code bound to it), cancel it, give up its grant,
// acknowledge a break-glass use. The services decide who may; the page only
// offers what they would allow.

import { Hono } from 'hono';
import type { Child } from 'hono/jsx';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError, RateLimitedError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import { ID_FORM } from '../../services/ids.js';
import type { Principal } from '../../services/auth.js';
import { checkComment, type RequestView } from '../../services/requests.js';
import { callerOf, mfaRules, siteOf, type WebContext, type WebDeps, type WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { Badge, Facts, PostButton, Time } from '../views/components.js';
import { page } from '../views/layout.js';
import { AcknowledgeForm, Approvals, DecisionForm, PolicyDecision, RequestFacts, type DecisionConfirm, type DecisionFormState } from '../views/requests.js';

/** Pending, but past its time to live: the expiry job will close it; no decision may be made on it. */
const expired = (deps: WebDeps, r: RequestView) => r.status === 'pending' && Date.parse(r.expires_at) <= (deps.now ?? (() => new Date()))().getTime();

/** Whether `who` may decide `r` now: the queue lists, and the request page offers a decision form for, exactly these. */
export function mayDecide(deps: WebDeps, who: Principal, r: RequestView): boolean {
  const me = who.username;
  return r.status === 'pending' && !expired(deps, r) && r.requester !== me && deps.requests.decidableRoles(who).includes(r.role) && !r.approvals.some((a) => a.approver === me);
}

/** Whether `who` may acknowledge `r`'s break-glass use: the queue lists, and the request page offers a review form for, exactly these. */
export function mayAcknowledge(deps: WebDeps, who: Principal, r: RequestView): boolean {
  return r.grant?.review?.status === 'open' && r.requester !== who.username && (who.isAdmin || deps.requests.decidableRoles(who).includes(r.role));
}

interface PageState {
  decide?: DecisionFormState;
  ack?: { error?: string; comment?: string };
  error?: string;
}

/** The id in the path, or a 404 page: ids are ULIDs, nothing else reaches the services. */
function idParam(c: WebContext): string {
  const id = c.req.param('id') ?? '';
  if (!ID_FORM.test(id)) throw new WebError(404, 'There is no such request.');
  return id;
}

const statusOf = (e: DomainError): ContentfulStatusCode => STATUS_OF[e.code];

export function requestRoutes(deps: WebDeps) {
  const app = new Hono<WebEnv>();

  const show = async (c: WebContext, status: ContentfulStatusCode, id: string, state: PageState = {}) => {
    const v = c.get('viewer');
    const r = await deps.requests.get(v.who, id);
    const g = r.grant;
    const decidable = mayDecide(deps, v.who, r);
    const acknowledgeable = mayAcknowledge(deps, v.who, r);
    // A refusal whose form is no longer offered (someone decided first) is shown at the top.
    const error = state.error ?? (!decidable ? state.decide?.error : undefined) ?? (!acknowledgeable ? state.ack?.error : undefined);
    // Where policy asks for a passkey, the decision is confirmed with one: its challenge, bound to this session and request, is made now.
    let confirm: DecisionConfirm = { method: 'totp' };
    let noPasskey: string | null = null;
    if (decidable && mfaRules(deps).approval === 'webauthn') {
      if (!deps.webauthn) noPasskey = 'This server’s policy asks for a passkey to decide, and passkeys are not available here.';
      else {
        try {
          const options = await deps.webauthn.stepUpOptions({ username: v.who.username, binding: c.get('sessionToken'), target: r.id, site: siteOf(c, { ...deps, webauthn: deps.webauthn }) });
          confirm = { method: 'webauthn', options: JSON.stringify(options) };
        } catch (e) {
          if (!(e instanceof DomainError && e.code === 'mfa_required')) throw e;
          noPasskey = 'This server’s policy asks for a passkey to decide requests, and you have none registered. Register one on your Passkeys page first.';
        }
      }
    }
    return page(c, status, { title: `Request ${r.role} by ${r.requester}`, viewer: v, passkey: confirm.method === 'webauthn' }, (
      <>
        <h1>
          {r.requester} asks for {r.role} <Badge status={r.status} />
        </h1>
        <p class="actions">
          {v.approver && <a href="/ui/queue">Back to the approval queue</a>}
          {v.auditor && <a href={`/ui/audit/requests/${r.id}`}>Full timeline</a>}
        </p>
        {error && (
          <div class="alert" role="alert">
            {error}
          </div>
        )}
        <RequestFacts r={r} />
        <PolicyDecision decision={r.decision} required={r.required_approvals} />
        <h2>Approvals</h2>
        <Approvals r={r} />
        {g && (
          <>
            <h2>Grant</h2>
            <Facts
              rows={[
                ['From', <Time iso={g.starts_at} />],
                ['Until', <Time iso={g.ends_at} />],
                ['Live', g.live ? 'yes' : 'no'],
                ['Given up', <Time iso={g.relinquished_at} />],
                ...(g.review ? [['Break-glass review', g.review.status === 'open' ? <Badge status="open" label="waiting for review" /> : <>acknowledged by {g.review.by} <Time iso={g.review.at} />{g.review.comment ? ` — “${g.review.comment}”` : ''}</>] as [string, Child]] : []),
              ]}
            />
          </>
        )}
        {decidable && (
          <section aria-labelledby="decide-h">
            <h2 id="decide-h">Your decision</h2>
            {noPasskey ? (
              <p class="alert" role="alert">
                {noPasskey} <a href="/ui/account">Passkeys</a>
              </p>
            ) : (
              <DecisionForm r={r} csrf={v.csrf} state={state.decide} confirm={confirm} />
            )}
          </section>
        )}
        {acknowledgeable && (
          <section aria-labelledby="ack-h">
            <h2 id="ack-h">Break-glass review</h2>
            <AcknowledgeForm r={r} csrf={v.csrf} error={state.ack?.error} comment={state.ack?.comment} />
          </section>
        )}
        {r.status === 'pending' && r.requester === v.who.username && <PostButton action={`/ui/requests/${r.id}/cancel`} csrf={v.csrf} label="Cancel this request" />}
        {g?.live && r.requester === v.who.username && r.status === 'approved' && <PostButton action={`/ui/grants/${g.id}/relinquish`} csrf={v.csrf} label="Give up this access now" />}
      </>
    ));
  };

  app.get('/ui/requests/:id', (c) => show(c, 200, idParam(c)));

  app.post('/ui/requests/:id/decide', async (c) => {
    const id = idParam(c);
    const v = c.get('viewer');
    const f = c.get('form');
    const verdict = f['decision'];
    if (verdict !== 'approve' && verdict !== 'deny') throw new WebError(400, 'Choose Approve or Deny.');
    const comment = f['comment'] ?? '';
    const r = await deps.requests.get(v.who, id);
    if (!mayDecide(deps, v.who, r)) {
      if (r.status !== 'pending') return show(c, 409, id, { error: `This request is already ${r.status}.` });
      if (expired(deps, r)) return show(c, 409, id, { error: 'This request has expired unanswered; the requester may file it again.' });
      return show(c, 403, id, { error: 'You may not decide this request.' });
    }
    try {
      // Everything that can be refused before the code is spent is checked first: a refused comment must not use it up.
      checkComment(comment);
      // The code is checked and used up first, for this request and this verdict only.
      const purpose = `request.${verdict}`;
      const clientAddress = deps.clientAddress(c);
      const wa = deps.webauthn;
      const proof =
        mfaRules(deps).approval === 'webauthn' && wa
          ? await wa.verifyStepUp({ username: v.who.username, binding: c.get('sessionToken'), target: id, purpose, site: siteOf(c, { ...deps, webauthn: wa }), response: f['webauthn'] ?? '', clientAddress })
          : await deps.stepUp.verify({ username: v.who.username, totp: f['totp'] ?? '', purpose, target: id, clientAddress });
      const caller = { ...callerOf(c, deps), stepUp: proof };
      await (verdict === 'approve' ? deps.requests.approve(caller, id, comment) : deps.requests.deny(caller, id, comment));
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      if (e instanceof RateLimitedError) c.header('Retry-After', String(e.retryAfter));
      return show(c, statusOf(e), id, { decide: { verdict, comment, error: e.message } });
    }
    return c.redirect(`/ui/requests/${id}`, 303);
  });

  app.post('/ui/requests/:id/cancel', async (c) => {
    const id = idParam(c);
    try {
      await deps.requests.cancel(callerOf(c, deps), id);
    } catch (e) {
      if (e instanceof DomainError && e.code !== 'not_found') return show(c, statusOf(e), id, { error: e.message });
      throw e;
    }
    return c.redirect(`/ui/requests/${id}`, 303);
  });

  app.post('/ui/grants/:id/relinquish', async (c) => {
    const id = idParam(c);
    try {
      await deps.requests.relinquish(callerOf(c, deps), id);
    } catch (e) {
      if (e instanceof DomainError && e.code === 'conflict') return show(c, 409, id, { error: e.message });
      throw e;
    }
    return c.redirect('/ui', 303);
  });

  app.post('/ui/grants/:id/acknowledge', async (c) => {
    const id = idParam(c);
    const comment = c.get('form')['comment'] ?? '';
    try {
      await deps.requests.acknowledge(callerOf(c, deps), id, comment);
    } catch (e) {
      if (e instanceof DomainError && e.code !== 'not_found') return show(c, statusOf(e), id, { ack: { comment, error: e.message } });
      throw e;
    }
    return c.redirect(`/ui/requests/${id}`, 303);
  });

  return app;
}
