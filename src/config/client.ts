// The settings of the `jit-ssh` helper.

import os from 'node:os';
import path from 'node:path';
import { parseDuration } from '../core/duration.js';
import type { Env, Flags } from './settings.js';
import { ConfigError, type ClientConfig } from './types.js';

/** Settings of the `jit-ssh` helper. */
export function loadClientConfig(env: Env, flags: Flags = {}): ClientConfig {
  const given = flags['server'] ?? env['JIT_SSH_SERVER'];
  const problems: string[] = [];
  if (given !== undefined && (!/^https?:\/\/./.test(given) || !URL.canParse(given))) problems.push(`JIT_SSH_SERVER (--server): ${given} is not an http(s) URL`);
  const poll = env['JIT_SSH_POLL_INTERVAL'] ?? '2s';
  const pollSeconds = parseDuration(poll);
  if (pollSeconds === null || pollSeconds > 60) problems.push(`JIT_SSH_POLL_INTERVAL: ${poll} must be a duration up to 60s`);
  const patterns = env['JIT_SSH_HOST_PATTERNS'] || '*';
  // known_hosts patterns: comma-separated, `*` and `?` wildcards, `!` negation, `[host]:port`; no spaces.
  if (!/^[A-Za-z0-9.*?!_:[\]-]+(,[A-Za-z0-9.*?!_:[\]-]+)*$/.test(patterns) || patterns.split(',').every((p) => p.startsWith('!'))) {
    problems.push(`JIT_SSH_HOST_PATTERNS: ${patterns} must be comma-separated host patterns such as *.example.com,10.0.0.* (at least one not negated)`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const home = env['JIT_SSH_HOME'] || path.join(env['HOME'] ?? os.homedir(), '.jit-ssh');
  return Object.freeze({ server: given ? given.replace(/\/+$/, '') : null, home, pollMs: pollSeconds! * 1000, hostPatterns: patterns });
}
