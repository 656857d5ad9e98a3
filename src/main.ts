// Composition root: configuration → CA key → database → services → HTTP.
// Everything is built here and handed inward; nothing below reads the
// environment or holds a module-level database.

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { serve } from '@hono/node-server';
import { createCertificateService, createIssuer, type Issuer } from './services/issuance.js';
import { createAuthService, createStepUpVerifier, type AuthService } from './services/auth.js';
import { createUserAdmin, type UserAdmin } from './services/users.js';
import { createRequestService, type RequestService } from './services/requests.js';
import { createNotifier, type Notifier } from './services/notify.js';
import { createPolicyStore } from './services/policy-store.js';
import { PolicyError } from './core/policy.js';
import { appendEvent } from './db/audit-events.js';
import { createAuditService, startSealer, type AuditService, type Sealer } from './services/audit.js';
import { HEADS_FILE, openWitness, type Witness } from './audit/signed-heads.js';
import { NotReadyError } from './http/routes/health.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createRevocationService, type RevocationService } from './services/revocation.js';
import { every } from './services/periodic.js';
import { createSecretBox, loadOrCreateSecretKey } from './auth/secret-box.js';
import { createAdminApp } from './http/admin-app.js';
import { listenAdminSocket } from './http/admin-socket.js';
import { clientAddressResolver } from './http/client-address.js';
import type { ServerConfig } from './config.js';
import { migrate, openDatabase, type DbHandle } from './db/index.js';
import { pruneSessions } from './db/sessions.js';
import { pruneThrottle } from './db/throttle.js';
import { createApp, type App } from './http/app.js';
import type { PolicyReloadResult } from './http/routes/admin.js';
import { errorFields, type Logger } from './log.js';
import { generateCaKey, loadCaKey, loadTrustedKeys } from './ssh/ca-key.js';
import { parsePublicKeyBlob } from './ssh/pubkey.js';
import { publicKeyLine, type Signer } from './ssh/signer.js';
import { createCaKeysPublisher } from './services/ca-keys.js';

export interface CaKeys {
  signer: Signer;
  /** `TrustedUserCAKeys` lines, the signer first, each key once. */
  publicKeys: string[];
  /** Retired CA keys: not published, but what they signed in the audit log still verifies. */
  retiredKeys: string[];
}

/**
 * The CA's signer: every use of the CA private key (certificates, the KRL's
 * and /v1/ca.pub's SSHSIG signatures, the audit log's checkpoints) goes
 * through the Signer this returns, in the server and in every jit-ssh-ca
 * command. This is the one place to plug in a key held elsewhere (a KMS, an
 * HSM through PKCS#11, ssh-agent): return your own Signer here
 * (docs/security.md, "Keeping the CA key in a KMS or HSM").
 */
export async function openCaSigner(config: ServerConfig, logger: Logger): Promise<Signer> {
  if (config.caKeyGenerated && (await generateCaKey(config.caKeyPath))) {
    logger.info('generated a new ed25519 CA key', { path: config.caKeyPath });
  }
  return loadCaKey(config.caKeyPath, config.caKeyPassphrase ?? undefined);
}

/** Loads the CA signer (`given`, else openCaSigner's) and the keys still trusted beside it. */
export async function loadCaKeys(config: ServerConfig, logger: Logger, given?: Signer): Promise<CaKeys> {
  const signer = given ?? (await openCaSigner(config, logger));
  const extra = config.trustedCaKeysPath ? await loadTrustedKeys(config.trustedCaKeysPath) : { trusted: [], retired: [] };
  const seen = new Set<string>();
  const once = (line: string) => {
    const fp = parsePublicKeyBlob(Buffer.from(line.split(' ')[1]!, 'base64')).fingerprint;
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  };
  const publicKeys = [publicKeyLine(signer, 'jit-ssh-ca'), ...extra.trusted].filter(once);
  // A key both trusted and marked retired stays trusted.
  return { signer, publicKeys, retiredKeys: extra.retired.filter(once) };
}

/** The CA public key blobs by fingerprint, from `TrustedUserCAKeys` lines. */
export function caKeyBlobs(lines: readonly string[]): Map<string, Buffer> {
  return new Map(
    lines.map((line) => {
      const blob = Buffer.from(line.split(' ')[1]!, 'base64');
      return [parsePublicKeyBlob(blob).fingerprint, blob] as const;
    }),
  );
}

