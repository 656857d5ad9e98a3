// The chain as a file an auditor can check without the database: every
// sealed record in its hashed form, in chain order, then the signed
// checkpoints. Checking it needs only the file and the CA public keys
// (`GET /v1/ca.pub`, plus any retired keys); the signatures are SSHSIG, so
// each checkpoint can also be checked with `ssh-keygen -Y verify` alone.
//
// Lines (JSON):
//   {"type":"header","format":"jit-ssh-chain/1","exported_at":...}
//   {"type":"link","stream":"certificates","position":"1","record":{...}}
//   {"type":"checkpoint","stream":...,"position":...,"chain":hex,"at":...,"signature":"-----BEGIN SSH SIGNATURE-----..."}

import type { Kysely } from 'kysely';
import { chainedRecords, checkpointsBetween } from '../db/chain.js';
import type { Database } from '../db/schema.js';
import { sshverify } from '../ssh/sshsig.js';
import { describeEntry, type WitnessEntry } from './witness-check.js';
import { canonicalRecord, chainHash, CLOCK_TOLERANCE_MS, nextPosition, CHECKPOINT_NAMESPACE, checkpointText, recordHash, SPEC, STREAMS, ZERO, type Stream } from './chain.js';

export const EXPORT_FORMAT = 'jit-ssh-chain/1';
const PAGE = 2000;

/** Yields the export, one line at a time, reading the database page by page. */
export async function* exportChain(db: Kysely<Database>, now: Date): AsyncGenerator<string> {
  yield JSON.stringify({ type: 'header', format: EXPORT_FORMAT, exported_at: now.toISOString() }) + '\n';
  for (const stream of STREAMS) {
    let from = 1n;
    for (;;) {
      const rows = await chainedRecords(db, stream, from, PAGE);
      if (rows.length === 0) {
        // Past a gap, the export goes on with what is there (the checker reports the gap).
        const next = await nextPosition(db, stream, from + BigInt(PAGE));
        if (next === null) break;
        from = next;
        continue;
      }
      const last = rows.at(-1)!.l_position;
      // Each checkpoint right after the record it covers: the checker keeps only the running hash.
      const cps = new Map((await checkpointsBetween(db, stream, from, last)).map((cp) => [cp.position, cp]));
      let out = '';
      for (const { l_position, ...record } of rows) {
        out += JSON.stringify({ type: 'link', stream, position: l_position, record: canonicalRecord(record, stream) }) + '\n';
        const cp = cps.get(l_position);
        if (cp) out += JSON.stringify({ type: 'checkpoint', stream, position: cp.position, chain: Buffer.from(cp.chain_hash).toString('hex'), at: cp.at.toISOString(), ca_fingerprint: cp.ca_fingerprint, signature: cp.signature }) + '\n';
      }
      yield out;
      from = BigInt(last) + 1n;
    }
  }
}

export interface OfflineStreamResult {
  stream: Stream;
  /** Records checked; those after `signed_through` are chained but not yet vouched for by a signature. */
  records: number;
  checkpoints: number;
  /** Position of the last signed checkpoint: records after it are covered by the hash chain only. */
  signed_through: string | null;
}

export interface OfflineResult {
  ok: boolean;
  streams: OfflineStreamResult[];
  problem: string | null;
}

/**
 * Checks an export in one pass and constant memory: positions contiguous
 * from 1, each checkpoint matching the chain recomputed from the records and
 * signed by a trusted key. A stream with records but no checkpoint is
 * refused: nothing would vouch for it.
 */
