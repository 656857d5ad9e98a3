// The one reader of the environment. Every setting has an environment variable
// (CONTRACT.md names them) and a flag of the same meaning; flags win. Values
// are parsed and checked once, and every problem is reported, one per line,
// before anything starts.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { formatDuration, parseDuration } from './core/duration.js';
import { GROUP_NAME } from './core/names.js';
import { parseTrustedProxies, type TrustedProxies } from './http/forwarded.js';

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
  /** Seconds within which every request is answered (503 past it, e.g. while the database hangs); auditors' log walks excepted. */
  requestTimeout: number;
  /** Key encrypting secrets at rest (TOTP seeds); null = the generated `dataDir/secret.key` (embedded database only). */
  secretKey: Buffer | null;
  /** The witness log: a JSON line per checkpoint this instance signs, appended (ship it off the host). */
  checkpointLog: string;
  /** Unix socket for local administration (`jit-ssh-ca user ...` while the server runs). */
  adminSocket: string;
  auth: AuthSettings;
  /** HMAC key signing outgoing webhooks; null = unsigned. */
  webhookSecret: Buffer | null;
  /**
   * The origin browsers reach the web pages at (e.g. `https://ca.example.com` behind a TLS proxy);
   * null = the request's own. Form posts must come from it; https makes the session cookie Secure.
   */
  publicUrl: string | null;
  /** Serve HTTPS with this certificate chain and key (PEM); null = plain HTTP (e.g. behind a TLS-terminating proxy). */
  tls: TlsSettings | null;
  /** Reverse proxies whose X-Forwarded-For / Forwarded names the client; null = none: the socket's peer is the client. */
  trustedProxies: TrustedProxies | null;
}

export interface TlsSettings {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate's subject and end of validity, for the start-up log. */
  subject: string;
  notAfter: Date;
}

export interface AuthSettings {
  /** Session token lifetime, seconds. */
  tokenTtl: number;
  adminGroup: string;
  auditorGroup: string;
  /** Consecutive failed logins for one user name before it is locked. */
  lockoutThreshold: number;
  /** First lockout, seconds; each further one doubles, up to an hour. */
  lockoutSeconds: number;
  /** Failed logins from one client address (an IPv6 /64; its /56 four times as many) per 10 minutes before it is refused. */
  addressFailureLimit: number;
  /** Failed logins per 10 minutes over all names and addresses, past which a login's code is checked before its password. */
  globalFailureLimit: number;
  /** Logins that may wait for the password work in this process; past it, 503 at once. */
  loginQueue: number;
  /** scrypt cost as log2(N); memory per hash is 128 * 8 * N bytes (2^16 → 64 MiB). */
  passwordCost: number;
}

