// The hash chain over the issuance log and the audit events.
//
// Writers only INSERT (one row per certificate: the issuance path pays
// nothing for the chain). A sealer then appends every new record, in the
// order it was written, to its stream's chain:
//   record_hash = SHA-256(stream NUL canonical-JSON(record))
//   chain_hash  = SHA-256(previous chain_hash || record_hash)   (32 zero bytes before the first)
// and now and then signs the head (a checkpoint, SSHSIG by the CA key), so a
// removed tail is noticed too and an export can be checked offline.
// `verify` walks the chain in pages: time linear in rows, memory constant.

import { createHash } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import {
  chainHashAt, checkpointsWithLinks, countUnsealed, firstUnsealedThrough, hasCheckpointAt, insertCheckpoint, insertLinks, lastLink, linksWithRecords, nextPosition,
  recordsByKey, recordTime, SPEC, tryLockStream, unsealedRecords, type Stream,
} from '../db/chain.js';
import type { Database } from '../db/schema.js';
import { sshsign, sshverify } from '../ssh/sshsig.js';
import type { Signer } from '../ssh/signer.js';
import type { Witness } from './signed-heads.js';

export { nextPosition, SPEC, STREAMS, type Stream } from '../db/chain.js';

export const ZERO = Buffer.alloc(32);
const PAGE = 2000;
/** Records written just before the last sealed one may commit after it; the sealer looks back this far. */
const LOOKBACK = 5000;
export const CHECKPOINT_NAMESPACE = 'jit-ssh-checkpoint';
/**
 * How far a record's time may lie before the newest one sealed before it, or after its own
 * sealing: records are chained in the order they were written, and their times come from the
 * writers' clocks at the start of their transactions, so concurrent writers and clocks a little
 * apart put honest records slightly out of order. Beyond this, a record was written after the fact.
 */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

/** What is wrong with the time of a record sealed at `sealedAt` after records as new as `newest`, or null. */
export function datingProblem(stream: Stream, key: string, position: bigint, at: Date, sealedAt: Date, newest: Date | null): string | null {
  const name = `${stream} record ${key} (position ${position}) is dated ${at.toISOString()}`;
  if (at.getTime() > sealedAt.getTime() + CLOCK_TOLERANCE_MS) return `${name}, after it was sealed (${sealedAt.toISOString()}): its time is false`;
  if (newest && at.getTime() < newest.getTime() - CLOCK_TOLERANCE_MS) return `${name}, before the chain head it was sealed after (${newest.toISOString()}): it was written after the fact`;
  return null;
}

/** The newest of the times seen so far, not counting one already found false. */
const later = (newest: Date | null, at: Date, problem: string | null) => (problem || (newest && newest >= at) ? newest : at);