export async function verifyChainExport(lines: AsyncIterable<string>, trustedKeys: readonly Buffer[], witness?: ReadonlyMap<Stream, ReadonlyMap<string, WitnessEntry>>): Promise<OfflineResult> {
  const state = new Map<Stream, { next: bigint; chain: Buffer; newest: number; latest: { position: bigint; at: number } | null; backdated: string | null; result: OfflineStreamResult }>();
  const fail = (problem: string): OfflineResult => ({ ok: false, streams: [...state.values()].map((s) => s.result), problem });
  // Witnessed checkpoints (audit verify --checkpoint) the export does not hold; the first by line is named.
  let unheld: { entry: WitnessEntry; why: string } | null = null;
  const notHeld = (entry: WitnessEntry, why: string) => {
    if (!unheld || entry.line < unheld.entry.line) unheld = { entry, why };
  };
  let n = 0;
  let header = false;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return fail(`line ${n} is not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail(`line ${n} is not a JSON object`);
    const item = parsed as Record<string, unknown>;
    if (!header) {
      if (item['type'] !== 'header' || item['format'] !== EXPORT_FORMAT) return fail(`line ${n}: not a ${EXPORT_FORMAT} export`);
      header = true;
      continue;
    }
    const stream = item['stream'] as Stream;
    if (!STREAMS.includes(stream)) return fail(`line ${n}: unknown stream ${JSON.stringify(stream)}`);
    let s = state.get(stream);
    if (!s) state.set(stream, (s = { next: 1n, chain: ZERO, newest: Number.NaN, latest: null, backdated: null, result: { stream, records: 0, checkpoints: 0, signed_through: null } }));
    const position = typeof item['position'] === 'string' && /^\d{1,19}$/.test(item['position']) ? BigInt(item['position']) : null;
    if (position === null) return fail(`line ${n}: bad position`);
    if (item['type'] === 'link') {
      if (position !== s.next) return fail(`${stream}: the export has no record at position ${s.next} (line ${n} is position ${position})`);
      const record = item['record'];
      if (!record || typeof record !== 'object') return fail(`line ${n}: no record`);
      s.chain = chainHash(s.chain, recordHash(stream, record as Record<string, unknown>));
      // Dated before the records before it (see CLOCK_TOLERANCE_MS). The export does not say when a record
      // was sealed, only that it was before the next checkpoint: a record dated after that checkpoint is
      // the one to name, so a finding waits for it.
      const at = Date.parse(String((record as Record<string, unknown>)[SPEC[stream].time]));
      if (!s.backdated && at < s.newest - CLOCK_TOLERANCE_MS) {
        s.backdated = `${stream}: record at position ${position} is dated ${new Date(at).toISOString()}, before the records before it (${new Date(s.newest).toISOString()}): it was written after the fact`;
      }
      if (!Number.isNaN(at) && !(at <= s.newest)) s.newest = at;
      if (!Number.isNaN(at) && !(at <= (s.latest?.at ?? Number.NaN))) s.latest = { position, at };
      const w = witness?.get(stream)?.get(position.toString());
      if (w && w.chain !== s.chain.toString('hex')) notHeld(w, `the export's chain there is not the one signed: the history up to it was rewritten`);
      s.next++;
      s.result.records++;
    } else if (item['type'] === 'checkpoint') {
      // A checkpoint follows the record it covers.
      if (position !== s.next - 1n) return fail(`${stream}: checkpoint at position ${position} is out of place (the records before it were cut or reordered)`);
      const chain = s.chain;
      if (chain.toString('hex') !== item['chain']) return fail(`${stream}: checkpoint at position ${position} does not match the records (a record before it was altered)`);
      const at = typeof item['at'] === 'string' ? new Date(item['at']) : null;
      if (!at || Number.isNaN(at.getTime())) return fail(`${stream}: checkpoint at position ${position} has no valid time`);
      try {
        sshverify(String(item['signature']), CHECKPOINT_NAMESPACE, Buffer.from(checkpointText(stream, position, chain, at)), trustedKeys);
      } catch (e) {
        return fail(`${stream}: checkpoint at position ${position}: ${(e as Error).message}`);
      }
      if (s.latest && s.latest.at > at.getTime() + CLOCK_TOLERANCE_MS) {
        return fail(`${stream}: record at position ${s.latest.position} is dated ${new Date(s.latest.at).toISOString()}, after the checkpoint at position ${position} that signed it (${at.toISOString()}): its time is false`);
      }
      if (s.backdated) return fail(s.backdated);
      s.latest = null;
      s.result.checkpoints++;
      s.result.signed_through = position.toString();
    } else {
      return fail(`line ${n}: unknown line type ${JSON.stringify(item['type'])}`);
    }
  }
  if (!header) return fail('the export is empty');
  for (const [stream, entries] of witness ?? []) {
    const end = (state.get(stream)?.next ?? 1n) - 1n;
    for (const e of entries.values()) if (e.position > end) notHeld(e, `the export ends at position ${end}: records were cut from its end`);
  }
  const missing = unheld as { entry: WitnessEntry; why: string } | null;
  if (missing) return fail(`checkpoint file ${describeEntry(missing.entry)}: ${missing.why}`);
  for (const s of state.values()) {
    if (s.backdated) return fail(s.backdated);
    if (s.result.records > 0 && s.result.checkpoints === 0) return fail(`${s.result.stream}: no signed checkpoint vouches for its ${s.result.records} records`);
  }
  return { ok: true, streams: [...state.values()].map((s) => s.result), problem: null };
}