export interface ClientConfig {
  /** The server named by --server or JIT_SSH_SERVER; null = the one remembered at login, else DEFAULT_SERVER. */
  server: string | null;
  home: string;
  /** How often `--wait` asks for news, milliseconds. */
  pollMs: number;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

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
  requestTimeout: { env: 'JIT_SSH_REQUEST_TIMEOUT', flag: 'request-timeout', help: 'every request is answered within this, 503 past it (default 10s)' },
  secretKey: { env: 'JIT_SSH_SECRET_KEY', flag: null, help: '32-byte key (base64 or hex) encrypting secrets at rest; required with DATABASE_URL' },
  secretKeyFile: { env: 'JIT_SSH_SECRET_KEY_FILE', flag: 'secret-key-file', help: 'file holding JIT_SSH_SECRET_KEY' },
  checkpointLog: { env: 'JIT_SSH_CHECKPOINT_LOG', flag: 'checkpoint-log', help: 'file the audit checkpoints this instance signs are appended to, a JSON line each (default DATA_DIR/checkpoints.jsonl)' },
  adminSocket: { env: 'JIT_SSH_ADMIN_SOCKET', flag: 'admin-socket', help: 'local admin socket (default DATA_DIR/admin.sock)' },
  tokenTtl: { env: 'JIT_SSH_TOKEN_TTL', flag: 'token-ttl', help: 'login session lifetime (default 1h)' },
  adminGroup: { env: 'JIT_SSH_ADMIN_GROUP', flag: 'admin-group', help: 'group of administrators (default admins)' },
  auditorGroup: { env: 'JIT_SSH_AUDITOR_GROUP', flag: 'auditor-group', help: 'group of auditors (default auditors)' },
  lockoutThreshold: { env: 'JIT_SSH_LOCKOUT_THRESHOLD', flag: 'lockout-threshold', help: 'failed logins before a user is locked (default 5)' },
  lockoutDuration: { env: 'JIT_SSH_LOCKOUT_DURATION', flag: 'lockout-duration', help: 'first lockout; doubles each time up to 1h (default 1m)' },
  addressFailureLimit: { env: 'JIT_SSH_ADDRESS_FAILURE_LIMIT', flag: 'address-failure-limit', help: 'failed logins per client address (IPv6: per /64, and 4x per /56) per 10 minutes (default 20)' },
  globalFailureLimit: { env: 'JIT_SSH_GLOBAL_FAILURE_LIMIT', flag: 'global-failure-limit', help: 'failed logins per 10 minutes over all clients, past which codes are checked before passwords (default 100)' },
  loginQueue: { env: 'JIT_SSH_LOGIN_QUEUE', flag: 'login-queue', help: 'logins that may wait for password checks; past it 503 with Retry-After (default 32)' },
  webhookSecret: { env: 'JIT_SSH_WEBHOOK_SECRET', flag: null, help: 'HMAC-SHA256 key signing webhook bodies (environment only)' },
  webhookSecretFile: { env: 'JIT_SSH_WEBHOOK_SECRET_FILE', flag: 'webhook-secret-file', help: 'file holding JIT_SSH_WEBHOOK_SECRET' },
  passwordCost: { env: 'JIT_SSH_PASSWORD_COST', flag: 'password-cost', help: 'scrypt cost log2(N), 14-20 (default 16: 64 MiB, ~0.2 s)' },
  publicUrl: { env: 'JIT_SSH_PUBLIC_URL', flag: 'public-url', help: 'URL browsers use for the web pages, e.g. https://ca.example.com behind a TLS proxy' },
  tlsCert: { env: 'JIT_SSH_TLS_CERT', flag: 'tls-cert', help: 'PEM certificate (chain) to serve HTTPS with; needs JIT_SSH_TLS_KEY' },
  tlsKey: { env: 'JIT_SSH_TLS_KEY', flag: 'tls-key', help: 'PEM private key of JIT_SSH_TLS_CERT (not readable by others)' },
  trustedProxies: { env: 'JIT_SSH_TRUSTED_PROXIES', flag: 'trusted-proxies', help: 'CIDRs of reverse proxies whose X-Forwarded-For/Forwarded names the client (default none: the socket peer)' },
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

const duration = (min: number, max: number) =>
  z
    .string()
    .transform((v, ctx) => {
      const n = parseDuration(v);
      if (n === null) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 15m, 1h30m' });
        return z.NEVER;
      }
      return n;
    })
    .refine((n) => n >= min && n <= max, `must be between ${formatDuration(min)} and ${formatDuration(max)}`);

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
  requestTimeout: duration(1, 600).default(10),
  secretKey: z.string().optional(),
  secretKeyFile: z.string().optional(),
  adminSocket: z.string().optional(),
  checkpointLog: z.string().optional(),
  tokenTtl: duration(60, 7 * 86400).default(3600),
  adminGroup: z.string().regex(GROUP_NAME, 'must be a group name').default('admins'),
  auditorGroup: z.string().regex(GROUP_NAME, 'must be a group name').default('auditors'),
  lockoutThreshold: intIn(2, 1000).default(5),
  lockoutDuration: duration(1, 86400).default(60),
  addressFailureLimit: intIn(1, 100000).default(20),
  globalFailureLimit: intIn(1, 100_000_000).default(100),
  loginQueue: intIn(1, 10000).default(32),
  passwordCost: intIn(14, 20).default(16),
  webhookSecret: z.string().min(16, 'must be at least 16 characters').optional(),
  webhookSecretFile: z.string().optional(),
  // An origin only: the web pages compare it with each form post's Origin header.
  publicUrl: z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol) && new URL(u).origin === u.replace(/\/$/, ''), 'must be an http(s) origin such as https://ca.example.com (no path)')
    .optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  trustedProxies: z.string().optional(),
});

