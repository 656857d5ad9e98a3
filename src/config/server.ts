// The server's settings from the environment and flags: every value parsed
// and checked once, and every problem reported, one per line, before
// anything starts.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTrustedProxies, type TrustedProxies } from '../core/forwarded.js';
import { describe, pick, schema, SERVER_SETTINGS, type Env, type Flags } from './settings.js';
import { loadOidcConfig } from './oidc.js';
import { loadTls, readOr } from './tls.js';
import { ConfigError, type ServerConfig } from './types.js';

export const EXAMPLE_POLICY = fileURLToPath(new URL('../../examples/policy.yaml', import.meta.url));

/** A 32-byte key written as base64 (44 characters) or hex (64). */
export function parseSecretKey(text: string): Buffer | null {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=$/.test(t) ? Buffer.from(t, 'base64') : null;
  return key && key.length === 32 ? key : null;
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
  // The embedded database belongs to one process: several need a PostgreSQL they can share.
  if (v.workers > 1 && !v.databaseUrl) problems.push('JIT_SSH_WORKERS (--workers): more than 1 needs DATABASE_URL (the embedded database is one process\'s)');
  const oidc = v.oidcConfig ? loadOidcConfig(path.resolve(cwd, v.oidcConfig), env, v.publicUrl ? new URL(v.publicUrl).origin : null, problems) : null;
  const webauthnOrigin = v.webauthnOrigin ? new URL(v.webauthnOrigin).origin : v.publicUrl ? new URL(v.publicUrl).origin : null;
  const webauthnRpId = v.webauthnRpId ?? (webauthnOrigin ? new URL(webauthnOrigin).hostname : null);
  if (webauthnOrigin && webauthnRpId) {
    const host = new URL(webauthnOrigin).hostname;
    if (host !== webauthnRpId && !host.endsWith(`.${webauthnRpId}`)) problems.push(`JIT_SSH_WEBAUTHN_RP_ID (--webauthn-rp-id): ${webauthnRpId} is not ${host} or a domain it is under (browsers refuse such passkeys)`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    databaseUrl: v.databaseUrl ?? null,
    dataDir,
    caKeyPath: v.caKey ? path.resolve(cwd, v.caKey) : path.join(dataDir, 'ca_key'),
    caKeyGenerated: !v.caKey,
    caKeyPassphrase: passphrase,
    trustedCaKeysPath: v.trustedCaKeys ? path.resolve(cwd, v.trustedCaKeys) : null,
    hostCaKeyPath: v.hostCaKey ? path.resolve(cwd, v.hostCaKey) : path.join(dataDir, 'host_ca_key'),
    hostCaKeyGenerated: !v.hostCaKey,
    trustedHostCaKeysPath: v.trustedHostCaKeys ? path.resolve(cwd, v.trustedHostCaKeys) : null,
    hostCertTtl: v.hostCertTtl,
    policyPath,
    host: v.host,
    port: v.port,
    bodyLimit: v.bodyLimit,
    logLevel: v.logLevel,
    shutdownTimeout: v.shutdownTimeout,
    workers: v.workers,
    requestTimeout: v.requestTimeout,
    secretKey,
    webhookSecret: webhookText ? Buffer.from(webhookText, 'utf8') : null,
    publicUrl: v.publicUrl ? new URL(v.publicUrl).origin : null,
    tls,
    trustedProxies,
    oidc,
    webauthn: Object.freeze({ rpId: webauthnRpId, origin: webauthnOrigin }),
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
      maxGroupAge: v.oidcMaxGroupAge,
    }),
  });
}
