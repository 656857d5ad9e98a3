// What auditors ask of the logs, and the sealer that keeps the chain current.

import type { Kysely } from 'kysely';
import { DomainError } from '../core/errors.js';
import { ChainRewoundError, checkpoint, headProblem, sealStream, STREAMS, verifyStream, type SignedHead, type Stream, type VerifyResult } from '../audit/chain.js';
import type { Witness } from '../audit/signed-heads.js';
import { dbChainLookup } from '../audit/witness-check.js';
import { ingestSshdLog, type IngestResult } from '../audit/usage.js';
import { buildAccessReport, type AccessReport } from '../audit/report.js';
import { exportChain } from '../audit/offline.js';
import { verifyWorkflow, type WorkflowResult } from '../audit/workflow.js';
import { caKeyUsage, type CaKeyUsage, parseTime, queryCertificates, queryEvents, type CertificateFilter, type EventFilter } from '../audit/queries.js';
import type { Database } from '../db/schema.js';
import type { Signer } from '../ssh/signer.js';
import type { Logger } from '../log.js';
import { every } from './periodic.js';

export interface AuditVerifyResult {
  ok: boolean;
  streams: VerifyResult[];
  /** The workflow tables (requests, approvals, grants, revocations) against their chained history and events. */
  workflow: WorkflowResult;
}

export interface AuditService {
  certificates(query: Record<string, string | undefined>): ReturnType<typeof queryCertificates>;
  events(query: Record<string, string | undefined>): ReturnType<typeof queryEvents>;
  verify(): Promise<AuditVerifyResult>;
  /** Every record of a period, newest first, one JSON object per line. */
  export(stream: string, query: Record<string, string | undefined>): AsyncGenerator<string>;
  /** The access review of a period (`since` default 30 days back, `until` default now). */
  report(query: Record<string, string | undefined>): Promise<AccessReport>;
  /** The sealed chain and its signed checkpoints as JSON lines, for checking without the database. */
  exportChain(): AsyncGenerator<string>;
  /** Certificates per CA key, live ones and the last end of validity (for rotations). */
  caKeyUsage(): Promise<CaKeyUsage[]>;
  /** The chain hashes (hex) at some positions of a stream, and its length: what `audit verify --checkpoint` compares. */
  chainHashes(stream: string, positions: unknown): Promise<{ length: string; hashes: Record<string, string> }>;
  /** Records the certificate logins found in sshd log text (see audit/usage.ts). */
  ingestSshd(text: string, host: string): Promise<IngestResult>;
}

/** A filter's text; control characters (NUL above all, which PostgreSQL refuses) match nothing a log holds. */
function str(q: Record<string, string | undefined>, k: string): string | undefined {
  const v = q[k];
  if (v !== undefined && /[\x00-\x1f\x7f]/.test(v)) throw new DomainError('invalid_input', `${k} must not contain control characters`);
  return v === undefined || v === '' ? undefined : v;
}

export interface AuditDeps {
  db: Kysely<Database>;
  now?: () => Date;
  /** CA public key blobs whose checkpoint signatures count. */
  trustedKeys?: readonly Buffer[];
  /** The heads this instance signed (kept outside the database): verify fails when the chain no longer holds one. */
  signedHeads?: () => Promise<ReadonlyMap<Stream, SignedHead>>;
}

