// Several server processes on one host (JIT_SSH_WORKERS=N), to use more than
// one core: node:cluster's primary owns the listening socket and hands
// connections to N workers round-robin. The workers are ordinary instances
// over the same PostgreSQL (any number of instances may share one: every
// limit, lock and one-time proof lives in the database); only worker 0 runs
// the background work (the audit sealer, whose signed heads are a file in
// DATA_DIR, expiry, housekeeping, webhooks) and the admin socket. The primary
// makes the CA key and migrates the database once, before any worker starts,
// restarts a worker that dies, and passes SIGHUP (reload the policy) and
// SIGTERM/SIGINT (drain and stop) on to every worker.

import cluster, { type Worker } from 'node:cluster';
import type { ServerConfig } from './config.js';
import { migrate, openDatabase } from './db/index.js';
import type { Logger } from './log.js';
import { loadCaKeys } from './services/ca-signer.js';

const WORKER_ENV = 'JIT_SSH_WORKER';

/** This process's worker number, or null when it is no cluster worker. */
export function workerIndex(): number | null {
  if (!cluster.isWorker) return null;
  const n = Number(process.env[WORKER_ENV]);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/** The primary: prepares what must happen once, forks the workers, keeps them running until told to stop. */
export async function runPrimary(config: ServerConfig, logger: Logger): Promise<void> {
  await loadCaKeys(config, logger); // a new CA key is made here once, not raced by N workers
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const applied = await migrate(database.db);
    if (applied.length > 0) logger.info('database migrated', { applied });
  } finally {
    await database.close();
  }

  const byIndex = new Map<number, Worker>();
  let stopping = false;
  // Until one worker has listened, a worker that stops is a start-up failure (the port is taken,
  // the database refuses): the primary stops, rather than restarting it forever.
  let listened = false;
  let failed: (e: Error) => void = () => {};
  const restarts = new Map<number, number>();
  const fork = (index: number) => {
    const w = cluster.fork({ [WORKER_ENV]: String(index) });
    byIndex.set(index, w);
    w.on('exit', (code, signal) => {
      if (byIndex.get(index) === w) byIndex.delete(index);
      if (stopping) return;
      if (!listened) {
        stopping = true;
        for (const other of byIndex.values()) other.process.kill('SIGTERM');
        failed(new Error(`worker ${index} stopped before the service listened (${signal ?? `exit ${code}`}); its log says why`));
        return;
      }
      // A worker that keeps dying is restarted ever more slowly (1 s, 2 s, … at most 30 s).
      const n = (restarts.get(index) ?? 0) + 1;
      restarts.set(index, n);
      const delay = Math.min(30_000, 1000 * 2 ** (n - 1));
      logger.error('a worker stopped; starting it again', { worker: index, code, signal, restart_in_ms: delay });
      setTimeout(() => !stopping && fork(index), delay).unref();
    });
    w.on('listening', () => {
      listened = true;
      restarts.delete(index);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);
  logger.info('workers started', { workers: config.workers });

  await new Promise<void>((resolve, reject) => {
    failed = reject;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.exit(1); // a second signal does not wait
      }
      stopping = true;
      logger.info('shutting down', { signal, workers: byIndex.size });
      const left = [...byIndex.values()];
      if (left.length === 0) resolve();
      let running = left.length;
      for (const w of left) {
        w.once('exit', () => --running === 0 && resolve());
        w.process.kill('SIGTERM');
      }
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      for (const w of byIndex.values()) w.process.kill('SIGHUP');
    });
  });
  logger.info('stopped');
}

export const isPrimaryOfWorkers = (config: ServerConfig) => config.workers > 1 && cluster.isPrimary;

