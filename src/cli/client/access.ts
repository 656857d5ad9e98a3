// Certificates and ssh: `jit-ssh cert` fetches one for a live grant,
// `jit-ssh ssh` makes sure there is one (asking for access when needed) and
// runs ssh with it.

import { spawn } from 'node:child_process';
import os from 'node:os';
import { UsageError } from '../run.js';
import { ClientError, type Api } from './api.js';
import { addToAgent, newKeyPair, newSecurityKeyPair, readLocalCert, storeCert, type LocalCert } from './certs.js';
import { json, note, out, session, type Context } from './context.js';
import { localTime, oneLine, timeLeft } from './format.js';
import { SSH_VALUE_OPTS, hostTrust, hostTrustArgs, leftToUs } from './host-trust.js';
import { fileRequest, verdict } from './requests.js';

/** Fetches a certificate for a grant into $JIT_SSH_HOME/keys/ROLE and the agent (a security key's stays out of it). */
async function fetchCert(ctx: Context, api: Api, grant: { id: string; role: string }, command: 'cert' | 'ssh'): Promise<LocalCert> {
  const comment = `jit-ssh ${grant.role} ${grant.id}`;
  const sk = ctx.flags.sk === true;
  if (sk) note(`making a key on your security key for ${grant.role}: touch it when it blinks, and give its PIN if asked`);
  const pair = sk ? await newSecurityKeyPair(ctx.home, comment, ctx.env) : newKeyPair(comment);
  let res;
  try {
    res = await api.post('/v1/certificates', { public_key: pair.publicKey, request_id: grant.id });
  } catch (e) {
    // The server names the rule; the helper knows the way out.
    if (e instanceof ClientError && e.code === 'key_type_not_allowed') {
      throw new ClientError(`${grant.role} takes only FIDO security keys: plug yours in and run jit-ssh ${command} --sk`, e.status, e.code);
    }
    throw e;
  }
  const cert = await storeCert(ctx.home, grant.role, pair.privateKey, pair.publicKey, res.certificate);
  // A verify-required security key in the agent would need an askpass program for its PIN; ssh asks at the terminal itself.
  if (sk) note('the security key stays out of ssh-agent: ssh asks it for the touch and PIN at each login');
  else if (!ctx.flags['no-agent']) {
    try {
      if (await addToAgent(cert, ctx.env)) note(`added to ssh-agent until the certificate expires (${timeLeft(cert.validBefore)})`);
    } catch (e) {
      note(`warning: ssh-add failed: ${oneLine((e as Error).message, 120)}`);
    }
  }
  return cert;
}

/** The caller's grants still live, extensions left out (they share their grant's window). */
export async function liveGrants(api: Api, username: string): Promise<any[]> {
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
  const c = await fetchCert(ctx, api, { id: grant.id, role: grant.role }, 'cert');
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
  if (grant && Date.parse(grant.grant.ends_at) - Date.now() > MARGIN_MS) return fetchCert(ctx, api, grant, 'ssh');
  const r = await fileRequest(ctx, api, role, { for: ctx.flags.for, reason: ctx.flags.reason, ticket: ctx.flags.ticket, breakGlass: ctx.flags['break-glass'], wait: true });
  if (r === null) process.exit(130);
  if (r.status !== 'approved') throw new ClientError(verdict(r));
  note(verdict(r));
  return fetchCert(ctx, api, r, 'ssh');
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
  // Hosts are checked against the host CA (no trust on first use), unless the arguments say otherwise.
  const knownHosts = !leftToUs(sshArgs) ? null : await hostTrust(ctx, ctx.config.server ?? (await ctx.home.session())?.server ?? null);
  const args = ['-o', `CertificateFile=${c.certPath}`, '-i', c.keyPath, '-o', 'IdentitiesOnly=yes', ...hostTrustArgs(sshArgs, knownHosts), ...login, ...sshArgs];
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
