// Each server setting: its environment variable, the flag that overrides it
// (flags win), its help line, and how its value is checked. The defaults here
// are the documented ones (README, Configuration).

import { z } from 'zod';
import { formatDuration, parseDuration } from '../core/duration.js';
import { GROUP_NAME } from '../core/names.js';

export type Env = Record<string, string | undefined>;
export type Flags = Record<string, string | undefined>;

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
  workers: { env: 'JIT_SSH_WORKERS', flag: 'workers', help: 'server processes sharing the port, one per core to use (default 1; more needs DATABASE_URL)' },
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
  oidcConfig: { env: 'JIT_SSH_OIDC_CONFIG', flag: 'oidc-config', help: 'YAML file of OpenID Connect identity providers to sign in with (default none: jit-ssh passwords and codes only)' },
  oidcMaxGroupAge: { env: 'JIT_SSH_OIDC_MAX_GROUP_AGE', flag: 'oidc-max-group-age', help: 'groups from an identity provider count this long after its sign-in, for requests, approvals and certificates (default 12h)' },
  webauthnRpId: { env: 'JIT_SSH_WEBAUTHN_RP_ID', flag: 'webauthn-rp-id', help: 'domain passkeys are registered for (default: the host of JIT_SSH_PUBLIC_URL, else of each request)' },
  webauthnOrigin: { env: 'JIT_SSH_WEBAUTHN_ORIGIN', flag: 'webauthn-origin', help: 'origin browsers report with passkey answers (default JIT_SSH_PUBLIC_URL, else each request\'s)' },
  hostCaKey: { env: 'JIT_SSH_HOST_CA_KEY', flag: 'host-ca-key', help: 'OpenSSH private key of the host CA, never the CA key (default DATA_DIR/host_ca_key, made on first start)' },
  trustedHostCaKeys: { env: 'JIT_SSH_TRUSTED_HOST_CA_KEYS', flag: 'trusted-host-ca-keys', help: 'file of older host CA public keys clients still trust (rotation)' },
  hostCertTtl: { env: 'JIT_SSH_HOST_CERT_TTL', flag: 'host-cert-ttl', help: 'validity of host certificates (default 30d)' },
} as const;

export function pick(env: Env, flags: Flags, key: keyof typeof SERVER_SETTINGS): string | undefined {
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

export const schema = z.object({
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
  workers: intIn(1, 64).default(1),
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
  oidcConfig: z.string().optional(),
  oidcMaxGroupAge: duration(60, 30 * 86400).default(12 * 3600),
  // A domain (no scheme, port or path): WebAuthn binds passkeys to it, and it must be the origin's host or a suffix of it.
  webauthnRpId: z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a domain name such as ca.example.com (lower case, no scheme or port)').optional(),
  webauthnOrigin: z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol) && new URL(u).origin === u.replace(/\/$/, ''), 'must be an http(s) origin such as https://ca.example.com (no path)')
    .optional(),
  hostCaKey: z.string().optional(),
  trustedHostCaKeys: z.string().optional(),
  hostCertTtl: duration(3600, 5 * 365 * 86400).default(30 * 86400),
});

export function describe(issue: z.core.$ZodIssue): string {
  const key = issue.path[0] as keyof typeof SERVER_SETTINGS;
  const s = SERVER_SETTINGS[key];
  const name = s.flag ? `${s.env} (--${s.flag})` : s.env;
  return `${name}: ${issue.message}`;
}
