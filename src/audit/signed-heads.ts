// What a database owner cannot reach: the last chain head this instance
// signed, kept in a file of its data directory, and a witness line for every
// checkpoint it signs, appended to a file (ship it elsewhere: a log
// collector, a WORM bucket, another host) and written to the service's own
// log (journald, the container runtime).
//
// Deleting the newest records with their links and checkpoints, or rewriting
// history and re-chaining it, leaves a database that is consistent with
// itself. It no longer holds these heads: the instance then refuses to sign
// (see startSealer), and `audit verify --checkpoint FILE` names the first
// witnessed checkpoint the log no longer holds.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { STREAMS, type SignedHead, type Stream } from './chain.js';

export const HEADS_FILE = 'audit-heads.json';
export const WITNESS_FILE = 'checkpoints.jsonl';
const HEADS_FORMAT = 'jit-ssh-signed-heads/1';

/** A checkpoint as witnessed: the same fields as a checkpoint line of a chain export. */
export interface CheckpointRecord {
  stream: Stream;
  position: bigint;
  chain: Buffer;
  at: Date;
  ca_fingerprint: string;
  signature: string;
}

export function checkpointLine(cp: CheckpointRecord): string {
  return JSON.stringify({ type: 'checkpoint', stream: cp.stream, position: cp.position.toString(), chain: cp.chain.toString('hex'), at: cp.at.toISOString(), ca_fingerprint: cp.ca_fingerprint, signature: cp.signature }) + '\n';
}

/** The heads in `file`; none when it does not exist. A damaged file is an error: it is evidence. */
export async function readSignedHeads(file: string): Promise<Map<Stream, SignedHead>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  const bad = (why: string) => new Error(`${file} is not a file of signed heads (${why}); move it aside only once you know why`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const p = parsed as { format?: unknown; streams?: Record<string, { position?: unknown; chain?: unknown; at?: unknown }> };
  if (!p || p.format !== HEADS_FORMAT || typeof p.streams !== 'object' || p.streams === null) throw bad(`no ${HEADS_FORMAT} header`);
  const heads = new Map<Stream, SignedHead>();
  for (const [stream, h] of Object.entries(p.streams)) {
    if (!STREAMS.includes(stream as Stream)) throw bad(`unknown stream ${stream}`);
    if (typeof h?.position !== 'string' || !/^[1-9]\d{0,18}$/.test(h.position) || typeof h.chain !== 'string' || !/^[0-9a-f]{64}$/.test(h.chain) || typeof h.at !== 'string' || Number.isNaN(Date.parse(h.at))) {
      throw bad(`a bad entry for ${stream}`);
    }
    heads.set(stream as Stream, { position: BigInt(h.position), chain: Buffer.from(h.chain, 'hex'), at: new Date(h.at) });
  }
  return heads;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const h = await fs.open(tmp, 'w', 0o600);
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, file);
}

export interface Witness {
  readonly headFile: string;
  /** The last head this instance signed of `stream`, if any. */
  last(stream: Stream): SignedHead | undefined;
  heads(): Map<Stream, SignedHead>;
  /**
   * Witnesses a checkpoint just signed, before it is stored: a line in the
   * witness file (synced), a line in the service log, then the new last head
   * (written atomically). Throws when the files cannot be written.
   */
  record(cp: CheckpointRecord): Promise<void>;
}

export async function openWitness(opts: { headFile: string; logFile: string | null; logger: Logger }): Promise<Witness> {
  const heads = await readSignedHeads(opts.headFile);
  const save = () =>
    writeAtomically(
      opts.headFile,
      JSON.stringify({ format: HEADS_FORMAT, streams: Object.fromEntries([...heads].map(([s, h]) => [s, { position: h.position.toString(), chain: h.chain.toString('hex'), at: h.at.toISOString() }])) }, null, 2) + '\n',
    );
  return {
    headFile: opts.headFile,
    last: (stream) => heads.get(stream),
    heads: () => new Map(heads),
    async record(cp) {
      const line = checkpointLine(cp);
      if (opts.logFile) {
        const h = await fs.open(opts.logFile, 'a', 0o640);
        try {
          await h.writeFile(line);
          await h.sync();
        } finally {
          await h.close();
        }
      }
      opts.logger.info('audit checkpoint signed', JSON.parse(line));
      heads.set(cp.stream, { position: cp.position, chain: cp.chain, at: cp.at });
      await save();
    },
  };
}
