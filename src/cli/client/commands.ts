// The `jit-ssh` commands. Each returns an exit code; errors are thrown and
// printed as one line by runCli.

import { spawn } from 'node:child_process';
import os from 'node:os';
import { DEFAULT_SERVER, type ClientConfig } from '../../config.js';
import { parseDuration } from '../../core/duration.js';
import { readSecret, readStdin, readLine } from '../prompt.js';
import { UsageError } from '../run.js';
import { ClientError, createApi, LOGIN_HINT, type Api } from './api.js';
import { addToAgent, newKeyPair, readLocalCert, storeCert, type LocalCert } from './certs.js';
import { localTime, oneLine, table, timeLeft } from './format.js';
import { Home } from './home.js';
import { waitForDecision } from './wait.js';

export interface Flags {
  json?: boolean;
  user?: string;
  'password-stdin'?: boolean;
  totp?: string;
  for?: string;
  reason?: string;
  ticket?: string;
  'break-glass'?: boolean;
  wait?: boolean;
  'dry-run'?: boolean;
  pending?: boolean;
  comment?: string;
  yes?: boolean;
  'no-agent'?: boolean;
}

export interface Context {
  config: ClientConfig;
  home: Home;
  flags: Flags;
  env: NodeJS.ProcessEnv;
}

const out = (text: string) => process.stdout.write(text);
const note = (text: string) => process.stderr.write(text + '\n');
const json = (value: unknown) => out(JSON.stringify(value, null, 2) + '\n');
const tty = () => process.stdin.isTTY === true && process.stderr.isTTY === true;

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  return /^y(es)?$/i.test((await readLine(question)).trim());
}

/** The API with the saved session; a missing or expired session says to log in. */
export async function session(ctx: Context): Promise<{ api: Api; username: string }> {
  const s = await ctx.home.session();
  if (!s || Date.parse(s.expires_at) <= Date.now()) throw new ClientError(LOGIN_HINT);
  return { api: createApi(ctx.config.server ?? s.server, s.token), username: s.username };
}

function requireDuration(text: string | undefined): string | undefined {
  if (text !== undefined && parseDuration(text) === null) throw new UsageError(`--for ${text}: write a duration such as 90s, 15m, 2h or 1h30m`);
  return text;
}

export async function login(ctx: Context): Promise<number> {
  const saved = await ctx.home.session();
  const server = ctx.config.server ?? saved?.server ?? DEFAULT_SERVER;
  const username = ctx.flags.user ?? saved?.username ?? os.userInfo().username;
  const password = ctx.flags['password-stdin'] ? await readStdin() : await readSecret(`Password for ${username} at ${server}: `);
  const totp = ctx.flags.totp ?? (await readLine('TOTP code: ')).trim();
  const res = await createApi(server, null).post<{ token: string; expires_at: string; username: string }>('/v1/auth/login', { username, password, totp });
  await ctx.home.saveSession({ server, username: res.username, token: res.token, expires_at: res.expires_at });
  if (ctx.flags.json) json({ username: res.username, server, expires_at: res.expires_at });
  else note(`logged in to ${server} as ${res.username} until ${localTime(new Date(res.expires_at))}`);
  return 0;
}

export async function logout(ctx: Context): Promise<number> {
  const s = await ctx.home.session();
  if (!s) {
    note('not logged in');
    return 0;
  }
  try {
    await createApi(ctx.config.server ?? s.server, s.token).post('/v1/auth/logout');
  } catch (e) {
    // The local session goes either way; say if the server could not be told.
    if ((e as ClientError).status !== 401) note(`warning: the server did not confirm the logout: ${(e as Error).message}`);
  }
  await ctx.home.forgetSession();
  note(`logged out of ${s.server}`);
  return 0;
}

