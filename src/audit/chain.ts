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
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { sshsign, sshverify } from '../ssh/sshsig.js';
import type { Signer } from '../ssh/signer.js';
import type { Witness } from './signed-heads.js';

export type Stream = 'certificates' | 'audit_events' | 'row_versions';
/** row_versions: every version of the workflow's rows (requests, approvals, grants), see audit/workflow.ts. */
export const STREAMS: Stream[] = ['certificates', 'audit_events', 'row_versions'];

export const SPEC: Record<Stream, { table: string; key: string; seq: string; time: string; storedHash: boolean }> = {
  // The issuer stores each certificate's record hash as it writes the row (record_hash).
  certificates: { table: 'certificates', key: 'serial', seq: 'seq', time: 'issued_at', storedHash: true },
  audit_events: { table: 'audit_events', key: 'id', seq: 'id', time: 'at', storedHash: false },
  row_versions: { table: 'row_versions', key: 'id', seq: 'id', time: 'at', storedHash: false },
};

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
  return createHash('sha256').update(`${stream}\0${JSON.stringify(canonicalRecord(row))}`).digest();
}

/** A record's hashed content: its canonical form without its write order (`seq`) or stored hash. */
export function canonicalRecord(row: Record<string, unknown>): unknown {
  const { seq: _seq, record_hash: _hash, ...content } = row;
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

async function head(db: Kysely<Database>, stream: Stream): Promise<Head> {
  const last = await db.selectFrom('chain_links').select(['position', 'chain_hash', 'record_seq']).where('stream', '=', stream).orderBy('position', 'desc').limit(1).executeTakeFirst();
  return last ? { position: BigInt(last.position), chain: Buffer.from(last.chain_hash), seq: BigInt(last.record_seq) } : { position: 0n, chain: ZERO, seq: 0n };
}

/**
 * Appends up to `limit` unsealed records of `stream` to its chain; returns how many
 * (0 also when another instance is sealing the stream just now).
 * A modest limit keeps memory bounded while a backlog is caught up on.
 */
export async function sealStream(db: Kysely<Database>, stream: Stream, now: Date, limit = 1000, onMisdated?: (problem: string) => void): Promise<number> {
  const { table, key, seq, time, storedHash } = SPEC[stream];
  // Records whose time cannot be true are sealed all the same (refusing them would stall the
  // chain behind them); they are reported here, once committed, and verify names them.
  const misdated: string[] = [];
  const sealed = await db.transaction().execute(async (trx) => {
    // One sealer per stream at a time, across every instance. One that finds another at work
    // leaves it to them instead of queueing behind: the records are sealed either way, and a
    // hung instance holding the lock (ended by idle_in_transaction_session_timeout) blocks nobody.
    const { rows: locked } = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtext(${`jit-ssh-chain:${stream}`})) as ok`.execute(trx);
    if (!locked[0]?.ok) return 0;
    const h = await head(trx as unknown as Kysely<Database>, stream);
    const from = h.seq > BigInt(LOOKBACK) ? h.seq - BigInt(LOOKBACK) : 0n;
    // Only order, key and stored hash: the record itself is read only when no hash was stored.
    const { rows } = await sql<{ seq: string; key: string; hash: Buffer | null; at: Date }>`
      select r.${sql.ref(seq)}::text as seq, r.${sql.ref(key)}::text as key, ${storedHash ? sql`r.record_hash` : sql`null::bytea`} as hash, r.${sql.ref(time)} as at
      from ${sql.table(table)} r
      where r.${sql.ref(seq)} > ${from.toString()}
        and not exists (select 1 from chain_links l where l.stream = ${stream} and l.record_key = r.${sql.ref(key)}::text)
      order by r.${sql.ref(seq)} limit ${limit}`.execute(trx);
    if (rows.length === 0) return 0;
    const missing = rows.filter((r) => r.hash === null).map((r) => r.key);
    const computed = new Map<string, Buffer>();
    if (missing.length > 0) {
      const { rows: full } = await sql<Record<string, unknown>>`select * from ${sql.table(table)} where ${sql.ref(key)} = any(${missing}::bigint[])`.execute(trx);
      for (const row of full) computed.set(String(row[key]), recordHash(stream, row));
    }
    const { rows: top } = h.position === 0n ? { rows: [] } : await sql<{ at: Date }>`select ${sql.ref(time)} as at from ${sql.table(table)} where ${sql.ref(seq)} = ${h.seq.toString()}`.execute(trx);
    let newest: Date | null = top[0]?.at ?? null;
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
    for (let i = 0; i < links.length; i += 500) await trx.insertInto('chain_links').values(links.slice(i, i + 500)).execute();
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
  const link = await db.selectFrom('chain_links').select('chain_hash').where('stream', '=', stream).where('position', '=', signed.position.toString()).executeTakeFirst();
  const when = signed.at.toISOString();
  if (!link) return `the chain ends at position ${(await head(db, stream)).position}, before position ${signed.position} this instance signed at ${when}: records were cut from its end`;
  if (!Buffer.from(link.chain_hash).equals(signed.chain)) return `the chain at position ${signed.position} is not the one this instance signed at ${when}: the history up to it was rewritten`;
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
  const done = await db.selectFrom('chain_checkpoints').select('position').where('stream', '=', stream).where('position', '=', h.position.toString()).executeTakeFirst();
  if (done) return null;
  const signature = await sshsign(signer, CHECKPOINT_NAMESPACE, Buffer.from(checkpointText(stream, h.position, h.chain, now)));
  await witness?.record({ stream, position: h.position, chain: h.chain, at: now, ca_fingerprint: signer.fingerprint, signature });
  await db
    .insertInto('chain_checkpoints')
    .values({ stream, position: h.position.toString(), chain_hash: h.chain, at: now, ca_fingerprint: signer.fingerprint, signature })
    .onConflict((oc) => oc.doNothing())
    .execute();
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

/** The first link position at or after `from`, or null when there is none. */
export async function nextPosition(db: Kysely<Database>, stream: Stream, from: bigint): Promise<bigint | null> {
  const r = await db.selectFrom('chain_links').select('position').where('stream', '=', stream).where('position', '>=', from.toString()).orderBy('position').limit(1).executeTakeFirst();
  return r ? BigInt(r.position) : null;
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
  const { table, key, seq, time } = SPEC[stream];
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
    // One page of positions first, then its records through their primary key (the cast is on
    // the link's side): joined before the limit, PostgreSQL would join every later link per page.
    const { rows } = await sql<Record<string, unknown> & { l_position: string; l_key: string; l_seq: string; l_rhash: Buffer; l_chash: Buffer; l_sealed: Date }>`
      select l.position as l_position, l.record_key as l_key, l.record_seq as l_seq, l.record_hash as l_rhash, l.chain_hash as l_chash, l.sealed_at as l_sealed, r.*
      from (select * from chain_links where stream = ${stream} and position >= ${expected.toString()} and position < ${(expected + BigInt(PAGE)).toString()}) l
      left join ${sql.table(table)} r on r.${sql.ref(key)} = l.record_key::bigint
      order by l.position`.execute(db);
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
  const cps = await db
    .selectFrom('chain_checkpoints as c')
    .leftJoin('chain_links as l', (j) => j.onRef('l.stream', '=', 'c.stream').onRef('l.position', '=', 'c.position'))
    .select(['c.position', 'c.chain_hash', 'c.at', 'c.signature', 'l.chain_hash as link_hash'])
    .where('c.stream', '=', stream)
    .orderBy('c.position')
    .execute();
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
  const unsealedWhere = sql`not exists (select 1 from chain_links l where l.stream = ${stream} and l.record_key = r.${sql.ref(key)}::text)`;
  const { rows: unsealed } = await sql<{ n: string }>`select count(*) as n from ${sql.table(table)} r where ${unsealedWhere}`.execute(db);
  result.unsealed = Number(unsealed[0]!.n);
  if (result.unsealed > 0) {
    // The sealer never looks that far back: such a record was written out of order, outside the service.
    const { rows: stranded } = await sql<{ k: string }>`
      select r.${sql.ref(key)}::text as k from ${sql.table(table)} r
      where r.${sql.ref(seq)} <= ${(lastSeq - BigInt(LOOKBACK)).toString()} and ${unsealedWhere}
      order by r.${sql.ref(seq)} limit 1`.execute(db);
    if (stranded[0]) return fail(null, stranded[0].k, `${stream} record ${stranded[0].k} is not on the chain and never will be (written out of order, outside the service)`);
  }
  return result;
}