/** A 32-byte key written as base64 (44 characters) or hex (64). */
export function parseSecretKey(text: string): Buffer | null {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(t) ? Buffer.from(t, 'base64') : null;
  return key && key.length === 32 ? key : null;
}

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
  if (v.caKeyPassphrase !== undefined && v.caKeyPassphraseFile) problems.push('JIT_SSH_CA_KEY_PASSPHRASE and JIT_SSH_CA_KEY_PASSPHRASE_FILE are both set; use one');
  const passphraseFromFile = v.caKeyPassphraseFile
    ? readOr(path.resolve(cwd, v.caKeyPassphraseFile), 'JIT_SSH_CA_KEY_PASSPHRASE_FILE (--ca-key-passphrase-file)', problems)?.replace(/\r?\n$/, '')
    : undefined;
  const passphrase = v.caKeyPassphrase ?? passphraseFromFile ?? null;
  let secretKey: Buffer | null = null;
  const secretText = v.secretKey ?? (v.secretKeyFile ? readOr(path.resolve(cwd, v.secretKeyFile), 'JIT_SSH_SECRET_KEY_FILE (--secret-key-file)', problems) : undefined);
  if (v.secretKey && v.secretKeyFile) problems.push('JIT_SSH_SECRET_KEY and JIT_SSH_SECRET_KEY_FILE are both set; use one');
  if (secretText !== undefined) {
    secretKey = parseSecretKey(secretText);
    if (!secretKey) problems.push('JIT_SSH_SECRET_KEY: must be 32 bytes written as base64 or hex (make one with: openssl rand -base64 32)');
  } else if (v.databaseUrl) {
    // Every instance on one database must share the key; a generated one would not be shared.
    problems.push('JIT_SSH_SECRET_KEY: required with DATABASE_URL, the same on every instance (make one with: openssl rand -base64 32)');
  }
  if (v.webhookSecret && v.webhookSecretFile) problems.push('JIT_SSH_WEBHOOK_SECRET and JIT_SSH_WEBHOOK_SECRET_FILE are both set; use one');
  const webhookText = v.webhookSecret ?? (v.webhookSecretFile ? readOr(path.resolve(cwd, v.webhookSecretFile), 'JIT_SSH_WEBHOOK_SECRET_FILE (--webhook-secret-file)', problems)?.trim() : undefined);
  const policyPath = v.policy ? path.resolve(cwd, v.policy) : EXAMPLE_POLICY;
  try {
    readFileSync(policyPath);
  } catch (e) {
    problems.push(`JIT_SSH_POLICY (--policy): cannot read ${policyPath}: ${(e as NodeJS.ErrnoException).code}`);
  }
  const tls = loadTls(v.tlsCert ? path.resolve(cwd, v.tlsCert) : undefined, v.tlsKey ? path.resolve(cwd, v.tlsKey) : undefined, problems);
  if (tls && v.publicUrl && new URL(v.publicUrl).protocol !== 'https:') {
    problems.push('JIT_SSH_PUBLIC_URL (--public-url): must be https:// when the service serves HTTPS itself (JIT_SSH_TLS_CERT)');
  }
  let trustedProxies: TrustedProxies | null = null;
  if (v.trustedProxies !== undefined) {
    const parsed = parseTrustedProxies(v.trustedProxies);
    for (const p of parsed.problems) problems.push(`JIT_SSH_TRUSTED_PROXIES (--trusted-proxies): ${p}`);
    if (parsed.proxies.cidrs.length > 0) trustedProxies = parsed.proxies;
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
    requestTimeout: v.requestTimeout,
    secretKey,
    webhookSecret: webhookText ? Buffer.from(webhookText, 'utf8') : null,
    publicUrl: v.publicUrl ? new URL(v.publicUrl).origin : null,
    tls,
    trustedProxies,
    adminSocket: v.adminSocket ? path.resolve(cwd, v.adminSocket) : path.join(dataDir, 'admin.sock'),
    checkpointLog: v.checkpointLog ? path.resolve(cwd, v.checkpointLog) : path.join(dataDir, 'checkpoints.jsonl'),
    auth: Object.freeze({
      tokenTtl: v.tokenTtl,
      adminGroup: v.adminGroup,
      auditorGroup: v.auditorGroup,
      lockoutThreshold: v.lockoutThreshold,
      lockoutSeconds: v.lockoutDuration,
      addressFailureLimit: v.addressFailureLimit,
      globalFailureLimit: v.globalFailureLimit,
      loginQueue: v.loginQueue,
      passwordCost: v.passwordCost,
    }),
  });
}