export async function roles(ctx: Context): Promise<number> {
  const { api } = await session(ctx);
  const { roles } = await api.get('/v1/roles');
  if (ctx.flags.json) json({ roles });
  else if (roles.length === 0) note('there are no roles you may request');
  else {
    out(table([['ROLE', 'PRINCIPALS', 'MAX', 'APPROVAL', 'DESCRIPTION'], ...roles.map((r: any) => [r.name, r.principals.join(','), r.max_duration, r.needs_approval ? 'approvers' : 'auto', oneLine(r.description || '-', 50)])]));
  }
  return 0;
}

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
async function fileRequest(ctx: Context, api: Api, role: string, input: { for?: string; reason?: string; ticket?: string; breakGlass?: boolean; wait: boolean }): Promise<any> {
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

function verdict(r: any): string {
  if (r.status === 'approved') return `approved: ${r.role} until ${localTime(new Date(r.grant?.ends_at ?? r.expires_at))} (request ${r.id}; ${r.decision.reason})`;
  if (r.status === 'pending') return `pending: ${r.decision.reason} (request ${r.id})`;
  return `${r.status}: ${r.close_reason ?? r.decision.reason} (request ${r.id})`;
}

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
  else out(verdict(r) + '\n');
  return r.status === 'denied' || r.status === 'expired' || r.status === 'cancelled' ? 1 : 0;
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

/** Fetches a certificate for a grant into $JIT_SSH_HOME/keys/ROLE and the agent. */
async function fetchCert(ctx: Context, api: Api, grant: { id: string; role: string }): Promise<LocalCert> {
  const pair = newKeyPair(`jit-ssh ${grant.role} ${grant.id}`);
  const res = await api.post('/v1/certificates', { public_key: pair.publicKey, request_id: grant.id });
  const cert = await storeCert(ctx.home, grant.role, pair.privateKey, pair.publicKey, res.certificate);
  if (!ctx.flags['no-agent']) {
    try {
      if (await addToAgent(cert, ctx.env)) note(`added to ssh-agent until the certificate expires (${timeLeft(cert.validBefore)})`);
    } catch (e) {
      note(`warning: ssh-add failed: ${oneLine((e as Error).message, 120)}`);
    }
  }
  return cert;
}

async function liveGrants(api: Api, username: string): Promise<any[]> {
  const { requests } = await api.get('/v1/requests?status=approved');
  return requests.filter((r: any) => r.requester === username && !r.extends_grant && r.grant?.live);
}

export async function cert(ctx: Context, id: string | undefined): Promise<number> {
  const { api, username } = await session(ctx);
  let grant: any;
  if (id) grant = await api.get(`/v1/requests/${encodeURIComponent(id)}`);
  else {
    const live = await liveGrants(api, username);
    if (live.length === 0) throw new ClientError('you have no live grant: jit-ssh request ROLE --for DURATION --reason TEXT');
    if (live.length > 1) throw new UsageError(`you have ${live.length} live grants (${live.map((g) => `${g.role} ${g.id}`).join(', ')}); name one`);
    grant = live[0];
  }
  const c = await fetchCert(ctx, api, { id: grant.id, role: grant.role });
  if (ctx.flags.json) json({ role: c.role, principals: c.principals, serial: c.serial, key_id: c.keyId, valid_before: c.validBefore.toISOString(), key: c.keyPath, certificate: c.certPath });
  else out(`certificate for ${c.role}: principals ${c.principals.join(', ')}, valid until ${localTime(c.validBefore)}\n  key ${c.keyPath}\n  cert ${c.certPath}\n`);
  return 0;
}

const MARGIN_MS = 30_000;

/** A certificate for `role` with some life left: the one on disk, else one from a live grant, else a new request. */
async function ensureCert(ctx: Context, role: string): Promise<LocalCert> {
  const local = await readLocalCert(ctx.home, role);
  if (local && local.validBefore.getTime() - Date.now() > MARGIN_MS) return local;
  const { api, username } = await session(ctx);
  const grant = (await liveGrants(api, username)).filter((g) => g.role === role).sort((a, b) => Date.parse(b.grant.ends_at) - Date.parse(a.grant.ends_at))[0];
  if (grant && Date.parse(grant.grant.ends_at) - Date.now() > MARGIN_MS) return fetchCert(ctx, api, grant);
  const r = await fileRequest(ctx, api, role, { for: ctx.flags.for, reason: ctx.flags.reason, ticket: ctx.flags.ticket, breakGlass: ctx.flags['break-glass'], wait: true });
  if (r === null) process.exit(130);
  if (r.status !== 'approved') throw new ClientError(verdict(r));
  note(verdict(r));
  return fetchCert(ctx, api, r);
}

async function pickRole(ctx: Context, given: string | undefined): Promise<string> {
  if (given) return given;
  const local = [];
  for (const role of await ctx.home.roles()) {
    const c = await readLocalCert(ctx.home, role);
    if (c && c.validBefore.getTime() > Date.now() + MARGIN_MS) local.push(role);
  }
  if (local.length === 1) return local[0]!;
  const { api } = await session(ctx);
  const { roles } = await api.get('/v1/roles');
  if (roles.length === 1) return roles[0].name;
  throw new UsageError(`name a role: jit-ssh ssh ROLE -- HOST (yours: ${roles.map((r: any) => r.name).join(', ') || 'none'})`);
}

/** ssh's own options that take a value: the first other argument is the destination. */
const SSH_VALUE_OPTS = new Set('BbcDEeFIiJLlmOoPpQRSWw'.split(''));

function hasLoginName(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-l' || /^-l./.test(a)) return true;
    if (a.startsWith('-') && a.length > 1) {
      const letter = a[a.length - 1]!;
      if (SSH_VALUE_OPTS.has(letter) && a.length === 2) i++;
      if (/^-o/.test(a) && /user=/i.test(a + (args[i] ?? ''))) return true;
      continue;
    }
    return a.includes('@') && !a.startsWith('ssh://') ? true : /^ssh:\/\/[^/]*@/.test(a);
  }
  return false;
}

