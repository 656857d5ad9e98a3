// `audit verify --checkpoint FILE`: the log still holds, and extends, every
// checkpoint witnessed in FILE (the witness log an instance appends to, or the
// checkpoint lines of an older chain export): at each checkpoint's position
// the chain hash is the one signed, so the log is at least that long and its
// history up to there is the one signed. The first checkpoint that fails is
// named by its line.

import type { Kysely } from 'kysely';
import { chainHashesAt } from '../db/chain.js';
import type { Database } from '../db/schema.js';
import { sshverify } from '../ssh/sshsig.js';
import { CHECKPOINT_NAMESPACE, checkpointText, STREAMS, type Stream } from './chain.js';

export interface WitnessEntry {
  line: number;
  stream: Stream;
  position: bigint;
  /** Hex. */
  chain: string;
  at: Date;
}

export interface WitnessResult {
  ok: boolean;
  /** Checkpoints checked (up to the first that failed). */
  checkpoints: number;
  /** The newest position checked, per stream. */
  newest: Partial<Record<Stream, string>>;
  problem: string | null;
}

/** A line of the file that is no signed checkpoint: the file itself cannot be trusted. */
export class WitnessFileError extends Error {
  override name = 'WitnessFileError';
}

/** The checkpoints of a witness file, each signature checked against `trustedKeys`; header and record lines of an export are skipped. */
export async function* readWitness(lines: AsyncIterable<string>, trustedKeys: readonly Buffer[]): AsyncGenerator<WitnessEntry> {
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    let item: Record<string, unknown>;
    try {
      item = JSON.parse(text);
    } catch {
      throw new WitnessFileError(`line ${n} is not JSON`);
    }
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw new WitnessFileError(`line ${n} is not a JSON object`);
    if (item['type'] === 'header' || item['type'] === 'link') continue;
    if (item['type'] !== 'checkpoint') throw new WitnessFileError(`line ${n} is not a checkpoint`);
    const stream = item['stream'] as Stream;
    const position = typeof item['position'] === 'string' && /^[1-9]\d{0,18}$/.test(item['position']) ? BigInt(item['position']) : null;
    const chain = typeof item['chain'] === 'string' && /^[0-9a-f]{64}$/.test(item['chain']) ? item['chain'] : null;
    const at = typeof item['at'] === 'string' ? new Date(item['at']) : null;
    if (!STREAMS.includes(stream) || position === null || chain === null || !at || Number.isNaN(at.getTime())) throw new WitnessFileError(`line ${n} is not a checkpoint (stream, position, chain, at)`);
    try {
      sshverify(String(item['signature']), CHECKPOINT_NAMESPACE, Buffer.from(checkpointText(stream, position, Buffer.from(chain, 'hex'), at)), trustedKeys);
    } catch (e) {
      throw new WitnessFileError(`line ${n}: ${stream} checkpoint at position ${position}: ${(e as Error).message}`);
    }
    yield { line: n, stream, position, chain, at };
  }
}

/** The chain hashes (hex) at `positions` of `stream`, and the chain's length. */
export type ChainLookup = (stream: Stream, positions: bigint[]) => Promise<{ length: bigint; hashes: Map<string, string> }>;

export function dbChainLookup(db: Kysely<Database>): ChainLookup {
  return (stream, positions) => chainHashesAt(db, stream, positions);
}

export const describeEntry = (e: WitnessEntry) => `line ${e.line}: ${e.stream} checkpoint at position ${e.position} (signed ${e.at.toISOString()})`;

const BATCH = 500;

/** Checks the entries in file order, a batch at a time, and stops at the first the log no longer holds. */
export async function checkWitness(entries: AsyncIterable<WitnessEntry>, lookup: ChainLookup): Promise<WitnessResult> {
  const result: WitnessResult = { ok: true, checkpoints: 0, newest: {}, problem: null };
  let batch: WitnessEntry[] = [];
  const flush = async (): Promise<boolean> => {
    const found = new Map<Stream, Awaited<ReturnType<ChainLookup>>>();
    for (const stream of new Set(batch.map((e) => e.stream))) found.set(stream, await lookup(stream, batch.filter((e) => e.stream === stream).map((e) => e.position)));
    for (const e of batch) {
      const { length, hashes } = found.get(e.stream)!;
      const chain = hashes.get(e.position.toString());
      if (chain === undefined || chain !== e.chain) {
        result.ok = false;
        const why =
          chain !== undefined ? `the log's chain there is not the one signed: the history up to it was rewritten`
          : length < e.position ? `the log ends at position ${length}: records were cut from its end`
          : 'the log has no link there (a link was removed)';
        result.problem = `${describeEntry(e)}: ${why}`;
        return false;
      }
      result.checkpoints++;
      const newest = result.newest[e.stream];
      if (newest === undefined || BigInt(newest) < e.position) result.newest[e.stream] = e.position.toString();
    }
    batch = [];
    return true;
  };
  try {
    for await (const e of entries) {
      batch.push(e);
      if (batch.length >= BATCH && !(await flush())) return result;
    }
  } catch (e) {
    if (!(e instanceof WitnessFileError)) throw e;
    if (await flush()) return { ...result, ok: false, problem: e.message };
    return result;
  }
  await flush();
  return result;
}

/** The entries by stream and position, for checking an export in its single pass (memory grows with the file). */
export async function witnessIndex(entries: AsyncIterable<WitnessEntry>): Promise<Map<Stream, Map<string, WitnessEntry>>> {
  const index = new Map<Stream, Map<string, WitnessEntry>>();
  for await (const e of entries) {
    let m = index.get(e.stream);
    if (!m) index.set(e.stream, (m = new Map()));
    // The first line witnessing a position is the one a failure names.
    if (!m.has(e.position.toString())) m.set(e.position.toString(), e);
  }
  return index;
}
