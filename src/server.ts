// The server: configuration → CA key → database → services → HTTP. Everything
// is built here (services in services/index.ts, the app in compose.ts) and
// handed inward; nothing below reads the environment or holds a module-level
// database.

import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { HEADS_FILE, openWitness, readSignedHeads, type Witness } from './audit/signed-heads.js';
import { createSecretBox, loadOrCreateSecretKey } from './auth/secret-box.js';
import { createServerApp } from './compose.js';
import type { ServerConfig } from './config.js';
import { migrate, openDatabase, type DbHandle } from './db/index.js';
import { pruneFlows } from './db/oidc.js';
import { pruneChallenges } from './db/webauthn.js';
import { pruneSessions } from './db/sessions.js';
import { pruneThrottle } from './db/throttle.js';
import { createAdminApp } from './http/admin-app.js';
import { listenAdminSocket } from './http/admin-socket.js';
import type { App } from './http/app.js';
import { clientAddressResolver } from './http/client-address.js';
import { HardenedServerResponse } from './http/response-headers.js';
import { NotReadyError } from './http/routes/health.js';
import { errorFields, type Logger } from './log.js';
import { isPrimaryOfWorkers, runPrimary, workerIndex } from './server-workers.js';
import { startSealer, type AuditService, type Sealer } from './services/audit.js';
import type { AuthService } from './services/auth.js';
import { loadCaKeys, loadHostCaKeys } from './services/ca-signer.js';
import { createServices } from './services/index.js';
import type { Issuer } from './services/issuance.js';
import type { Notifier } from './services/notify.js';
import { every } from './services/periodic.js';
import { createPolicyReloader, ineligibleGrantsEnder, type PolicyReloadResult } from './services/policy-reload.js';
import { createPolicyStore } from './services/policy-store.js';
import type { RequestService } from './services/requests.js';
import type { RevocationService } from './services/revocation.js';
import type { UserAdmin } from './services/users.js';
import type { Signer } from './ssh/signer.js';

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
  /**
   * Whether this process also runs the background work — the audit sealer and its signed heads,
   * request expiry, housekeeping, webhook delivery — and the admin socket (default true). Of
   * several workers on one host only the first does (server-workers.ts): the heads file and the
   * admin socket in DATA_DIR belong to one process.
   */
  background?: boolean;
  /** A host CA signer made elsewhere (tests); default the JIT_SSH_HOST_CA_KEY file's. */
  hostSigner?: Signer;
  /** Named in the log lines of a worker. */
  worker?: number;
}

/** What a process without the background work reports of the sealer: it signs nothing, so it holds no heads to lose. */
const NO_SEALER: Sealer = { stop: async () => {}, runOnce: async () => {}, checkpointNow: async () => {}, status: () => ({ ok: true, problems: [] }) };

/** Runs `open` with the database open; closes it when `open` fails. */
async function orClose<T>(database: DbHandle, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    await database.close();
    throw e;
  }
}

