// The chain's tables (chain_links, chain_checkpoints) and the records of the
// streams they chain, read in chain order (audit/chain.ts computes and checks
// the hashes; audit/offline.ts exports them).

import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { ChainCheckpointsTable, Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type Stream = 'certificates' | 'audit_events' | 'row_versions';
/** row_versions: every version of the workflow's rows (requests, approvals, grants), see audit/workflow.ts. */
export const STREAMS: Stream[] = ['certificates', 'audit_events', 'row_versions'];

/** Each stream's table: its key (a link's record_key), its write order, its time, and whether rows store their own hash. */
export const SPEC: Record<Stream, { table: string; key: string; seq: string; time: string; storedHash: boolean }> = {
  // The issuer stores each certificate's record hash as it writes the row (record_hash).
  certificates: { table: 'certificates', key: 'serial', seq: 'seq', time: 'issued_at', storedHash: true },
  audit_events: { table: 'audit_events', key: 'id', seq: 'id', time: 'at', storedHash: false },
  row_versions: { table: 'row_versions', key: 'id', seq: 'id', time: 'at', storedHash: false },
};

/** The last link of a stream's chain, or undefined when nothing is sealed yet. */
export async function lastLink(db: Db, stream: Stream): Promise<{ position: string; chain_hash: Buffer; record_seq: string } | undefined> {
  return db.selectFrom('chain_links').select(['position', 'chain_hash', 'record_seq']).where('stream', '=', stream).orderBy('position', 'desc').limit(1).executeTakeFirst();
}

/**
 * Takes the stream's sealing lock for the rest of `trx`, across every instance, unless another
 * holds it: false then, at once (no queueing behind a sealer that may hang).
 */
export async function tryLockStream(trx: Transaction<Database>, stream: Stream): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtext(${`jit-ssh-chain:${stream}`})) as ok`.execute(trx);
  return rows[0]?.ok === true;
}

/** Up to `limit` records written after `afterSeq` and not on the chain, in write order: order, key, stored hash (or null) and time only. */
export async function unsealedRecords(db: Db, stream: Stream, afterSeq: bigint, limit: number): Promise<Array<{ seq: string; key: string; hash: Buffer | null; at: Date }>> {
  const { table, key, seq, time, storedHash } = SPEC[stream];
  const { rows } = await sql<{ seq: string; key: string; hash: Buffer | null; at: Date }>`
    select r.${sql.ref(seq)}::text as seq, r.${sql.ref(key)}::text as key, ${storedHash ? sql`r.record_hash` : sql`null::bytea`} as hash, r.${sql.ref(time)} as at
    from ${sql.table(table)} r
    where r.${sql.ref(seq)} > ${afterSeq.toString()}
      and not exists (select 1 from chain_links l where l.stream = ${stream} and l.record_key = r.${sql.ref(key)}::text)
    order by r.${sql.ref(seq)} limit ${limit}`.execute(db);
  return rows;
}

/** The whole records of `stream` with these keys, as read from its table. */
export async function recordsByKey(db: Db, stream: Stream, keys: string[]): Promise<Array<Record<string, unknown>>> {
  const { table, key } = SPEC[stream];
  const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)} where ${sql.ref(key)} = any(${keys}::bigint[])`.execute(db);
  return rows;
}

/** The time of the record of `stream` written at `seq`, or null when there is none. */
export async function recordTime(db: Db, stream: Stream, seq: bigint): Promise<Date | null> {
  const { table, seq: order, time } = SPEC[stream];
  const { rows } = await sql<{ at: Date }>`select ${sql.ref(time)} as at from ${sql.table(table)} where ${sql.ref(order)} = ${seq.toString()}`.execute(db);
  return rows[0]?.at ?? null;
}

export interface NewLink {
  stream: Stream;
  position: string;
  record_key: string;
  record_seq: string;
  record_hash: Buffer;
  chain_hash: Buffer;
  sealed_at: Date;
}

/** Appends links, 500 a statement. */
export async function insertLinks(db: Db, links: NewLink[]): Promise<void> {
  for (let i = 0; i < links.length; i += 500) await db.insertInto('chain_links').values(links.slice(i, i + 500)).execute();
}

/** The chain hash at `position` of `stream`, or null when the chain has no link there. */
export async function chainHashAt(db: Db, stream: Stream, position: bigint): Promise<Buffer | null> {
  const link = await db.selectFrom('chain_links').select('chain_hash').where('stream', '=', stream).where('position', '=', position.toString()).executeTakeFirst();
  return link ? Buffer.from(link.chain_hash) : null;
}

/** The chain hashes (hex) at `positions` of `stream`, by position, and the chain's length. */
export async function chainHashesAt(db: Db, stream: Stream, positions: bigint[]): Promise<{ length: bigint; hashes: Map<string, string> }> {
  const { rows } = await sql<{ position: string; chain: string }>`
    select position::text as position, encode(chain_hash, 'hex') as chain from chain_links
    where stream = ${stream} and position = any(${positions.map(String)}::bigint[])`.execute(db);
  const { rows: top } = await sql<{ n: string | null }>`select max(position)::text as n from chain_links where stream = ${stream}`.execute(db);
  return { length: BigInt(top[0]?.n ?? 0), hashes: new Map(rows.map((r) => [r.position, r.chain])) };
}

