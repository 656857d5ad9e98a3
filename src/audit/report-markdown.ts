// The access review as Markdown: what an auditor reads without SQL.

import { formatDuration } from '../core/duration.js';
import { approvalText, reviewText, signInText } from './report-text.js';
import type { AccessReport, Bounded, GrantTotals, ReportGrant } from './report-types.js';

/**
 * Table cell text. User-supplied text must not break the table or turn into
 * a link, HTML or emphasis; intraword underscores (auto_approve[0]) are safe
 * in CommonMark and stay readable.
 */
function mdCell(value: string | number | null): string {
  if (value === null || value === '') return '–';
  return String(value).replace(/[\r\n]+/g, ' ').replace(/[\\`*[\]<>|]/g, (c) => `\\${c}`);
}

function mdTable(head: string[], rows: Array<Array<string | number | null>>): string {
  if (rows.length === 0) return '_None._';
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map((r) => line(r.map(mdCell)))].join('\n');
}

/** Paragraphs and tables of a section, with the note a cut list needs. */
function mdList(table: string, list: Bounded<unknown>, what: string): string {
  return list.truncated ? `${table}\n\n_Only the first ${list.limit} ${what} are listed; the rest were cut. Narrow the period to see them all._` : table;
}

const dur = (s: number) => formatDuration(s);
const share = (n: number, s: number) => (n === 0 ? '0' : `${n} (${dur(s)})`);

function totalsTable(rows: Array<{ key: string } & GrantTotals>, keyName: string): string {
  return mdTable(
    [keyName, 'Grants', 'Granted time', 'Auto-approved', 'Rules', 'Approved', 'Approvers', 'Break-glass'],
    rows.map((r) => [
      r.key,
      r.grants,
      dur(r.granted_seconds),
      share(r.auto_approved.grants, r.auto_approved.granted_seconds),
      r.auto_approved.rules.map((x) => `${x.rule} ×${x.grants}`).join(', '),
      share(r.approved.grants, r.approved.granted_seconds),
      r.approved.approvers.map((x) => `${x.approver} ×${x.grants}`).join(', '),
      share(r.break_glass.grants, r.break_glass.granted_seconds),
    ]),
  );
}

const grantHead = ['Grant', 'User', 'Role', 'Starts', 'Ends', 'Duration', 'Approval', 'Reason', 'Ticket', 'Certificates', 'First used', 'Last used', 'Extensions', 'Signed in'];
const grantRow = (g: ReportGrant) => [g.grant_id, g.user, g.role, g.starts_at, g.ends_at, dur(g.duration_seconds), approvalText(g), g.reason, g.ticket, g.certificates, g.first_used, g.last_used, g.extensions, signInText(g)];
const bgHead = ['Grant', 'User', 'Role', 'Starts', 'Duration', 'Reason', 'Review', 'Reviewed by', 'Reviewed at', 'Comment'];
const bgRow = (g: ReportGrant) => [g.grant_id, g.user, g.role, g.starts_at, dur(g.duration_seconds), g.reason, g.review?.status === 'open' ? 'OPEN' : 'acknowledged', g.review?.by ?? null, g.review?.at ?? null, g.review?.comment ?? null];

export function renderMarkdown(r: AccessReport): string {
  const t = r.totals;
  const section = (title: string, ...parts: string[]) => `## ${title}\n\n${parts.filter((x) => x !== '').join('\n\n')}`;
  const bg = r.break_glass;
  const nu = r.never_used;
  return [
    `# Access review ${r.period.since} to ${r.period.until}`,
    `From ${r.period.since} (included) to ${r.period.until} (excluded); generated ${r.generated_at}. ` +
      'A grant belongs to the period in which it started, a request to the period in which it was filed; review and usage states are as of generation.',
    section('Totals', mdTable(['Requests', 'Approved', 'Pending', 'Denied', 'Expired', 'Cancelled', 'Grants', 'Certificates issued', 'Users'], [[t.requests, t.approved, t.pending, t.denied, t.expired, t.cancelled, t.grants, t.certificates, t.users]])),
    section('Grants by role', mdList(totalsTable(r.grants_by_role.rows.map(({ role, ...x }) => ({ key: role, ...x })), 'Role'), r.grants_by_role, 'roles')),
    section('Grants by user', mdList(totalsTable(r.grants_by_user.rows.map(({ user, ...x }) => ({ key: user, ...x })), 'User'), r.grants_by_user, 'users')),
    section(
      'Break-glass use',
      `${bg.uses.rows.length}${bg.uses.truncated ? '+' : ''} break-glass grant(s) in the period; **${bg.open_reviews} still awaiting review**.`,
      mdList(mdTable(bgHead, bg.uses.rows.map(bgRow)), bg.uses, 'break-glass grants'),
      bg.open_from_earlier.rows.length > 0 ? `Still awaiting review from before the period:\n\n${mdList(mdTable(bgHead, bg.open_from_earlier.rows.map(bgRow)), bg.open_from_earlier, 'open reviews')}` : '',
    ),
    section(
      'Longest grants',
      `The ${r.longest_grants.limit} longest grants, extensions included${r.longest_grants.truncated ? ` (top ${r.longest_grants.limit} of ${t.grants} grants)` : ''}.`,
      mdTable(grantHead, r.longest_grants.rows.map(grantRow)),
    ),
    section('Extensions', mdList(mdTable(['Grant', 'User', 'Role', 'Extension requests', 'Approved', 'Time added', 'Approvers'], r.extensions.rows.map((e) => [e.grant_id, e.user, e.role, e.requests, e.approved, dur(e.added_seconds), e.approvers.join(', ')])), r.extensions, 'extended grants')),
    section(
      'Grants never used',
      nu.usage_data
        ? 'Grants whose certificates were never seen in an ingested sshd log; only as complete as the logs ingested.'
        : '> **Note:** no sshd logs have been ingested (no certificate use was ever recorded), so whether grants were used is unknown and none is listed here.',
      nu.usage_data ? mdList(mdTable(grantHead, nu.grants.rows.map(grantRow)), nu.grants, 'unused grants') : '',
      `${nu.without_certificate} grant(s) in the period never had a certificate issued.`,
    ),
    section(
      'Standing-access candidates',
      `Requests for the same role on at least ${r.standing_access.min_days} distinct days (UTC), whatever their outcome.`,
      mdList(mdTable(['User', 'Role', 'Days', 'Requests', 'First', 'Last'], r.standing_access.candidates.rows.map((c) => [c.user, c.role, c.days, c.requests, c.first_at, c.last_at])), r.standing_access.candidates, 'candidates'),
    ),
    section('Policy changes', mdList(mdTable(['At', 'By', 'Digest', 'Roles', 'File'], r.policy_changes.rows.map((c) => [c.at, c.actor, c.digest, c.roles, c.target])), r.policy_changes, 'changes')),
    section('Revocations', mdList(mdTable(['Serial', 'User', 'Role', 'Grant', 'Revoked at', 'By', 'Reason', 'Valid until'], r.revocations.rows.map((v) => [v.serial, v.user, v.role, v.grant_id, v.revoked_at, v.revoked_by, v.reason, v.valid_before])), r.revocations, 'revocations')),
    section('All grants', mdList(mdTable([...grantHead, 'Review'], r.grants.rows.map((g) => [...grantRow(g), reviewText(g)])), r.grants, 'grants')),
  ].join('\n\n') + '\n';
}