/** The JSON form a record is hashed in: sorted keys, times as RFC 3339, bytes as base64. Idempotent. */
export function canonical(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** The hash of a record as read from its table (the `seq` column is the chain's order, not content). */
export function recordHash(stream: Stream, row: Record<string, unknown>): Buffer {
  return createHash('sha256').update(`${stream}\0${JSON.stringify(canonicalRecord(row, stream))}`).digest();
}

/**
 * A record's hashed content: its canonical form without its write order (`seq`) or stored hash.
 * A certificate's `kind` counts only when it is not 'user': user certificates hash as they did
 * before the column existed, so logs written then still verify.
 */
export function canonicalRecord(row: Record<string, unknown>, stream?: Stream): unknown {
  const { seq: _seq, record_hash: _hash, ...content } = row;
  if (stream === 'certificates' && content['kind'] === 'user') delete content['kind'];
  return canonical(content);
}

export function chainHash(previous: Buffer, record: Buffer): Buffer {
  return createHash('sha256').update(previous).update(record).digest();
}

export function checkpointText(stream: Stream, position: bigint, chain: Buffer, at: Date): string {
  return `jit-ssh checkpoint\nstream=${stream}\nposition=${position}\nchain=${chain.toString('hex')}\nat=${at.toISOString()}\n`;
}

interface Head {
  position: bigint;
  chain: Buffer;
  seq: bigint;
}

async function head(db: Kysely<Database> | Transaction<Database>, stream: Stream): Promise<Head> {
  const last = await lastLink(db, stream);
  return last ? { position: BigInt(last.position), chain: Buffer.from(last.chain_hash), seq: BigInt(last.record_seq) } : { position: 0n, chain: ZERO, seq: 0n };
}

/**
 * Appends up to `limit` unsealed records of `stream` to its chain; returns how many
 * (0 also when another instance is sealing the stream just now).
 * A modest limit keeps memory bounded while a backlog is caught up on.
 */
export async function sealStream(db: Kysely<Database>, stream: Stream, now: Date, limit = 1000, onMisdated?: (problem: string) => void): Promise<number> {
  // Records whose time cannot be true are sealed all the same (refusing them would stall the
  // chain behind them); they are reported here, once committed, and verify names them.
  const misdated: string[] = [];
  const sealed = await db.transaction().execute(async (trx) => {
    // One sealer per stream at a time, across every instance. One that finds another at work
    // leaves it to them instead of queueing behind: the records are sealed either way, and a
    // hung instance holding the lock (ended by idle_in_transaction_session_timeout) blocks nobody.
    if (!(await tryLockStream(trx, stream))) return 0;
    const h = await head(trx, stream);
    const from = h.seq > BigInt(LOOKBACK) ? h.seq - BigInt(LOOKBACK) : 0n;
    // Only order, key and stored hash: the record itself is read only when no hash was stored.
    const rows = await unsealedRecords(trx, stream, from, limit);
    if (rows.length === 0) return 0;
    const missing = rows.filter((r) => r.hash === null).map((r) => r.key);
    const computed = new Map<string, Buffer>();
    if (missing.length > 0) {
      for (const row of await recordsByKey(trx, stream, missing)) computed.set(String(row[SPEC[stream].key]), recordHash(stream, row));
    }
    let newest: Date | null = h.position === 0n ? null : await recordTime(trx, stream, h.seq);
    let position = h.position;
    let chain = h.chain;
    const links = rows.map((row) => {
      const rh = row.hash ? Buffer.from(row.hash) : computed.get(row.key)!;
      chain = chainHash(chain, rh);
      position += 1n;
      const problem = datingProblem(stream, row.key, position, row.at, now, newest);
      if (problem) misdated.push(problem);
      newest = later(newest, row.at, problem);
      return { stream, position: position.toString(), record_key: row.key, record_seq: row.seq, record_hash: rh, chain_hash: chain, sealed_at: now };
    });
    await insertLinks(trx, links);
    return links.length;
  });
  for (const problem of misdated) onMisdated?.(problem);
  return sealed;
}

/** A chain head that was signed: kept outside the database by the instance that signed it (audit/signed-heads.ts). */
export interface SignedHead {
  position: bigint;
  chain: Buffer;
  at: Date;
}

/** Refused: the chain no longer holds a head this instance signed. */
export class ChainRewoundError extends Error {
  override name = 'ChainRewoundError';
  constructor(
    readonly stream: Stream,
    readonly detail: string,
  ) {
    super(`${stream}: ${detail}`);
  }
}

/** Null when the chain of `stream` still holds `signed` (so its head extends it), else what was done to it. */
export async function headProblem(db: Kysely<Database>, stream: Stream, signed: SignedHead): Promise<string | null> {
  const link = await chainHashAt(db, stream, signed.position);
  const when = signed.at.toISOString();
  if (!link) return `the chain ends at position ${(await head(db, stream)).position}, before position ${signed.position} this instance signed at ${when}: records were cut from its end`;
  if (!link.equals(signed.chain)) return `the chain at position ${signed.position} is not the one this instance signed at ${when}: the history up to it was rewritten`;
  return null;
}

/**
 * Signs the current head of `stream` unless it is already signed; returns the position signed, or null.
 * With a witness, only a head that extends the last one this instance signed is signed (else
 * ChainRewoundError), and the checkpoint is witnessed outside the database before it is stored.
 */
export async function checkpoint(db: Kysely<Database>, stream: Stream, signer: Signer, now: Date, witness?: Witness): Promise<bigint | null> {
  const h = await head(db, stream);
  const last = witness?.last(stream);
  if (last) {
    const problem = await headProblem(db, stream, last);
    if (problem) throw new ChainRewoundError(stream, problem);
  }
  if (h.position === 0n) return null;
  if (await hasCheckpointAt(db, stream, h.position)) return null;
  const signature = await sshsign(signer, CHECKPOINT_NAMESPACE, Buffer.from(checkpointText(stream, h.position, h.chain, now)));
  await witness?.record({ stream, position: h.position, chain: h.chain, at: now, ca_fingerprint: signer.fingerprint, signature });
  await insertCheckpoint(db, { stream, position: h.position.toString(), chain_hash: h.chain, at: now, ca_fingerprint: signer.fingerprint, signature });
  return h.position;
}

export interface VerifyResult {
  stream: Stream;
  ok: boolean;
  /** Records checked on the chain. */
  sealed: number;
  /** Records written but not sealed yet (not an error: the sealer is behind). */
  unsealed: number;
  checkpoints: number;
  /** The first problem found, naming the record. */
  problem: { position: string | null; record: string | null; detail: string } | null;
}

export interface VerifyOptions {
  /**
   * CA public key blobs (current and older) whose checkpoint signatures are
   * accepted. Without them checkpoints are compared with the chain but their
   * signatures are not checked (someone able to rewrite every link could then
   * rewrite the checkpoints too).
   */
  trustedKeys?: readonly Buffer[];
}

/** Walks the whole chain of `stream`, checking every record, link and checkpoint. */
export async function verifyStream(db: Kysely<Database>, stream: Stream, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const { key, time } = SPEC[stream];
  const result: VerifyResult = { stream, ok: true, sealed: 0, unsealed: 0, checkpoints: 0, problem: null };
  let newest: Date | null = null;
  const fail = (position: bigint | string | null, record: string | null, detail: string) => {
    result.ok = false;
    result.problem = { position: position === null ? null : String(position), record, detail };
    return result;
  };
  let expected = 1n;
  let chain: Buffer = ZERO;
  let lastSeq = 0n;
  for (;;) {
    const rows = await linksWithRecords(db, stream, expected, PAGE);
    if (rows.length === 0) {
      // An empty range ends the chain only if no link lies beyond it.
      if ((await nextPosition(db, stream, expected)) !== null) return fail(expected, null, `the chain has no link at position ${expected} (a link was removed)`);
      break;
    }
    for (const { l_position, l_key, l_seq, l_rhash, l_chash, l_sealed, ...rec } of rows) {
      const position = BigInt(l_position);
      if (position !== expected) return fail(expected, null, `the chain has no link at position ${expected} (a link was removed)`);
      if (rec[key] === null || rec[key] === undefined) return fail(position, l_key, `${stream} record ${l_key} (position ${position}) is missing`);
      const rh = recordHash(stream, rec);
      if (!rh.equals(Buffer.from(l_rhash))) return fail(position, l_key, `${stream} record ${l_key} (position ${position}) was altered`);
      chain = chainHash(chain, rh);
      if (!chain.equals(Buffer.from(l_chash))) return fail(position, l_key, `the chain is broken at position ${position} (record ${l_key})`);
      const at = rec[time] as Date;
      const dating = datingProblem(stream, l_key, position, at, l_sealed, newest);
      if (dating) return fail(position, l_key, dating);
      newest = later(newest, at, null);
      if (BigInt(l_seq) > lastSeq) lastSeq = BigInt(l_seq);
      expected += 1n;
      result.sealed += 1;
    }
  }
  const cps = await checkpointsWithLinks(db, stream);
  for (const cp of cps) {
    if (!cp.link_hash) return fail(cp.position, null, `signed checkpoint at position ${cp.position} has no link: the end of the chain was removed`);
    if (!Buffer.from(cp.link_hash).equals(Buffer.from(cp.chain_hash))) return fail(cp.position, null, `signed checkpoint at position ${cp.position} does not match the chain`);
    if (opts.trustedKeys) {
      try {
        sshverify(cp.signature, CHECKPOINT_NAMESPACE, Buffer.from(checkpointText(stream, BigInt(cp.position), Buffer.from(cp.chain_hash), cp.at)), opts.trustedKeys);
      } catch (e) {
        return fail(cp.position, null, `signed checkpoint at position ${cp.position} has a bad signature: ${(e as Error).message}`);
      }
    }
    result.checkpoints += 1;
  }
  result.unsealed = await countUnsealed(db, stream);
  if (result.unsealed > 0) {
    // The sealer never looks that far back: such a record was written out of order, outside the service.
    const stranded = await firstUnsealedThrough(db, stream, lastSeq - BigInt(LOOKBACK));
    if (stranded !== null) return fail(null, stranded, `${stream} record ${stranded} is not on the chain and never will be (written out of order, outside the service)`);
  }
  return result;
}
