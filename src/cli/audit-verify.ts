// `jit-ssh-ca audit verify`: the log in the database (through the running
// server's admin socket, or the database itself), a chain export offline, and
// either against a file of witnessed checkpoints (--checkpoint).

import { createReadStream, promises as fs } from 'node:fs';
import readline from 'node:readline';
import { verifyChainExport } from '../audit/offline.js';
import { checkWitness, readWitness, WitnessFileError, witnessIndex, type ChainLookup } from '../audit/witness-check.js';
import type { ServerConfig } from '../config.js';
import { silentLogger } from '../log.js';
import { caKeyBlobs, loadCaKeys } from '../services/ca-signer.js';
import { loadTrustedKeys } from '../ssh/ca-key.js';
import type { AuditAdmin } from './admin-client.js';
import type { AuditOptions } from './audit-commands.js';

/** The CA public key blobs signatures are checked against: those in --ca-keys, else this CA's (current and retired). */
async function trustedKeyBlobs(keysFile: string | undefined, config: ServerConfig): Promise<Buffer[]> {
  let keys: string[];
  if (keysFile) {
    const k = await loadTrustedKeys(keysFile);
    keys = [...k.trusted, ...k.retired];
    if (keys.length === 0) throw new Error(`${keysFile} holds no CA public key`);
  } else {
    const k = await loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger);
    keys = [...k.publicKeys, ...k.retiredKeys];
  }
  return [...caKeyBlobs(keys).values()];
}

const lines = async (file: string) => readline.createInterface({ input: (await readInput(file)) as NodeJS.ReadableStream, crlfDelay: Infinity });

/** Checks a chain export with nothing but the file and the CA public keys (and, with --checkpoint, a witness file). */
export async function verifyFile(file: string, keysFile: string | undefined, config: ServerConfig, opts: AuditOptions): Promise<number> {
  const keys = await trustedKeyBlobs(keysFile, config);
  const witnessFile = typeof opts.flags['checkpoint'] === 'string' ? opts.flags['checkpoint'] : undefined;
  let witness: Awaited<ReturnType<typeof witnessIndex>> | undefined;
  if (witnessFile) {
    try {
      witness = await witnessIndex(readWitness(await lines(witnessFile), keys));
    } catch (e) {
      if (!(e instanceof WitnessFileError)) throw e;
      process.stderr.write(`${witnessFile}: NOT A WITNESS: ${e.message}\n`);
      return 1;
    }
  }
  const result = await verifyChainExport(await lines(file), keys, witness);
  if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    for (const s of result.streams) {
      process.stdout.write(`${s.stream}: ${s.records} records, ${s.checkpoints} signed checkpoints${s.signed_through && BigInt(s.signed_through) < BigInt(s.records) ? `, signed through position ${s.signed_through}` : ''}\n`);
    }
  }
  if (result.ok && witness && !opts.json) {
    process.stdout.write(`checkpoints: the export holds all ${[...witness.values()].reduce((n, m) => n + m.size, 0)} positions witnessed in ${witnessFile}\n`);
  }
  if (!result.ok) process.stderr.write(`${file}: NOT INTACT: ${result.problem}\n`);
  return result.ok ? 0 : 1;
}

/** --checkpoint FILE against the log itself: every checkpoint witnessed there is still held. */
async function checkWitnessFile(audit: AuditAdmin, file: string, config: ServerConfig, opts: AuditOptions) {
  const keys = await trustedKeyBlobs(typeof opts.flags['ca-keys'] === 'string' ? opts.flags['ca-keys'] : undefined, config);
  const lookup: ChainLookup = async (stream, positions) => {
    const r = await audit.chainHashes(stream, positions.map(String));
    return { length: BigInt(r.length), hashes: new Map(Object.entries(r.hashes)) };
  };
  return checkWitness(readWitness(await lines(file), keys), lookup);
}

export async function verify(audit: AuditAdmin, config: ServerConfig, opts: AuditOptions): Promise<number> {
  const witnessFile = typeof opts.flags['checkpoint'] === 'string' ? opts.flags['checkpoint'] : undefined;
  // A file that cannot be read stops the command before any work.
  if (witnessFile) await fs.access(witnessFile).catch((e: NodeJS.ErrnoException) => Promise.reject(new Error(`cannot read ${witnessFile}: ${e.code}`)));
  const result = await audit.verify();
  const witness = witnessFile ? await checkWitnessFile(audit, witnessFile, config, opts) : null;
  if (opts.json) process.stdout.write(JSON.stringify(witness ? { ...result, ok: result.ok && witness.ok, checkpoints: witness } : result) + '\n');
  for (const s of result.streams) {
    if (s.ok) {
      const pending = s.unsealed > 0 ? `, ${s.unsealed} written since the last seal` : '';
      if (!opts.json) process.stdout.write(`${s.stream}: intact, ${s.sealed} records on the chain, ${s.checkpoints} signed checkpoints${pending}\n`);
    } else {
      process.stderr.write(`${s.stream}: NOT INTACT: ${s.problem!.detail}\n`);
    }
  }
  const w = result.workflow;
  if (w.ok && !opts.json) {
    process.stdout.write(`workflow: intact, ${w.rows.requests} requests, ${w.rows.approvals} approvals, ${w.rows.grants} grants and ${w.rows.revocations} revocations agree with their chained history\n`);
  } else if (!w.ok) process.stderr.write(`workflow: NOT INTACT: ${w.problem}\n`);
  if (witness?.ok && !opts.json) {
    const newest = Object.entries(witness.newest).map(([st, p]) => `${st} ${p}`).join(', ');
    process.stdout.write(`checkpoints: the log holds and extends all ${witness.checkpoints} witnessed in ${witnessFile}${newest ? ` (newest: ${newest})` : ''}\n`);
  } else if (witness) process.stderr.write(`${witnessFile}: NOT INTACT: ${witness.problem}\n`);
  return result.ok && (witness?.ok ?? true) ? 0 : 1;
}

/** A file's text, or stdin's for `-`; a file that cannot be read is one clear error. */
export async function readInput(file: string): Promise<AsyncIterable<string>> {
  if (file === '-') {
    process.stdin.setEncoding('utf8');
    return process.stdin;
  }
  try {
    await fs.access(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
  }
  return createReadStream(file, { encoding: 'utf8' });
}

