// `jit-ssh-ca ca pubkey|generate|keys`: the CA keys and their rotation.
//
// A rotation, with no login refused at any step:
//   1. `ca generate --out NEW` makes the next key; its public line goes into
//      JIT_SSH_TRUSTED_CA_KEYS and the CA restarts: /v1/ca.pub now lists both,
//      signed by the old key, and servers take the new list on their next refresh.
//   2. Once servers have it: JIT_SSH_CA_KEY=NEW, the old public line in the
//      trusted file, restart. New certificates are signed by the new key.
//   3. When `ca keys` shows the old key has no live certificate left, mark its
//      line `@retired`: servers stop trusting it; the audit log's checkpoints it
//      signed still verify.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ServerConfig } from '../config.js';
import { silentLogger } from '../log.js';
import { caKeyBlobs, loadCaKeys } from '../services/ca-signer.js';
import { generateCaKey } from '../ssh/ca-key.js';
import { openAdmin } from './admin-client.js';
import { table } from './client/format.js';
import { UsageError } from './run.js';

export async function caCommand(sub: string | undefined, rest: string[], config: ServerConfig, opts: { json: boolean; out: string | undefined }): Promise<number> {
  if (rest.length > 0) throw new UsageError(`ca ${sub ?? ''} takes no arguments (got ${JSON.stringify(rest[0])})`);
  switch (sub) {
    case 'pubkey': {
      // Printing the public keys never creates a CA key as a side effect.
      const keys = await loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger);
      process.stdout.write(keys.publicKeys.join('\n') + '\n');
      return 0;
    }
    case 'generate': {
      if (!opts.out) throw new UsageError('usage: jit-ssh-ca ca generate --out FILE');
      const file = path.resolve(opts.out);
      if (!(await generateCaKey(file, 'jit-ssh-ca'))) throw new Error(`${file} exists already; it was left as it is`);
      process.stdout.write(await fs.readFile(`${file}.pub`, 'utf8'));
      process.stderr.write(`new ed25519 CA key in ${file} (0600); next: add the public line above to JIT_SSH_TRUSTED_CA_KEYS and restart (see jit-ssh-ca --help, "Rotating the CA key")\n`);
      return 0;
    }
    case 'keys':
      return keysStatus(config, opts.json);
    default:
      throw new UsageError('usage: jit-ssh-ca ca pubkey|generate|keys');
  }
}

async function keysStatus(config: ServerConfig, json: boolean): Promise<number> {
  const keys = await loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger);
  const admin = await openAdmin(config);
  let usage;
  try {
    usage = new Map((await admin.audit.caKeyUsage()).map((u) => [u.ca_key_fingerprint, u]));
  } finally {
    await admin.close();
  }
  const now = Date.now();
  const rows: Array<{ fingerprint: string; status: string; key: string | null; certificates: number; live: number; last_valid_before: string | null; retirable: boolean }> = [];
  const add = (lines: string[], status: (i: number) => string) =>
    [...caKeyBlobs(lines)].forEach(([fp], i) => {
      const u = usage.get(fp);
      usage.delete(fp);
      const live = u ? u.live : 0;
      rows.push({ fingerprint: fp, status: status(i), key: lines[i]!, certificates: u?.certificates ?? 0, live, last_valid_before: u?.last_valid_before ?? null, retirable: status(i) === 'trusted' && live === 0 });
    });
  add(keys.publicKeys, (i) => (i === 0 ? 'signing' : 'trusted'));
  add(keys.retiredKeys, () => 'retired');
  // Certificates from a key no longer configured at all (not even as retired).
  for (const u of usage.values()) rows.push({ fingerprint: u.ca_key_fingerprint, status: 'unknown', key: null, certificates: u.certificates, live: u.live, last_valid_before: u.last_valid_before, retirable: false });
  if (json) {
    process.stdout.write(JSON.stringify({ keys: rows }) + '\n');
    return 0;
  }
  process.stdout.write(
    table([
      ['STATUS', 'FINGERPRINT', 'CERTIFICATES', 'LIVE', 'LAST VALID UNTIL'],
      ...rows.map((r) => [r.status, r.fingerprint, String(r.certificates), String(r.live), r.last_valid_before && Date.parse(r.last_valid_before) > now ? r.last_valid_before : r.last_valid_before ? 'expired' : '-']),
    ]),
  );
  for (const r of rows) {
    if (r.retirable) process.stderr.write(`${r.fingerprint} has no live certificate: it can be retired (mark its line @retired in ${config.trustedCaKeysPath})\n`);
    else if (r.status === 'trusted') process.stderr.write(`${r.fingerprint} can be retired after ${r.last_valid_before}\n`);
  }
  return 0;
}
