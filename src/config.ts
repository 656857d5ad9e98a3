// The one reader of the environment. Every setting has an environment variable
// (CONTRACT.md names them) and a flag of the same meaning; flags win. Values
// are parsed and checked once, and every problem is reported, one per line,
// before anything starts.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ServerConfig {
  /** A `postgres://` URL, or null for the embedded database in `dataDir/db`. */
  databaseUrl: string | null;
  dataDir: string;
  caKeyPath: string;
  /** True when the CA key path is the default one, where a key is generated on first start. */
  caKeyGenerated: boolean;
  caKeyPassphrase: string | null;
  /** Extra CA public keys to keep publishing (older signers during a rotation). */
  trustedCaKeysPath: string | null;
  policyPath: string;
  host: string;
  port: number;
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
  logLevel: LogLevel;
  /** Seconds in-flight requests get to finish on SIGTERM before the process exits anyway. */
  shutdownTimeout: number;
}

export interface ClientConfig {
  server: string;
  home: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

type Env = Record<string, string | undefined>;
type Flags = Record<string, string | undefined>;

/** Each setting: its environment variable and the flag that overrides it. */
export const SERVER_SETTINGS = {
  databaseUrl: { env: 'DATABASE_URL', flag: 'database-url', help: 'postgres:// URL; unset = embedded database in DATA_DIR/db' },
  dataDir: { env: 'JIT_SSH_DATA_DIR', flag: 'data-dir', help: 'CA key, local secrets, embedded database (default ./data)' },
  caKey: { env: 'JIT_SSH_CA_KEY', flag: 'ca-key', help: 'OpenSSH private key of the CA (default DATA_DIR/ca_key, made on first start)' },
  caKeyPassphrase: { env: 'JIT_SSH_CA_KEY_PASSPHRASE', flag: null, help: 'passphrase of the CA key (environment only: flags show in ps)' },
  caKeyPassphraseFile: { env: 'JIT_SSH_CA_KEY_PASSPHRASE_FILE', flag: 'ca-key-passphrase-file', help: 'file holding the CA key passphrase' },
  trustedCaKeys: { env: 'JIT_SSH_TRUSTED_CA_KEYS', flag: 'trusted-ca-keys', help: 'file of older CA public keys still trusted (rotation)' },
  policy: { env: 'JIT_SSH_POLICY', flag: 'policy', help: 'policy file (YAML; default: the shipped example)' },
  host: { env: 'HOST', flag: 'host', help: 'listen address (default 127.0.0.1)' },
  port: { env: 'PORT', flag: 'port', help: 'listen port (default 8080; 0 picks a free one)' },
  bodyLimit: { env: 'JIT_SSH_BODY_LIMIT', flag: 'body-limit', help: 'largest request body in bytes (default 65536)' },
  logLevel: { env: 'JIT_SSH_LOG_LEVEL', flag: 'log-level', help: 'debug, info, warn or error (default info)' },
  shutdownTimeout: { env: 'JIT_SSH_SHUTDOWN_TIMEOUT', flag: 'shutdown-timeout', help: 'seconds to drain requests on SIGTERM (default 10)' },
} as const;

export const EXAMPLE_POLICY = fileURLToPath(new URL('../examples/policy.yaml', import.meta.url));

function pick(env: Env, flags: Flags, key: keyof typeof SERVER_SETTINGS): string | undefined {
  const s = SERVER_SETTINGS[key];
  const v = (s.flag ? flags[s.flag] : undefined) ?? env[s.env];
  return v === '' ? undefined : v;
}

const intIn = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const schema = z.object({
  databaseUrl: z
    .string()
    .refine((u) => /^postgres(ql)?:\/\/./.test(u), 'must be a postgres:// or postgresql:// URL')
    .refine((u) => URL.canParse(u), 'is not a valid URL')
    .optional(),
  dataDir: z.string().default('./data'),
  caKey: z.string().optional(),
  caKeyPassphrase: z.string().optional(),
  caKeyPassphraseFile: z.string().optional(),
  trustedCaKeys: z.string().optional(),
  policy: z.string().optional(),
  host: z.string().regex(/^[^\s/]+$/, 'must be a host name or address').default('127.0.0.1'),
  port: intIn(0, 65535).default(8080),
  bodyLimit: intIn(1024, 64 * 1024 * 1024).default(65536),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  shutdownTimeout: intIn(0, 3600).default(10),
});

function describe(issue: z.core.$ZodIssue): string {
  const key = issue.path[0] as keyof typeof SERVER_SETTINGS;
  const s = SERVER_SETTINGS[key];
  const name = s.flag ? `${s.env} (--${s.flag})` : s.env;
  return `${name}: ${issue.message}`;
}

/** Reads the server's settings from the environment and flags; throws ConfigError listing every problem. */
export function loadServerConfig(env: Env, flags: Flags = {}, cwd = process.cwd()): ServerConfig {
  const raw = Object.fromEntries(Object.keys(SERVER_SETTINGS).map((k) => [k, pick(env, flags, k as keyof typeof SERVER_SETTINGS)]));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describe));
  const v = parsed.data;
  const problems: string[] = [];
  const dataDir = path.resolve(cwd, v.dataDir);
  let passphrase = v.caKeyPassphrase ?? null;
  if (v.caKeyPassphraseFile) {
    if (passphrase !== null) problems.push('JIT_SSH_CA_KEY_PASSPHRASE and JIT_SSH_CA_KEY_PASSPHRASE_FILE are both set; use one');
    try {
      passphrase = readFileSync(path.resolve(cwd, v.caKeyPassphraseFile), 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      problems.push(`JIT_SSH_CA_KEY_PASSPHRASE_FILE (--ca-key-passphrase-file): cannot read ${v.caKeyPassphraseFile}: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  const policyPath = v.policy ? path.resolve(cwd, v.policy) : EXAMPLE_POLICY;
  try {
    readFileSync(policyPath);
  } catch (e) {
    problems.push(`JIT_SSH_POLICY (--policy): cannot read ${policyPath}: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    databaseUrl: v.databaseUrl ?? null,
    dataDir,
    caKeyPath: v.caKey ? path.resolve(cwd, v.caKey) : path.join(dataDir, 'ca_key'),
    caKeyGenerated: !v.caKey,
    caKeyPassphrase: passphrase,
    trustedCaKeysPath: v.trustedCaKeys ? path.resolve(cwd, v.trustedCaKeys) : null,
    policyPath,
    host: v.host,
    port: v.port,
    bodyLimit: v.bodyLimit,
    logLevel: v.logLevel,
    shutdownTimeout: v.shutdownTimeout,
  });
}

/** Settings of the `jit-ssh` helper. */
export function loadClientConfig(env: Env, flags: Flags = {}): ClientConfig {
  const server = flags['server'] ?? env['JIT_SSH_SERVER'] ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/./.test(server) || !URL.canParse(server)) throw new ConfigError([`JIT_SSH_SERVER (--server): ${server} is not an http(s) URL`]);
  const home = env['JIT_SSH_HOME'] ?? path.join(env['HOME'] ?? os.homedir(), '.jit-ssh');
  return Object.freeze({ server: server.replace(/\/+$/, ''), home });
}