const TLS_CERT = 'JIT_SSH_TLS_CERT (--tls-cert)';
const TLS_KEY = 'JIT_SSH_TLS_KEY (--tls-key)';

/**
 * Reads and checks the HTTPS certificate and key: both or neither, each
 * readable PEM, the key not readable by others (as ssh insists for its keys)
 * and the key the certificate's own. Every problem goes to `problems`.
 */
function loadTls(certFile: string | undefined, keyFile: string | undefined, problems: string[]): TlsSettings | null {
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile) {
    problems.push(`${certFile ? TLS_KEY : TLS_CERT}: required with ${certFile ? TLS_CERT : TLS_KEY}; HTTPS needs both a certificate and its key`);
    return null;
  }
  const certText = readOr(certFile, TLS_CERT, problems);
  const keyText = readOr(keyFile, TLS_KEY, problems);
  if (certText === undefined || keyText === undefined) return null;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certText);
  } catch {
    problems.push(`${TLS_CERT}: ${certFile} is not a PEM certificate`);
    return null;
  }
  try {
    createPrivateKey(keyText);
  } catch (e) {
    const encrypted = /-----BEGIN (ENCRYPTED PRIVATE KEY|[A-Z ]*PRIVATE KEY-----\r?\nProc-Type: 4,ENCRYPTED)/.test(keyText) || /passphrase/i.test((e as Error).message);
    problems.push(`${TLS_KEY}: ${keyFile} is not ${encrypted ? 'an unencrypted' : 'a readable'} PEM private key`);
    return null;
  }
  const mode = statSync(keyFile).mode & 0o777;
  if ((mode & 0o007) !== 0) {
    problems.push(`${TLS_KEY}: ${keyFile} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${keyFile}`);
    return null;
  }
  try {
    createSecureContext({ cert: certText, key: keyText });
  } catch (e) {
    const mismatch = /mismatch/i.test((e as Error).message);
    problems.push(mismatch ? `${TLS_KEY}: ${keyFile} is not the key of the certificate in ${certFile}` : `${TLS_CERT}: ${certFile} and ${keyFile} cannot be used together (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
  return { cert: Buffer.from(certText), key: Buffer.from(keyText), subject: leaf.subject.replace(/\n/g, ', '), notAfter: new Date(leaf.validTo) };
}

function readOr(file: string, name: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    problems.push(`${name}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    return undefined;
  }
}

/** Settings of the `jit-ssh` helper. */
export function loadClientConfig(env: Env, flags: Flags = {}): ClientConfig {
  const given = flags['server'] ?? env['JIT_SSH_SERVER'];
  const problems: string[] = [];
  if (given !== undefined && (!/^https?:\/\/./.test(given) || !URL.canParse(given))) problems.push(`JIT_SSH_SERVER (--server): ${given} is not an http(s) URL`);
  const poll = env['JIT_SSH_POLL_INTERVAL'] ?? '2s';
  const pollSeconds = parseDuration(poll);
  if (pollSeconds === null || pollSeconds > 60) problems.push(`JIT_SSH_POLL_INTERVAL: ${poll} must be a duration up to 60s`);
  if (problems.length > 0) throw new ConfigError(problems);
  const home = env['JIT_SSH_HOME'] || path.join(env['HOME'] ?? os.homedir(), '.jit-ssh');
  return Object.freeze({ server: given ? given.replace(/\/+$/, '') : null, home, pollMs: pollSeconds! * 1000 });
}
