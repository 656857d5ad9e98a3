// What every `jit-ssh` command works with: the settings, the home directory,
// the flags, and the saved session; and how they write (results on stdout,
// notes on stderr).

import { parseDuration } from '../../core/duration.js';
import type { ClientConfig } from '../../config.js';
import { readLine } from '../prompt.js';
import { UsageError } from '../run.js';
import { ClientError, createApi, LOGIN_HINT, type Api } from './api.js';
import type { Home } from './home.js';

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
  sk?: boolean;
  sso?: boolean;
  issuer?: string;
  device?: boolean;
  loopback?: boolean;
  'no-browser'?: boolean;
}

export interface Context {
  config: ClientConfig;
  home: Home;
  flags: Flags;
  env: NodeJS.ProcessEnv;
}

/** Writes a result on stdout. */
export const out = (text: string) => process.stdout.write(text);
/** Writes a note (a line for people, not for scripts) on stderr. */
export const note = (text: string) => process.stderr.write(text + '\n');
/** Writes a `--json` result on stdout. */
export const json = (value: unknown) => out(JSON.stringify(value, null, 2) + '\n');
/** Whether someone is at the terminal to answer a question. */
export const tty = () => process.stdin.isTTY === true && process.stderr.isTTY === true;

/** Asks a yes/no question at the terminal; no terminal is a no. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  return /^y(es)?$/i.test((await readLine(question)).trim());
}

/** The API with the saved session; a missing or expired session says to log in. */
export async function session(ctx: Context): Promise<{ api: Api; username: string }> {
  const s = await ctx.home.session();
  if (!s || Date.parse(s.expires_at) <= Date.now()) throw new ClientError(LOGIN_HINT);
  return { api: createApi(ctx.config.server ?? s.server, s.token), username: s.username };
}

/** `--for` as given, once it is a duration. */
export function requireDuration(text: string | undefined): string | undefined {
  if (text !== undefined && parseDuration(text) === null) throw new UsageError(`--for ${text}: write a duration such as 90s, 15m, 2h or 1h30m`);
  return text;
}
