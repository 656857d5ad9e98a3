// The `jit-ssh` commands. Each returns an exit code; errors are thrown and
// printed as one line by runCli. The session's (login, logout, roles, status,
// ssh-config) are here; requests.ts and access.ts hold the others.

import os from 'node:os';
import { DEFAULT_SERVER } from '../../config.js';
import { readSecret, readStdin, readLine } from '../prompt.js';
import { ClientError, createApi } from './api.js';
import { readLocalCert, type LocalCert } from './certs.js';
import { liveGrants } from './access.js';
import { json, note, out, session, type Context } from './context.js';
import { localTime, oneLine, table, timeLeft } from './format.js';
import { hostTrust, sshPath } from './host-trust.js';
import { ssoLogin } from './sso.js';

export { session, type Context, type Flags } from './context.js';
export { decideRequest, request, requests } from './requests.js';
export { cert, ssh } from './access.js';

export async function login(ctx: Context): Promise<number> {
  const saved = await ctx.home.session();
  const server = ctx.config.server ?? saved?.server ?? DEFAULT_SERVER;
  if (ctx.flags.sso) {
    const code = await ssoLogin(ctx, server);
    if (code === 0) await hostTrust(ctx, server, { force: true });
    return code;
  }
  const username = ctx.flags.user ?? saved?.username ?? os.userInfo().username;
  const password = ctx.flags['password-stdin'] ? await readStdin() : await readSecret(`Password for ${username} at ${server}: `);
  const totp = ctx.flags.totp ?? (await readLine('TOTP code: ')).trim();
  const res = await createApi(server, null).post<{ token: string; expires_at: string; username: string }>('/v1/auth/login', { username, password, totp });
  await ctx.home.saveSession({ server, username: res.username, token: res.token, expires_at: res.expires_at });
  await hostTrust(ctx, server, { force: true });
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
  const knownHosts = await hostTrust(ctx, api.server);
  const lines = [
    '# ~/.ssh/config — jit-ssh: `jit-ssh cert` (or `jit-ssh ssh ROLE`) refreshes the certificates, and',
    '# `jit-ssh login` (or any `jit-ssh ssh`) the host CA keys. Put this at the end of ~/.ssh/config:',
    '# ssh takes the first value it finds for each option. Replace the Host patterns of each role with',
    '# its servers.',
  ];
  for (const r of roles) {
    const p = ctx.home.keyPaths(r.name);
    lines.push('', `Host ${r.name}-*`, ...(r.principals.length === 1 ? [`    User ${r.principals[0]}`] : []), `    IdentityFile ${sshPath(p.key)}`, `    CertificateFile ${sshPath(p.cert)}`, '    IdentitiesOnly yes');
  }
  lines.push('', '# Every host: check it against the jit-ssh host CA (no "authenticity of host" question), and offer');
  lines.push('# the jit-ssh certificates.', 'Host *');
  if (knownHosts) lines.push(`    UserKnownHostsFile ${sshPath(knownHosts)}`, '    StrictHostKeyChecking yes');
  else lines.push(`    # no host CA keys from ${api.server}: host keys are checked as before`);
  for (const r of roles) {
    const p = ctx.home.keyPaths(r.name);
    lines.push(`    IdentityFile ${sshPath(p.key)}`, `    CertificateFile ${sshPath(p.cert)}`);
  }
  out(lines.join('\n') + '\n');
  return 0;
}
