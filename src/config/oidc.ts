// The identity providers (OpenID Connect issuers) people may sign in with:
// JIT_SSH_OIDC_CONFIG names a YAML file listing them. Read and checked once
// at start-up, every problem reported with its place in the file; client
// secrets come from the file, a file of their own, or an environment
// variable, and never appear in an error or a log line.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GROUP_NAME } from '../core/names.js';
import type { Env } from './settings.js';

export interface OidcIssuerConfig {
  /** Short name in URLs and `--issuer` (e.g. `okta`). */
  id: string;
  /** What people see: "Sign in with <name>". */
  name: string;
  /** The issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** Claims tried in order for the user name (default `preferred_username`, then `email`). */
  usernameClaims: string[];
  groupsClaim: string;
  /** When non-empty, the `email` claim must be verified and in one of these domains. */
  allowedEmailDomains: string[];
  /** IdP group → jit-ssh groups; null = IdP groups that are valid jit-ssh group names pass as they are. */
  groupMap: Map<string, string[]> | null;
  /** Put before every user name this issuer creates (default `<id>.`). */
  usernamePrefix: string;
}

export interface OidcSettings {
  issuers: OidcIssuerConfig[];
  /** Origin the identity providers redirect back to: `<redirectBase>/ui/sso/callback`. */
  redirectBase: string;
}

const ID = /^[a-z][a-z0-9-]{0,31}$/;
const httpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const issuerSchema = z
  .object({
    id: z.string().regex(ID, 'must be lower case letters, digits and -, starting with a letter (at most 32)'),
    name: z.string().min(1).max(64),
    issuer: httpUrl.refine((u) => new URL(u).protocol === 'https:' || isLoopback(new URL(u).hostname), 'must be https:// (http:// only for a provider on this host)'),
    client_id: z.string().min(1),
    client_secret: z.string().min(1).optional(),
    client_secret_file: z.string().min(1).optional(),
    client_secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token')).default(['openid', 'profile', 'email']),
    username_claim: z.string().min(1).optional(),
    groups_claim: z.string().min(1).default('groups'),
    allowed_email_domains: z.array(z.string().regex(/^[a-z0-9.-]+$/i, 'must be a domain name')).default([]),
    group_map: z.record(z.string(), z.union([z.string().regex(GROUP_NAME, 'must be a jit-ssh group name'), z.array(z.string().regex(GROUP_NAME, 'must be a jit-ssh group name'))])).optional(),
    username_prefix: z.string().regex(/^([a-z_][a-z0-9_.-]{0,31})?$/, 'must be empty or lower case letters, digits, _ . - (at most 32)').optional(),
  })
  .strict();

const fileSchema = z
  .object({
    redirect_base_url: httpUrl.optional(),
    issuers: z.array(issuerSchema).min(1, 'must list at least one issuer'),
  })
  .strict();

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const WHERE = 'JIT_SSH_OIDC_CONFIG (--oidc-config)';

/**
 * Reads the file; problems are pushed (each naming the file and the place in it) and null returned.
 * `publicUrl` (JIT_SSH_PUBLIC_URL) is the redirect base when the file names none.
 */
export function loadOidcConfig(file: string, env: Env, publicUrl: string | null, problems: string[]): OidcSettings | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    problems.push(`${WHERE}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    return null;
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    problems.push(`${WHERE}: ${file} is not YAML: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${WHERE}: ${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
    return null;
  }
  const before = problems.length;
  const v = parsed.data;
  const redirectBase = (v.redirect_base_url ?? publicUrl)?.replace(/\/+$/, '') ?? null;
  if (!redirectBase) problems.push(`${WHERE}: ${file}: redirect_base_url: required unless JIT_SSH_PUBLIC_URL is set (the identity provider sends people back to <it>/ui/sso/callback)`);
  const seen = new Set<string>();
  const issuers: OidcIssuerConfig[] = [];
  v.issuers.forEach((i, n) => {
    const at = `${WHERE}: ${file}: issuers.${n} (${i.id})`;
    if (seen.has(i.id)) problems.push(`${at}: id ${i.id} is listed twice`);
    seen.add(i.id);
    const sources = [i.client_secret, i.client_secret_file, i.client_secret_env].filter((s) => s !== undefined).length;
    if (sources > 1) problems.push(`${at}: give one of client_secret, client_secret_file, client_secret_env`);
    let secret: string | undefined = i.client_secret;
    if (i.client_secret_file) {
      try {
        secret = readFileSync(path.resolve(path.dirname(file), i.client_secret_file), 'utf8').replace(/\r?\n$/, '');
      } catch (e) {
        problems.push(`${at}: client_secret_file: cannot read ${i.client_secret_file}: ${(e as NodeJS.ErrnoException).code}`);
      }
    } else if (i.client_secret_env) {
      secret = env[i.client_secret_env];
      if (!secret) problems.push(`${at}: client_secret_env: ${i.client_secret_env} is not set`);
    } else if (sources === 0) {
      problems.push(`${at}: client_secret, client_secret_file or client_secret_env is required`);
    }
    if (!i.scopes.includes('openid')) problems.push(`${at}: scopes: must include openid`);
    const prefix = i.username_prefix ?? `${i.id}.`;
    issuers.push({
      id: i.id,
      name: i.name,
      issuer: i.issuer,
      clientId: i.client_id,
      clientSecret: secret ?? '',
      scopes: i.scopes,
      usernameClaims: i.username_claim ? [i.username_claim] : ['preferred_username', 'email'],
      groupsClaim: i.groups_claim,
      allowedEmailDomains: i.allowed_email_domains.map((d) => d.toLowerCase()),
      groupMap: i.group_map ? new Map(Object.entries(i.group_map).map(([k, g]) => [k, Array.isArray(g) ? g : [g]])) : null,
      usernamePrefix: prefix,
    });
  });
  if (problems.length > before || !redirectBase) return null;
  return Object.freeze({ issuers, redirectBase });
}