/** The first link position at or after `from`, or null when there is none. */
export async function nextPosition(db: Db, stream: Stream, from: bigint): Promise<bigint | null> {
  const r = await db.selectFrom('chain_links').select('position').where('stream', '=', stream).where('position', '>=', from.toString()).orderBy('position').limit(1).executeTakeFirst();
  return r ? BigInt(r.position) : null;
}

export type LinkedRecord = Record<string, unknown> & { l_position: string; l_key: string; l_seq: string; l_rhash: Buffer; l_chash: Buffer; l_sealed: Date };

/**
 * The links at positions [from, from + count) of `stream`, in order, each with its record's
 * columns beside the link's (l_*); a record that is gone leaves them null.
 */
export async function linksWithRecords(db: Db, stream: Stream, from: bigint, count: number): Promise<LinkedRecord[]> {
  const { table, key } = SPEC[stream];
  // One page of positions first, then its records through their primary key (the cast is on
  // the link's side): joined before the limit, PostgreSQL would join every later link per page.
  const { rows } = await sql<LinkedRecord>`
    select l.position as l_position, l.record_key as l_key, l.record_seq as l_seq, l.record_hash as l_rhash, l.chain_hash as l_chash, l.sealed_at as l_sealed, r.*
    from (select * from chain_links where stream = ${stream} and position >= ${from.toString()} and position < ${(from + BigInt(count)).toString()}) l
    left join ${sql.table(table)} r on r.${sql.ref(key)} = l.record_key::bigint
    order by l.position`.execute(db);
  return rows;
}

/** The records still present at link positions [from, from + count) of `stream`, in chain order, each with its position (l_position). */
export async function chainedRecords(db: Db, stream: Stream, from: bigint, count: number): Promise<Array<Record<string, unknown> & { l_position: string }>> {
  const { table, key } = SPEC[stream];
  // A range of positions, then its records (see linksWithRecords on why not a limit after the join).
  const { rows } = await sql<Record<string, unknown> & { l_position: string }>`
    select l.position as l_position, r.* from (select * from chain_links where stream = ${stream} and position >= ${from.toString()} and position < ${(from + BigInt(count)).toString()}) l
    join ${sql.table(table)} r on r.${sql.ref(key)} = l.record_key::bigint
    order by l.position`.execute(db);
  return rows;
}

export type CheckpointRow = Selectable<ChainCheckpointsTable>;

/** Whether `stream` has a signed checkpoint at `position`. */
export async function hasCheckpointAt(db: Db, stream: Stream, position: bigint): Promise<boolean> {
  return (await db.selectFrom('chain_checkpoints').select('position').where('stream', '=', stream).where('position', '=', position.toString()).executeTakeFirst()) !== undefined;
}

/** Stores a checkpoint; one already stored at its position stays. */
export async function insertCheckpoint(db: Db, cp: Insertable<ChainCheckpointsTable>): Promise<void> {
  await db.insertInto('chain_checkpoints').values(cp).onConflict((oc) => oc.doNothing()).execute();
}

/** The checkpoints of `stream` at positions [from, through]. */
export async function checkpointsBetween(db: Db, stream: Stream, from: bigint, through: string): Promise<CheckpointRow[]> {
  return db.selectFrom('chain_checkpoints').selectAll().where('stream', '=', stream).where('position', '>=', from.toString()).where('position', '<=', through).execute();
}

/** Every checkpoint of `stream` in order, with the chain hash of the link at its position (null when that link is gone). */
export async function checkpointsWithLinks(db: Db, stream: Stream) {
  return db
    .selectFrom('chain_checkpoints as c')
    .leftJoin('chain_links as l', (j) => j.onRef('l.stream', '=', 'c.stream').onRef('l.position', '=', 'c.position'))
    .select(['c.position', 'c.chain_hash', 'c.at', 'c.signature', 'l.chain_hash as link_hash'])
    .where('c.stream', '=', stream)
    .orderBy('c.position')
    .execute();
}

const unsealedWhere = (stream: Stream) => sql`not exists (select 1 from chain_links l where l.stream = ${stream} and l.record_key = r.${sql.ref(SPEC[stream].key)}::text)`;

/** How many records of `stream` are not on its chain. */
export async function countUnsealed(db: Db, stream: Stream): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from ${sql.table(SPEC[stream].table)} r where ${unsealedWhere(stream)}`.execute(db);
  return Number(rows[0]!.n);
}

/** The key of the first record of `stream` written at or before `seq` that is not on its chain, or null. */
export async function firstUnsealedThrough(db: Db, stream: Stream, seq: bigint): Promise<string | null> {
  const { table, key, seq: order } = SPEC[stream];
  const { rows } = await sql<{ k: string }>`
    select r.${sql.ref(key)}::text as k from ${sql.table(table)} r
    where r.${sql.ref(order)} <= ${seq.toString()} and ${unsealedWhere(stream)}
    order by r.${sql.ref(order)} limit 1`.execute(db);
  return rows[0]?.k ?? null;
}