export async function startServer(config: ServerConfig, logger: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  const background = opts.background ?? true;
  // The policy first: an invalid file stops start-up before anything opens.
  const policyStore = await createPolicyStore(config.policyPath);
  if (policyStore.current().webhooks.length > 0 && !config.webhookSecret) {
    logger.warn('webhooks are configured but JIT_SSH_WEBHOOK_SECRET is not: their bodies go unsigned');
  }
  const keys = await loadCaKeys(config, logger, opts.signer);
  const hostKeys = await loadHostCaKeys(config, logger, keys.signer, opts.hostSigner);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    onPoolError: (err) => logger.warn('database connection lost', errorFields(err)),
  });
  const { db } = database;
  const applied = await orClose(database, () => migrate(db));
  if (applied.length > 0) logger.info('database migrated', { applied });
  const box = createSecretBox(config.secretKey ?? (await loadOrCreateSecretKey(config.dataDir)));
  // The heads this instance signed and the witness of its checkpoints live outside the database.
  const headFile = path.join(config.dataDir, HEADS_FILE);
  const witness: Witness = await orClose(database, async () => {
    await fs.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    return openWitness({ headFile, logFile: config.checkpointLog, logger });
  });
  // A worker without the sealer reads the heads the first worker signed, as they are now.
  const signedHeads = background ? async () => witness.heads() : () => readSignedHeads(headFile);
  const services = createServices(config, db, keys, { box, policy: policyStore.current, logger, signedHeads, hostKeys });
  const { requests, notifier } = services;
  const endIneligible = ineligibleGrantsEnder(requests, logger);
  const reloadPolicy = createPolicyReloader({ store: policyStore, db, logger, endIneligible });
  // Started once the server listens; readiness reads its status.
  let sealer: Sealer;
  const app = await createServerApp(services, {
    logger,
    bodyLimit: config.bodyLimit,
    requestTimeoutMs: config.requestTimeout * 1000,
    clientAddress: clientAddressResolver(config.trustedProxies),
    reloadPolicy,
    ready: async () => {
      await database.ping();
      const { problems } = sealer.status();
      if (problems.length > 0) {
        throw new NotReadyError(`the audit log no longer holds the chain head this instance signed (${problems.map((p) => `${p.stream}: ${p.detail}`).join('; ')}); it signs no checkpoint until it does`);
      }
    },
    web: { publicUrl: config.publicUrl },
    hosts: true,
  });
  const adminSocket = !background ? { close: async () => {} } : await orClose(database, async () => {
    const admin = await listenAdminSocket(config.adminSocket, createAdminApp({ users: services.users, audit: services.audit, revocation: services.revocation, hosts: services.hosts, logger }).fetch);
    if (admin.unidentified) logger.warn('the admin socket cannot identify its callers: admin commands are refused while the server runs', { reason: admin.unidentified });
    return admin;
  });

  let server: Server;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    // With a certificate and key the service speaks HTTPS itself (TLS 1.2 or later); otherwise
    // plain HTTP, for loopback or behind a TLS-terminating proxy.
    // Every answer is written through HardenedServerResponse (its security headers, see http/response-headers.ts).
    const serverOptions = { ServerResponse: HardenedServerResponse as typeof ServerResponse };
    const tls = config.tls ? { createServer: createHttpsServer, serverOptions: { ...serverOptions, cert: config.tls.cert, key: config.tls.key, minVersion: 'TLSv1.2' as const } } : { serverOptions };
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
    host_ca_fingerprint: hostKeys.signer.fingerprint,
    admin_socket: background ? config.adminSocket : null,
    ...(opts.worker !== undefined ? { worker: opts.worker, background } : {}),
    ...(config.tls ? { tls_subject: config.tls.subject, tls_not_after: config.tls.notAfter.toISOString() } : {}),
    ...(config.trustedProxies ? { trusted_proxies: config.trustedProxies.cidrs } : {}),
    ...(config.oidc ? { identity_providers: config.oidc.issuers.map((i) => i.id) } : {}),
  });
  if (config.tls && config.tls.notAfter.getTime() < Date.now()) {
    logger.warn('the TLS certificate has expired: clients will refuse it', { tls_not_after: config.tls.notAfter.toISOString() });
  }

  // The background work and the sealer run in one process of the host (StartOptions.background).
  const jobs = background ? startJobs({ db, requests, notifier, endIneligible, logger }) : { stop: async () => {} };
  sealer = background ? startSealer({ db, signer: keys.signer, logger, witness }) : NO_SEALER;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await jobs.stop();
      await sealer.stop();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeout * 1000);
      await Promise.all([drained, adminSocket.close(), services.oidc?.close()]);
      clearTimeout(timer);
      await database.close();
    })());
  const { issuer, users, audit, revocation } = services;
  return { url, app, issuer, auth: await services.auth, users, requests, notifier, audit, revocation, sealer, reloadPolicy, database, signer: keys.signer, close };
}

/**
 * Housekeeping: ended sessions and idle login counters are dropped after a day (the audit log
 * keeps the history); it is idempotent. Unanswered requests expire on time even when nobody looks
 * at them, and grants whose holders may no longer hold them end (a group changed by a command run
 * without the server, another instance's policy): every 15 s. Webhooks are delivered from the outbox.
 */
function startJobs(d: { db: DbHandle['db']; requests: RequestService; notifier: Notifier; endIneligible: () => Promise<unknown>; logger: Logger }): { stop(): Promise<void> } {
  const housekeeping = every('housekeeping', 3_600_000, () => {
    const now = new Date();
    return Promise.all([pruneSessions(d.db, now, 86_400), pruneThrottle(d.db, now, 86_400), pruneFlows(d.db, now), pruneChallenges(d.db, now)]);
  }, d.logger);
  const expiry = every('request expiry', 15_000, async () => {
    await d.requests.expireDue();
    await d.endIneligible();
  }, d.logger);
  d.notifier.start();
  return {
    async stop() {
      await Promise.all([housekeeping.stop(), expiry.stop()]);
      await d.notifier.stop();
    },
  };
}

/** Runs the server until SIGTERM or SIGINT, then drains requests and closes the database. */
export async function serveUntilSignalled(config: ServerConfig, logger: Logger): Promise<void> {
  if (isPrimaryOfWorkers(config)) return runPrimary(config, logger);
  const worker = workerIndex();
  const running = await startServer(config, logger, worker === null ? {} : { worker, background: worker === 0 });
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
  // A worker's channel to the primary would keep it alive: let go of it.
  if (worker !== null) process.disconnect?.();
}
