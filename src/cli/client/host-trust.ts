// Host trust: the engineer's ssh checks servers against the host CA instead of
// asking "The authenticity of host … can't be established" (trust on first
// use). The helper keeps $JIT_SSH_HOME/known_hosts: one `@cert-authority
// PATTERNS KEY` line per host CA key the server lists at /v1/host-ca.pub (the
// signer and, during a rotation, the older keys still trusted), and an
// `@revoked * KEY` line per key it names as retired, so a host certificate
// signed by a retired host CA key is refused. It is fetched at login, and
// again when it is missing, older than a day, from another server or for other
// patterns; `jit-ssh ssh` points ssh at it with StrictHostKeyChecking=yes.

import { promises as fs } from 'node:fs';
import { parseUserPublicKey } from '../../ssh/pubkey.js';
import { ClientError } from './api.js';
import { note, type Context } from './context.js';
import { oneLine } from './format.js';

/** Older than this, the file is fetched again before ssh uses it. */
export const HOST_TRUST_MAX_AGE_MS = 24 * 3600 * 1000;
const MAX_BODY = 64 * 1024;
const HEADER = /^# jit-ssh host CA keys from (\S+) for hosts (\S+), fetched at (\S+)$/;

interface Held {
  server: string;
  patterns: string;
  fetchedAt: Date;
}

/** The key's "type base64", once it is a plain public key ssh reads (no certificate, no options). */
function keyPair(line: string, what: string): string {
  const [type, b64] = line.trim().split(/\s+/);
  if (!type || !b64 || type.includes('-cert-')) throw new ClientError(`${what}: ${oneLine(line, 60)} is not a public key`);
  try {
    parseUserPublicKey(`${type} ${b64}`);
  } catch (e) {
    throw new ClientError(`${what}: ${oneLine(line, 60)} is not a public key: ${(e as Error).message}`);
  }
  return `${type} ${b64}`;
}

/** The known_hosts file for the body of /v1/host-ca.pub. */
export function knownHostsText(body: string, server: string, patterns: string, at: Date): string {
  const what = `${server}/v1/host-ca.pub`;
  const trusted: string[] = [];
  const revoked: string[] = [];
  for (const raw of body.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('# retired ')) revoked.push(keyPair(line.slice('# retired '.length), what));
    else if (!line.startsWith('#')) trusted.push(keyPair(line, what));
  }
  const live = trusted.filter((k) => !revoked.includes(k));
  if (live.length === 0) throw new ClientError(`${what} lists no host CA key`);
  return [
    `# jit-ssh host CA keys from ${server} for hosts ${patterns}, fetched at ${at.toISOString()}`,
    '# Rewritten by jit-ssh (login, ssh, config): edits here are lost. Your own known_hosts is not read',
    '# by `jit-ssh ssh` unless you give -o UserKnownHostsFile yourself.',
    ...live.map((k) => `@cert-authority ${patterns} ${k} jit-ssh-host-ca`),
    ...revoked.map((k) => `@revoked * ${k} jit-ssh-host-ca-retired`),
    '',
  ].join('\n');
}

async function held(file: string): Promise<Held | null> {
  let first: string;
  try {
    first = (await fs.readFile(file, 'utf8')).split('\n', 1)[0]!;
  } catch {
    return null;
  }
  const m = HEADER.exec(first);
  if (!m || Number.isNaN(Date.parse(m[3]!))) return null;
  return { server: m[1]!, patterns: m[2]!, fetchedAt: new Date(m[3]!) };
}

/** Fetches /v1/host-ca.pub and writes the known_hosts file; throws ClientError when it cannot. */
export async function fetchHostTrust(ctx: Context, server: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${server}/v1/host-ca.pub`, { signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    throw new ClientError(`cannot reach ${server}: ${cause?.code ?? (e as Error).message}`);
  }
  const body = await res.text();
  if (res.status === 404) throw new ClientError(`${server} signs no host certificates (no /v1/host-ca.pub)`, 404);
  if (!res.ok) throw new ClientError(`${server}/v1/host-ca.pub answered ${res.status}`, res.status);
  if (body.length > MAX_BODY) throw new ClientError(`${server}/v1/host-ca.pub is too large`);
  await ctx.home.write(ctx.home.knownHostsFile, knownHostsText(body, server, ctx.config.hostPatterns, new Date()));
}

/**
 * The known_hosts file to give ssh, fetched first when `force`d or when it is
 * missing, stale, from another server or for other patterns. When it cannot be
 * fetched, a held copy for the same server is used (with a note); with none,
 * null (with a note): ssh then checks host keys as its own configuration says.
 */
export async function hostTrust(ctx: Context, server: string | null, { force = false } = {}): Promise<string | null> {
  const file = ctx.home.knownHostsFile;
  const h = await held(file);
  const same = h !== null && (server === null || h.server === server) && h.patterns === ctx.config.hostPatterns;
  if (same && !force && Date.now() - h.fetchedAt.getTime() < HOST_TRUST_MAX_AGE_MS) return file;
  if (server === null) return same ? file : null;
  try {
    await fetchHostTrust(ctx, server);
    return file;
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    if (same) {
      note(`warning: host CA keys not refreshed (${e.message}); using those fetched at ${h.fetchedAt.toISOString()}`);
      return file;
    }
    note(`warning: no host CA keys (${e.message}); ssh checks host keys as its own configuration says`);
    return null;
  }
}

/** ssh's own options that take a value: the first other argument is the destination. */
export const SSH_VALUE_OPTS: ReadonlySet<string> = new Set('BbcDEeFIiJLlmOoPpQRSWw'.split(''));

/** The `-o` option names (lower case) given in ssh's arguments before the destination. */
export function sshOptionsGiven(args: readonly string[]): Set<string> {
  const given = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (!a.startsWith('-') || a.length < 2) break;
    // Flags may be bundled (-vo Name=value); the first letter that takes a value ends them.
    for (let j = 1; j < a.length; j++) {
      const letter = a[j]!;
      if (!SSH_VALUE_OPTS.has(letter)) continue;
      const value = j + 1 < a.length ? a.slice(j + 1) : args[++i];
      if (letter === 'o' && value !== undefined) given.add(value.trim().split(/[\s=]/, 1)[0]!.toLowerCase());
      break;
    }
  }
  return given;
}

/** A path as an ssh_config or `-o` value: `%` escaped, quoted when it holds spaces. */
export function sshPath(p: string): string {
  const escaped = p.replace(/%/g, '%%');
  return /\s/.test(escaped) ? `"${escaped}"` : escaped;
}

/** Whether the arguments leave host checking to jit-ssh (they give neither UserKnownHostsFile nor StrictHostKeyChecking). */
export function leftToUs(sshArgs: readonly string[]): boolean {
  const given = sshOptionsGiven(sshArgs);
  return !given.has('userknownhostsfile') && !given.has('stricthostkeychecking');
}

/**
 * The options that make ssh check hosts against the host CA, unless the
 * arguments already say how to check hosts (their own UserKnownHostsFile or
 * StrictHostKeyChecking): then the caller's choice stands, whole.
 */
export function hostTrustArgs(sshArgs: readonly string[], knownHosts: string | null): string[] {
  if (knownHosts === null || !leftToUs(sshArgs)) return [];
  return ['-o', `UserKnownHostsFile=${sshPath(knownHosts)}`, '-o', 'StrictHostKeyChecking=yes'];
}
