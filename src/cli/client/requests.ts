// `jit-ssh request`, `requests`, `approve` and `deny`. A request the server
// refuses (denied, or ended while waiting) is a failure: its one-line reason
// goes to stderr and the exit code is 1; with --json the request itself is
// still printed on stdout.

import { readLine } from '../prompt.js';
import { UsageError } from '../run.js';
import { ClientError, type Api } from './api.js';
import { confirm, json, note, out, requireDuration, session, tty, type Context } from './context.js';
import { localTime, oneLine, table, timeLeft } from './format.js';
import { waitForDecision } from './wait.js';

function describe(r: any): string {
  return [
    `request   ${r.id}`,
    `requester ${r.requester}`,
    `role      ${r.role} (${r.principals.join(', ') || 'no principals'})`,
    `duration  ${r.duration}${r.extends_grant ? ` more, extending ${r.extends_grant}` : ''}${r.break_glass ? '  BREAK-GLASS' : ''}`,
    `reason    ${r.reason}`,
    `ticket    ${r.ticket ?? '-'}`,
    `policy    ${r.status}: ${r.decision.reason} [${r.decision.rule}]`,
    ...(r.approvals.length ? [`decided    ${r.approvals.map((a: any) => `${a.approver} ${a.decision}d${a.comment ? ` (${a.comment})` : ''}`).join('; ')}`] : []),
    ...(r.grant ? [`grant     ${localTime(new Date(r.grant.starts_at))} → ${localTime(new Date(r.grant.ends_at))}${r.grant.live ? ` (${timeLeft(new Date(r.grant.ends_at))} left)` : ''}`] : []),
  ].join('\n');
}

/** Files a request; waits when asked to; returns the final request (null when the wait was interrupted). */
export async function fileRequest(ctx: Context, api: Api, role: string, input: { for?: string; reason?: string; ticket?: string; breakGlass?: boolean; wait: boolean }): Promise<any> {
  let reason = input.reason;
  if (!reason) {
    if (!tty()) throw new UsageError('--reason is required: say why you need access');
    reason = (await readLine(`Why do you need ${role}? `)).trim();
  }
  const r = await api.post('/v1/requests', { role, duration: requireDuration(input.for), reason, ticket: input.ticket, break_glass: input.breakGlass || undefined });
  if (r.status === 'pending' && input.wait) {
    if (!ctx.flags.json) note(`request ${r.id} for ${role} is pending: ${r.decision.reason}`);
    return waitForDecision(api, r, { pollMs: ctx.config.pollMs, tty: tty(), out: process.stderr, confirm });
  }
  return r;
}

/** A request's outcome in one line: approved until when, pending on what, or why it was refused. */
export function verdict(r: any): string {
  if (r.status === 'approved') return `approved: ${r.role} until ${localTime(new Date(r.grant?.ends_at ?? r.expires_at))} (request ${r.id}; ${r.decision.reason})`;
  if (r.status === 'pending') return `pending: ${r.decision.reason} (request ${r.id})`;
  return `${r.status}: ${r.close_reason ?? r.decision.reason} (request ${r.id})`;
}

/** Whether a request ended without access: denied, expired unanswered, or cancelled. */
const refused = (r: any) => r.status === 'denied' || r.status === 'expired' || r.status === 'cancelled';

export async function request(ctx: Context, role: string | undefined): Promise<number> {
  if (!role) throw new UsageError('usage: jit-ssh request ROLE --for DURATION --reason TEXT');
  const { api } = await session(ctx);
  if (ctx.flags['dry-run']) {
    const d = await api.post('/v1/requests', { role, duration: requireDuration(ctx.flags.for), reason: ctx.flags.reason ?? '', ticket: ctx.flags.ticket, break_glass: ctx.flags['break-glass'] || undefined, dry_run: true });
    if (ctx.flags.json) json(d);
    else out(`would be ${d.status}: ${d.decision.reason} [${d.decision.rule}] (nothing was filed)\n`);
    return d.status === 'denied' ? 1 : 0;
  }
  const r = await fileRequest(ctx, api, role, { for: ctx.flags.for, reason: ctx.flags.reason, ticket: ctx.flags.ticket, breakGlass: ctx.flags['break-glass'], wait: !!ctx.flags.wait });
  if (r === null) return 130;
  if (ctx.flags.json) json(r);
  if (refused(r)) {
    note(verdict(r).replace(/\s*[\r\n]+\s*/g, ' '));
    return 1;
  }
  if (!ctx.flags.json) out(verdict(r) + '\n');
  return 0;
}

export async function requests(ctx: Context): Promise<number> {
  const { api, username } = await session(ctx);
  const { requests } = await api.get(`/v1/requests${ctx.flags.pending ? '?status=pending' : ''}`);
  if (ctx.flags.json) json({ requests });
  else if (requests.length === 0) note(ctx.flags.pending ? 'no pending requests you may decide or have filed' : 'no requests');
  else {
    out(table([['ID', 'REQUESTER', 'ROLE', 'DURATION', 'STATUS', 'TICKET', 'REASON'], ...requests.map((r: any) => [r.id, r.requester === username ? `${r.requester} (you)` : r.requester, r.role, r.duration, r.break_glass ? `${r.status}!` : r.status, r.ticket ?? '-', oneLine(r.reason, 40)])]));
  }
  return 0;
}

export async function decideRequest(ctx: Context, id: string | undefined, verb: 'approve' | 'deny'): Promise<number> {
  if (!id) throw new UsageError(`usage: jit-ssh ${verb} ID [--comment TEXT] [--totp CODE]`);
  const { api } = await session(ctx);
  const r = await api.get(`/v1/requests/${encodeURIComponent(id)}`);
  // The approver sees what they decide on before deciding.
  process.stderr.write(describe(r) + '\n');
  if (!ctx.flags.yes && process.stdin.isTTY && !(await confirm(`${verb === 'approve' ? 'Approve' : 'Deny'} this request? [y/N] `))) {
    note('nothing done');
    return 1;
  }
  const decide = (totp: string | undefined) => api.post(`/v1/requests/${encodeURIComponent(id)}/${verb}`, { comment: ctx.flags.comment, ...(totp ? { totp } : {}) });
  let done;
  try {
    done = await decide(ctx.flags.totp);
  } catch (e) {
    // Policy wants a fresh code for this approval: ask for one where someone can answer.
    if (!(e instanceof ClientError) || e.code !== 'step_up_required') throw e;
    if (!process.stdin.isTTY) throw new ClientError(`${e.message.replace(/: send "totp".*$/, '')}: give it with --totp CODE`, e.status, e.code);
    done = await decide((await readLine(`Code from your authenticator to ${verb} ${id}: `)).trim());
  }
  if (ctx.flags.json) json(done);
  else out(`${verb === 'approve' ? 'approved' : 'denied'}; the request is now ${done.status}\n`);
  return 0;
}
