// The settings the server and the helper run with, as config/server.ts and
// config/client.ts make them from the environment and flags.

import type { TrustedProxies } from '../core/forwarded.js';
import type { OidcSettings } from './oidc.js';

export type { OidcIssuerConfig, OidcSettings } from './oidc.js';

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
  /** The host CA's private key: signs host certificates only, and is never the CA key. */
  hostCaKeyPath: string;
  /** True when the host CA key path is the default one, where a key is generated on first start. */
  hostCaKeyGenerated: boolean;
  /** Extra host CA public keys clients keep trusting (older host signers during a rotation). */
  trustedHostCaKeysPath: string | null;
  /** Validity of host certificates, seconds. */
  hostCertTtl: number;
  policyPath: string;
  host: string;
  port: number;
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
  logLevel: LogLevel;
  /** Seconds in-flight requests get to finish on SIGTERM before the process exits anyway. */
  shutdownTimeout: number;
  /** Processes serving the port (node:cluster); the first also runs the background jobs and the admin socket. */
  workers: number;
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
  /** Identity providers to sign in with (JIT_SSH_OIDC_CONFIG); null = standalone: jit-ssh's own passwords and codes only. */
  oidc: OidcSettings | null;
  /** Passkeys: the relying party id and origin (null = derived from each request, when JIT_SSH_PUBLIC_URL is not set). */
  webauthn: { rpId: string | null; origin: string | null };
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
  /** Seconds groups from an identity provider's sign-in count for requests, approvals and certificates (default 12 h). */
  maxGroupAge?: number;
}

export interface ClientConfig {
  /** The server named by --server or JIT_SSH_SERVER; null = the one remembered at login, else DEFAULT_SERVER. */
  server: string | null;
  home: string;
  /** How often `--wait` asks for news, milliseconds. */
  pollMs: number;
  /** The known_hosts host patterns the host CA is trusted for (`@cert-authority PATTERNS KEY`), comma-separated. */
  hostPatterns: string;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}