export function createAuditService(deps: AuditDeps): AuditService {
  const now = deps.now ?? (() => new Date());
  const times = (q: Record<string, string | undefined>) => ({
    since: str(q, 'since') ? parseTime(str(q, 'since')!, now(), 'since') : undefined,
    until: str(q, 'until') ? parseTime(str(q, 'until')!, now(), 'until') : undefined,
  });
  const limit = (q: Record<string, string | undefined>) => (str(q, 'limit') ? Number(str(q, 'limit')) : undefined);
  const certFilter = (q: Record<string, string | undefined>): CertificateFilter => {
    const bg = str(q, 'break_glass');
    if (bg !== undefined && bg !== 'true' && bg !== 'false') throw new DomainError('invalid_input', 'break_glass must be true or false');
    const kind = str(q, 'kind');
    if (kind !== undefined && kind !== 'user' && kind !== 'host') throw new DomainError('invalid_input', 'kind must be user or host');
    return { kind, user: str(q, 'user'), principal: str(q, 'principal'), role: str(q, 'role'), serial: str(q, 'serial'), request: str(q, 'request'), approver: str(q, 'approver'), break_glass: bg === undefined ? undefined : bg === 'true', cursor: str(q, 'cursor'), limit: limit(q), ...times(q) };
  };
  const eventFilter = (q: Record<string, string | undefined>): EventFilter => ({ actor: str(q, 'actor'), action: str(q, 'action'), target: str(q, 'target'), cursor: str(q, 'cursor'), limit: limit(q), ...times(q) });

  return {
    certificates: (q) => queryCertificates(deps.db, certFilter(q)),
    events: (q) => queryEvents(deps.db, eventFilter(q)),
    async verify() {
      const streams: VerifyResult[] = [];
      const heads = (await deps.signedHeads?.()) ?? new Map<Stream, SignedHead>();
      for (const s of STREAMS) {
        const result = await verifyStream(deps.db, s, { trustedKeys: deps.trustedKeys });
        const signed = heads.get(s);
        const problem = result.ok && signed ? await headProblem(deps.db, s, signed) : null;
        streams.push(problem ? { ...result, ok: false, problem: { position: signed!.position.toString(), record: null, detail: problem } } : result);
      }
      const workflow = await verifyWorkflow(deps.db);
      return { ok: streams.every((s) => s.ok) && workflow.ok, streams, workflow };
    },
    caKeyUsage: () => caKeyUsage(deps.db, now()),
    async chainHashes(stream, positions) {
      if (!STREAMS.includes(stream as Stream)) throw new DomainError('invalid_input', `stream must be one of ${STREAMS.join(', ')}`);
      if (!Array.isArray(positions) || positions.length > 1000 || !positions.every((p) => typeof p === 'string' && /^[1-9]\d{0,18}$/.test(p))) {
        throw new DomainError('invalid_input', 'positions must be at most 1000 positive decimal strings');
      }
      const r = await dbChainLookup(deps.db)(stream as Stream, positions.map((p) => BigInt(p as string)));
      return { length: r.length.toString(), hashes: Object.fromEntries(r.hashes) };
    },
    exportChain: () => exportChain(deps.db, now()),
    report(q) {
      const at = now();
      const t = times(q);
      return buildAccessReport(deps.db, { since: t.since ?? new Date(at.getTime() - 30 * 86_400_000), until: t.until ?? at });
    },
    async ingestSshd(text, host) {
      if (typeof text !== 'string') throw new DomainError('invalid_input', 'the sshd log must be text');
      if (typeof host !== 'string' || !/^[A-Za-z0-9._:-]{1,253}$/.test(host)) throw new DomainError('invalid_input', 'host must be a host name');
      return ingestSshdLog(deps.db, text, { host, now: now() });
    },
    async *export(stream, q) {
      if (stream !== 'certificates' && stream !== 'events') throw new DomainError('invalid_input', 'stream must be certificates or events');
      // Pages newest-first by cursor, so a period is read in bounded memory; each page is emitted as read.
      let cursor: string | undefined;
      do {
        const page = stream === 'certificates' ? await queryCertificates(deps.db, { ...certFilter(q), cursor, limit: 1000 }) : await queryEvents(deps.db, { ...eventFilter(q), cursor, limit: 1000 });
        const items = 'certificates' in page ? page.certificates : page.events;
        for (const item of items) yield JSON.stringify({ stream, ...item }) + '\n';
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
    },
  };
}

export interface SealerStatus {
  ok: boolean;
  /** Streams whose chain no longer holds the head this instance signed: it signs none of them. */
  problems: Array<{ stream: Stream; detail: string }>;
}

export interface Sealer {
  stop(): Promise<void>;
  runOnce(): Promise<void>;
  /** Seals, then signs the heads now, whatever the interval. */
  checkpointNow(): Promise<void>;
  status(): SealerStatus;
}

/**
 * Seals new records every `intervalMs` and signs the chain heads every `checkpointMs`.
 * With a witness, each tick also checks that every chain still holds the head this
 * instance signed last; one that does not is logged as an error (again at every
 * checkpoint round while it lasts) and is not signed until it does again.
 */
export function startSealer(deps: { db: Kysely<Database>; signer: Signer; logger: Logger; intervalMs?: number; checkpointMs?: number; witness?: Witness }): Sealer {
  const checkpointMs = deps.checkpointMs ?? 60_000;
  let lastCheckpoint = 0;
  const problems = new Map<Stream, string>();
  const refuse = (stream: Stream, detail: string, again: boolean) => {
    const known = problems.get(stream) === detail;
    problems.set(stream, detail);
    if (!known || again) {
      deps.logger.error('the audit log no longer holds the chain head this instance signed: refusing to sign it; someone with the database cut or rewrote it', { stream, detail, head_file: deps.witness?.headFile });
    }
  };
  let forced = false;
  const misdated = (problem: string) => deps.logger.error('an audit record was sealed with a time that cannot be true; audit verify names it', { detail: problem });
  const round = async () => {
    for (const s of STREAMS) while ((await sealStream(deps.db, s, new Date(), 1000, misdated)) > 0);
    const sign = forced || Date.now() - lastCheckpoint >= checkpointMs;
    forced = false;
    for (const s of STREAMS) {
      const signed = deps.witness?.last(s);
      const problem = signed ? await headProblem(deps.db, s, signed) : null;
      if (problem) refuse(s, problem, sign);
      else if (problems.delete(s)) deps.logger.warn('the audit log holds the chain head this instance signed again', { stream: s });
    }
    if (!sign) return;
    for (const s of STREAMS) {
      if (problems.has(s)) continue;
      try {
        await checkpoint(deps.db, s, deps.signer, new Date(), deps.witness);
      } catch (e) {
        if (!(e instanceof ChainRewoundError)) throw e;
        refuse(s, e.detail, true);
      }
    }
    lastCheckpoint = Date.now();
  };
  // Outages are waited out: every tick tries again, and the chain resumes where its last committed link ends.
  const job = every('sealing the audit log', deps.intervalMs ?? 1000, round, deps.logger);
  return {
    stop: job.stop,
    runOnce: job.runOnce,
    checkpointNow: () => {
      forced = true;
      return job.runOnce();
    },
    status: () => ({ ok: problems.size === 0, problems: [...problems].map(([stream, detail]) => ({ stream, detail })) }),
  };
}