export interface RunningServer {
  url: string;
  app: App;
  issuer: Issuer;
  auth: AuthService;
  users: UserAdmin;
  requests: RequestService;
  notifier: Notifier;
  audit: AuditService;
  revocation: RevocationService;
  /** Seals and signs the audit log; says when the log no longer holds what this instance signed. */
  sealer: Sealer;
  /** Re-reads the policy file (what SIGHUP does); an invalid file is refused and logged. */
  reloadPolicy(actor: string): Promise<PolicyReloadResult>;
  database: DbHandle;
  signer: Signer;
  close(): Promise<void>;
}

export interface StartOptions {
  /** A CA signer made elsewhere (tests; an embedding program with its own KMS signer); default openCaSigner's. */
  signer?: Signer;
}

export async function startServer(config: ServerConfig, logger: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  // The policy first: an invalid file stops start-up before anything opens.
  const policyStore = await createPolicyStore(config.policyPath);
  if (policyStore.current().webhooks.length > 0 && !config.webhookSecret) {
    logger.warn('webhooks are configured but JIT_SSH_WEBHOOK_SECRET is not: their bodies go unsigned');
  }
  const keys = await loadCaKeys(config, logger, opts.signer);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    onPoolError: (err) => logger.warn('database connection lost', errorFields(err)),
  });
  try {
    const applied = await migrate(database.db);
    if (applied.length > 0) logger.info('database migrated', { applied });
  } catch (e) {
    await database.close();
    throw e;
  }
  const box = createSecretBox(config.secretKey ?? (await loadOrCreateSecretKey(config.dataDir)));
  const issuer = createIssuer({ db: database.db, signer: keys.signer });
  const auth = await createAuthService({ db: database.db, box, settings: config.auth });
  const users = createUserAdmin({ db: database.db, box, passwordCost: config.auth.passwordCost, policy: policyStore.current });
  const requests = createRequestService({ db: database.db, policy: policyStore.current });
  const certificates = createCertificateService({ db: database.db, issuer, policy: policyStore.current });
  const notifier = createNotifier({ db: database.db, secret: config.webhookSecret, logger });
  const trustedBlobs = caKeyBlobs(keys.publicKeys);
  // The heads this instance signed and the witness of its checkpoints live outside the database.
  let witness: Witness;
  try {
    await fs.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    witness = await openWitness({ headFile: path.join(config.dataDir, HEADS_FILE), logFile: config.checkpointLog, logger });
  } catch (e) {
    await database.close();
    throw e;
  }
  const audit = createAuditService({ db: database.db, trustedKeys: [...caKeyBlobs([...keys.publicKeys, ...keys.retiredKeys]).values()], signedHeads: async () => witness.heads() });
  const revocation = createRevocationService({ db: database.db, signer: keys.signer, caKeys: trustedBlobs });
  const endIneligible = async () => {
    const ended = await requests.endIneligible();
    if (ended.ended_grants.length > 0) logger.info('grants ended: their holders may no longer hold them', { grants: ended.ended_grants, revoked: ended.revoked });
  };
  const reloadPolicy = async (actor: string): Promise<PolicyReloadResult> => {
    let result: PolicyReloadResult;
    try {
      result = { ok: true, ...(await policyStore.reload()) };
      logger.info('policy reloaded', { digest: result.digest, roles: result.roles, changed: result.changed });
    } catch (e) {
      result = { ok: false, problems: e instanceof PolicyError ? e.problems : [(e as Error).message] };
      logger.error('policy reload refused; the policy in force is unchanged', { problems: result.problems });
    }
    await appendEvent(database.db, { at: new Date(), actor, action: 'policy.reload', target: config.policyPath, outcome: result.ok ? 'ok' : 'refused', clientAddress: null, details: result });
    // Grants the new policy no longer allows end now, not at the next sweep (which retries on failure).
    if (result.ok && result.changed) await endIneligible().catch((e) => logger.warn('ending grants the new policy no longer allows failed; retried every 15 s', errorFields(e)));
    return result;
  };
  const caKeys = createCaKeysPublisher({ db: database.db, signer: keys.signer, publicKeys: keys.publicKeys, retiredKeys: keys.retiredKeys });
  // Started once the server listens; readiness reads its status.
  let sealer: Sealer;
  const stepUp = createStepUpVerifier({ db: database.db, box, settings: config.auth });
  const app = createApp({
    logger,
    bodyLimit: config.bodyLimit,
    caKeys: () => caKeys.document(),
    ready: async () => {
      await database.ping();
      const { problems } = sealer.status();
      if (problems.length > 0) {
        throw new NotReadyError(`the audit log no longer holds the chain head this instance signed (${problems.map((p) => `${p.stream}: ${p.detail}`).join('; ')}); it signs no checkpoint until it does`);
      }
    },
    auth,
    clientAddress: clientAddressResolver(config.trustedProxies),
    requests,
    certificates,
    reloadPolicy,
    audit,
    krl: () => revocation.krl(),
    stepUp,
    web: { stepUp, publicUrl: config.publicUrl },
    requestTimeoutMs: config.requestTimeout * 1000,
  });
  let adminSocket: { close(): Promise<void> };
  try {
    const admin = await listenAdminSocket(config.adminSocket, createAdminApp({ users, audit, revocation, logger }).fetch);
    if (admin.unidentified) logger.warn('the admin socket cannot identify its callers: admin commands are refused while the server runs', { reason: admin.unidentified });
    adminSocket = admin;
  } catch (e) {
    await database.close();
    throw e;
  }

  let server: Server;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    // With a certificate and key the service speaks HTTPS itself (TLS 1.2 or later); otherwise
    // plain HTTP, for loopback or behind a TLS-terminating proxy.
    const tls = config.tls ? { createServer: createHttpsServer, serverOptions: { cert: config.tls.cert, key: config.tls.key, minVersion: 'TLSv1.2' as const } } : {};
    server = serve({ fetch: app.fetch, hostname: config.host, port: config.port, ...tls }, resolve) as Server;
    server.once('error', reject);
  }).catch(async (e: NodeJS.ErrnoException) => {
    await adminSocket.close();
    await database.close();
    if (e.code === 'EADDRINUSE') throw new Error(`cannot listen on ${config.host}:${config.port}: the address is in use`);
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${e.message}`);
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  logger.info('listening', {
    url,
    database: database.kind,
    ca_key_type: keys.signer.keyType,
    ca_fingerprint: keys.signer.fingerprint,
    trusted_ca_keys: keys.publicKeys.length,
    admin_socket: config.adminSocket,
    ...(config.tls ? { tls_subject: config.tls.subject, tls_not_after: config.tls.notAfter.toISOString() } : {}),
    ...(config.trustedProxies ? { trusted_proxies: config.trustedProxies.cidrs } : {}),
  });
  if (config.tls && config.tls.notAfter.getTime() < Date.now()) {
    logger.warn('the TLS certificate has expired: clients will refuse it', { tls_not_after: config.tls.notAfter.toISOString() });
  }

  // Housekeeping: ended sessions and idle login counters are dropped after a
  // day (the audit log keeps the history). Any instance may do it; it is idempotent.
  const housekeeping = every('housekeeping', 3_600_000, () => {
    const now = new Date();
    return Promise.all([pruneSessions(database.db, now, 86_400), pruneThrottle(database.db, now, 86_400)]);
  }, logger);
  // Unanswered requests expire on time even when nobody looks at them, and grants whose holders
  // may no longer hold them end (a group changed by a command run without the server, another
  // instance's policy): every 15 s.
  const expiry = every('request expiry', 15_000, async () => {
    await requests.expireDue();
    await endIneligible();
  }, logger);
  notifier.start();
  sealer = startSealer({ db: database.db, signer: keys.signer, logger, witness });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await Promise.all([housekeeping.stop(), expiry.stop()]);
      await notifier.stop();
      await sealer.stop();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeout * 1000);
      await Promise.all([drained, adminSocket.close()]);
      clearTimeout(timer);
      await database.close();
    })());
  return { url, app, issuer, auth, users, requests, notifier, audit, revocation, sealer, reloadPolicy, database, signer: keys.signer, close };
}

/** Runs the server until SIGTERM or SIGINT, then drains requests and closes the database. */
export async function serveUntilSignalled(config: ServerConfig, logger: Logger): Promise<void> {
  const running = await startServer(config, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info('shutting down', { signal });
      process.once(signal, () => process.exit(1)); // a second signal does not wait
      running.close().then(resolve, (e) => {
        logger.error('shutdown failed', errorFields(e));
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => void running.reloadPolicy('os:SIGHUP'));
  });
  logger.info('stopped');
}