export async function ssh(ctx: Context, roleArg: string | undefined, sshArgs: string[]): Promise<number> {
  const role = await pickRole(ctx, roleArg);
  const c = await ensureCert(ctx, role);
  // With one principal and no login name given, log in as that principal.
  const login = !hasLoginName(sshArgs) && c.principals.length === 1 ? ['-l', c.principals[0]!] : [];
  const args = ['-o', `CertificateFile=${c.certPath}`, '-i', c.keyPath, '-o', 'IdentitiesOnly=yes', ...login, ...sshArgs];
  const child = spawn(ctx.env['JIT_SSH_SSH'] || 'ssh', args, { stdio: 'inherit', env: ctx.env });
  // ssh handles the terminal's signals itself; we only wait for it.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new ClientError(`cannot run ssh: ${e.message}`)));
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0));
    });
  });
}

export async function status(ctx: Context): Promise<number> {
  const s = await ctx.home.session();
  const live = s && Date.parse(s.expires_at) > Date.now();
  const certs: LocalCert[] = [];
  for (const role of await ctx.home.roles()) {
    const c = await readLocalCert(ctx.home, role);
    if (c) certs.push(c);
  }
  let grants: any[] = [];
  let serverError: string | null = null;
  if (live) {
    try {
      grants = await liveGrants(createApi(ctx.config.server ?? s.server, s.token), s.username);
    } catch (e) {
      serverError = (e as Error).message;
    }
  }
  if (ctx.flags.json) {
    json({
      session: s ? { server: s.server, username: s.username, expires_at: s.expires_at, live: !!live } : null,
      grants: grants.map((g) => ({ id: g.id, role: g.role, ends_at: g.grant.ends_at, break_glass: g.break_glass })),
      certificates: certs.map((c) => ({ role: c.role, principals: c.principals, serial: c.serial, valid_before: c.validBefore.toISOString(), live: c.validBefore.getTime() > Date.now(), certificate: c.certPath })),
      ...(serverError ? { error: serverError } : {}),
    });
    return 0;
  }
  out(s ? `session: ${s.username} at ${s.server}, ${live ? `${timeLeft(new Date(s.expires_at))} left` : 'expired (run jit-ssh login)'}\n` : 'session: not logged in (run jit-ssh login)\n');
  if (serverError) out(`grants: unknown (${serverError})\n`);
  else if (live) out(grants.length ? table([['GRANT', 'ROLE', 'ENDS', 'LEFT'], ...grants.map((g) => [g.id, g.role, localTime(new Date(g.grant.ends_at)), timeLeft(new Date(g.grant.ends_at))])]) : 'grants: none live\n');
  out(certs.length ? table([['CERTIFICATE', 'PRINCIPALS', 'VALID UNTIL', 'LEFT'], ...certs.map((c) => [c.role, c.principals.join(','), localTime(c.validBefore), timeLeft(c.validBefore)])]) : 'certificates: none\n');
  return 0;
}

export async function sshConfig(ctx: Context): Promise<number> {
  const { api } = await session(ctx);
  const { roles } = await api.get('/v1/roles');
  const lines = [
    '# ~/.ssh/config — jit-ssh: `jit-ssh cert` (or `jit-ssh ssh ROLE`) refreshes these files.',
    '# Replace the Host patterns with the servers of each role.',
  ];
  for (const r of roles) {
    const p = ctx.home.keyPaths(r.name);
    lines.push('', `Host ${r.name}-*`, ...(r.principals.length === 1 ? [`    User ${r.principals[0]}`] : []), `    IdentityFile ${p.key}`, `    CertificateFile ${p.cert}`, '    IdentitiesOnly yes');
  }
  out(lines.join('\n') + '\n');
  return 0;
}
