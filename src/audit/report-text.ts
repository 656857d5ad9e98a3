// How a grant was approved, and its review, as the CSV and Markdown cells write them.

import { describeAuth } from '../core/auth-method.js';
import type { ReportGrant } from './report-types.js';

/** How a grant was approved, in one cell: auto:<rule>, approved:<approvers>, break-glass. */
export function approvalText(g: ReportGrant): string {
  if (g.approval === 'break_glass') return 'break-glass';
  if (g.approval === 'auto') return `auto:${g.rule}`;
  return `approved:${g.approvers.join(',')}`;
}

/** A break-glass grant's review in one cell: open, or acknowledged by whom and when, with the comment. */
export function reviewText(g: ReportGrant): string {
  if (!g.review) return '';
  if (g.review.status === 'open') return 'open';
  return `acknowledged by ${g.review.by} at ${g.review.at}${g.review.comment ? `: ${g.review.comment}` : ''}`;
}

/** How the requester and the approvers had signed in, in one cell: `alice: oidc https://… ; carol: password+totp`. */
export function signInText(g: ReportGrant): string {
  const who = (name: string, a: ReportGrant['sign_in']['requester']) => `${name}: ${a ? describeAuth(a) : 'not recorded'}`;
  const confirmed = (s: { method: string; credential?: string } | undefined) =>
    !s ? '' : s.method === 'webauthn' ? `, approved with passkey ${s.credential ? `${s.credential.slice(0, 12)}${s.credential.length > 12 ? '…' : ''}` : ''}`.trimEnd() : `, approved with a ${s.method} code`;
  return [who(g.user, g.sign_in.requester), ...g.sign_in.approvers.map((x) => who(x.approver, x.auth) + confirmed(x.step_up))].join('; ');
}
