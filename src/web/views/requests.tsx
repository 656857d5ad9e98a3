// How a request shows: its facts, the policy's decision, a list of requests,
// and the forms that act on one (decide with step-up, acknowledge, cancel).

import type { FC } from 'hono/jsx';
import type { RequestView } from '../../services/requests.js';
import { Alert, Badge, CodeField, Csrf, DataTable, Facts, TextArea, Time } from './components.js';

export const PolicyDecision: FC<{ decision: RequestView['decision']; required?: number; title?: string }> = ({ decision, required, title }) => (
  <div class={`decision s-${decision.outcome}`}>
    <p>
      <strong>{title ?? 'Policy decision'}:</strong> <Badge status={decision.outcome} /> by rule <code>{decision.rule}</code>
    </p>
    <p>{decision.reason}</p>
    {required !== undefined && required > 0 && <p class="muted">Approvals needed: {required}</p>}
  </div>
);

export const RequestFacts: FC<{ r: RequestView }> = ({ r }) => (
  <Facts
    rows={[
      ['Request', <code>{r.id}</code>],
      ['Requester', r.requester],
      ['Role', r.role],
      ['Principals', r.principals.length > 0 ? <code>{r.principals.join(', ')}</code> : <span class="muted">none (role no longer in the policy)</span>],
      ['Duration', r.extends_grant ? `${r.duration} more (extends grant ${r.extends_grant})` : r.duration],
      ['Reason', r.reason],
      ['Ticket', r.ticket ?? <span class="muted">none</span>],
      ['Break-glass', r.break_glass ? <Badge status="pending" label="break-glass" /> : 'no'],
      ['Status', <Badge status={r.status} />],
      ['Filed', <Time iso={r.created_at} />],
      [r.status === 'pending' ? 'Expires' : 'Closed', r.status === 'pending' ? <Time iso={r.expires_at} /> : <><Time iso={r.closed_at} /> {r.closed_by ? `by ${r.closed_by}` : ''}{r.close_reason ? ` — ${r.close_reason}` : ''}</>],
    ]}
  />
);

export const Approvals: FC<{ r: RequestView }> = ({ r }) =>
  r.approvals.length === 0 ? (
    <p class="muted">No approver has decided yet.</p>
  ) : (
    <ul>
      {r.approvals.map((a) => (
        <li>
          <strong>{a.approver}</strong> {a.decision === 'approve' ? 'approved' : 'denied'} <Time iso={a.at} />
          {a.comment ? ` — “${a.comment}”` : ''}
        </li>
      ))}
    </ul>
  );

/** A compact table of requests (a user's own, or a requester's history). */
export const RequestTable: FC<{ rows: RequestView[]; caption: string }> = ({ rows, caption }) => (
  <DataTable
    caption={caption}
    empty={`${caption}: none.`}
    columns={['Filed', 'Role', 'Duration', 'Status', 'Rule', 'Reason']}
    rows={rows.map((r) => [
      <a href={`/ui/requests/${r.id}`}>
        <Time iso={r.created_at} />
      </a>,
      r.role,
      r.duration,
      <>
        <Badge status={r.status} />
        {r.break_glass ? ' break-glass' : ''}
      </>,
      <code>{r.decision.rule}</code>,
      r.reason,
    ])}
  />
);

export interface DecisionFormState {
  verdict?: 'approve' | 'deny';
  comment?: string;
  error?: string;
}

/**
 * Approve or deny, with a comment and a fresh authenticator code (step-up for
 * this request only). The verdict is a required choice and there is one
 * submit button, so pressing Enter in the code field never picks a verdict.
 */
/**
 * How the decision is confirmed: a code (`totp`), or a passkey, whose options
 * (with a challenge bound to this session and request) the page carries.
 */
export type DecisionConfirm = { method: 'totp' } | { method: 'webauthn'; options: string };

export const DecisionForm: FC<{ r: RequestView; csrf: string; state?: DecisionFormState; confirm?: DecisionConfirm }> = ({ r, csrf, state = {}, confirm = { method: 'totp' } }) => {
  const errId = `decide-error-${r.id}`;
  const passkey = confirm.method === 'webauthn' ? confirm : null;
  return (
    <form
      method="post"
      action={`/ui/requests/${r.id}/decide`}
      class="stack"
      aria-label={`Decide ${r.requester}'s request for ${r.role}`}
      data-webauthn={passkey ? 'authenticate' : undefined}
      data-options={passkey ? passkey.options : undefined}
    >
      <Csrf token={csrf} />
      <Alert message={state.error} id={errId} />
      <fieldset class="verdict">
        <legend>Decision</legend>
        <label class="check" for={`approve-${r.id}`}>
          <input type="radio" id={`approve-${r.id}`} name="decision" value="approve" required checked={state.verdict === 'approve'} />
          Approve
        </label>
        <label class="check" for={`deny-${r.id}`}>
          <input type="radio" id={`deny-${r.id}`} name="decision" value="deny" required checked={state.verdict === 'deny'} />
          Deny
        </label>
      </fieldset>
      <TextArea id={`comment-${r.id}`} name="comment" label="Comment (optional)" value={state.comment} maxlength={1000} />
      {passkey ? (
        <>
          <input type="hidden" name="webauthn" value="" />
          <p class="hint">You confirm the decision with your passkey, for this request only.</p>
          <p class="status" data-webauthn-status role="status" aria-live="polite"></p>
        </>
      ) : (
        <CodeField
          id={`totp-${r.id}`}
          label="Authenticator code, to confirm"
          hint="A fresh code: one already used to log in or for another decision is refused."
          invalid={!!state.error}
          errorId={errId}
        />
      )}
      <div class="actions">
        <button type="submit" class="primary">
          {passkey ? 'Confirm with your passkey' : 'Confirm decision'}
        </button>
      </div>
    </form>
  );
};

export const AcknowledgeForm: FC<{ r: RequestView; csrf: string; error?: string; comment?: string }> = ({ r, csrf, error, comment }) => (
  <form method="post" action={`/ui/grants/${r.grant!.id}/acknowledge`} class="stack" aria-label={`Acknowledge ${r.requester}'s break-glass use of ${r.role}`}>
    <Csrf token={csrf} />
    <Alert message={error} id={`ack-error-${r.id}`} />
    <TextArea id={`ack-comment-${r.id}`} name="comment" label="Review comment" value={comment} maxlength={1000} hint="What you checked: the reason, the ticket, what was done on the servers." />
    <button type="submit" class="primary">
      Acknowledge break-glass use
    </button>
  </form>
);
