// `jit-ssh-ca audit ...`, `revoke` and `krl`: the auditors' and operators'
// view of the logs from the CA host, through the running server's admin
// socket or, with no server running, the database itself.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CertificateView, EventView } from '../audit/queries.js';
import type { ServerConfig } from '../config.js';
import { CERT_COLUMNS, csvRow, EVENT_COLUMNS } from '../audit/csv.js';
import { renderAccessReport } from '../audit/report.js';
import { EMPTY_INGEST, type IngestResult } from '../audit/usage.js';
import { openAdmin, type AuditAdmin } from './admin-client.js';
import { readInput, verify, verifyFile } from './audit-verify.js';
import { table } from './client/format.js';
import { UsageError } from './run.js';

export interface AuditOptions {
  flags: Record<string, string | boolean | undefined>;
  json: boolean;
}

type Query = Record<string, string | undefined>;

const CERT_FILTERS = ['user', 'principal', 'role', 'serial', 'request', 'approver', 'break-glass', 'kind', 'since', 'until'] as const;
const EVENT_FILTERS = ['actor', 'action', 'target', 'since', 'until'] as const;

function query(flags: AuditOptions['flags'], names: readonly string[]): Query {
  const q: Query = {};
  for (const n of names) {
    const v = flags[n];
    if (typeof v === 'string') q[n.replace('-', '_')] = v;
  }
  for (const n of ['limit', 'cursor']) if (typeof flags[n] === 'string') q[n] = flags[n] as string;
  return q;
}

function format(flags: AuditOptions['flags'], allowed: string[], fallback: string): string {
  const f = typeof flags['format'] === 'string' ? flags['format'] : fallback;
  if (!allowed.includes(f)) throw new UsageError(`--format must be one of ${allowed.join(', ')}`);
  return f;
}

/** Every page when --all is given, else the one asked for (and a hint on stderr when there is more). */
async function* pages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>, all: boolean, firstCursor: string | undefined) {
  let cursor = firstCursor;
  for (;;) {
    const page = await fetchPage(cursor);
    yield page.items;
    if (!page.next_cursor) return;
    if (!all) {
      process.stderr.write(`more records: add --cursor ${page.next_cursor} (or --all)\n`);
      return;
    }
    cursor = page.next_cursor;
  }
}

/** The short table a person reads; csv and json carry every field. */
const CERT_TABLE: Array<[string, (c: CertificateView) => string]> = [
  ['SERIAL', (c) => c.serial],
  ['ISSUED', (c) => c.issued_at.replace(/\.\d+Z$/, 'Z')],
  ['USER', (c) => c.username],
  ['ROLE', (c) => c.role ?? '-'],
  ['PRINCIPALS', (c) => c.principals.join(',')],
  ['UNTIL', (c) => c.valid_before.replace(/\.\d+Z$/, 'Z')],
  ['FLAGS', (c) => [c.kind === 'host' ? 'host' : '', c.break_glass ? 'break-glass' : '', c.revoked_at ? 'revoked' : '', c.first_used ? 'used' : '', c.refusals > 0 ? 'refused' : ''].filter(Boolean).join(',') || '-'],
];
const EVENT_TABLE: Array<[string, (e: EventView) => string]> = [
  ['ID', (e) => e.id],
  ['AT', (e) => e.at.replace(/\.\d+Z$/, 'Z')],
  ['ACTOR', (e) => e.actor],
  ['ACTION', (e) => e.action],
  ['TARGET', (e) => e.target ?? '-'],
  ['OUTCOME', (e) => e.outcome],
];

async function list<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>,
  opts: AuditOptions,
  key: 'certificates' | 'events',
  columns: Array<[string, (x: T) => string]>,
  short: Array<[string, (x: T) => string]>,
): Promise<void> {
  const fmt = opts.json ? 'json' : format(opts.flags, ['table', 'json', 'csv'], 'table');
  const all = opts.flags['all'] === true;
  const firstCursor = typeof opts.flags['cursor'] === 'string' ? opts.flags['cursor'] : undefined;
  if (fmt === 'csv') process.stdout.write(csvRow(columns.map(([name]) => name)));
  const collected: T[] = [];
  for await (const items of pages(fetchPage, all, firstCursor)) {
    if (fmt === 'csv') for (const item of items) process.stdout.write(csvRow(columns.map(([, get]) => get(item))));
    else collected.push(...items);
  }
  if (fmt === 'json') process.stdout.write(JSON.stringify({ [key]: collected }) + '\n');
  if (fmt === 'table') {
    if (collected.length === 0) process.stderr.write(`no ${key} match\n`);
    else process.stdout.write(table([short.map(([h]) => h), ...collected.map((x) => short.map(([, get]) => get(x)))]));
  }
}

/** JSON lines for a SIEM: every record of the period, newest first, page by page. */
async function exportLines(audit: AuditAdmin, opts: AuditOptions): Promise<void> {
  if (opts.flags['chain'] === true) {
    const out = await openOutput(opts.flags['out']);
    try {
      for await (const chunk of audit.exportChain()) await out.write(chunk);
      await out.done();
    } catch (e) {
      await out.abort();
      throw e;
    }
    if (typeof opts.flags['out'] === 'string') process.stderr.write(`chain exported to ${opts.flags['out']}; check it anywhere with: jit-ssh-ca audit verify --file ${opts.flags['out']} --ca-keys ca.pub\n`);
    return;
  }
  const stream = typeof opts.flags['stream'] === 'string' ? opts.flags['stream'] : 'certificates';
  if (stream !== 'certificates' && stream !== 'events') throw new UsageError('--stream must be certificates or events');
  const out = await openOutput(opts.flags['out']);
  try {
    const q = { ...query(opts.flags, stream === 'certificates' ? CERT_FILTERS : EVENT_FILTERS), limit: '1000' };
    let cursor: string | undefined;
    let n = 0;
    do {
      const page = stream === 'certificates' ? await audit.certificates({ ...q, cursor }) : await audit.events({ ...q, cursor });
      const items: unknown[] = 'certificates' in page ? page.certificates : page.events;
      await out.write(items.map((item) => JSON.stringify({ stream, ...(item as object) }) + '\n').join(''));
      n += items.length;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    await out.done();
    process.stderr.write(`exported ${n} ${stream === 'certificates' ? 'certificates' : 'events'}${typeof opts.flags['out'] === 'string' ? ` to ${opts.flags['out']}` : ''}\n`);
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** stdout, or a file written beside its final name and renamed into place only when complete. */
async function openOutput(file: string | boolean | undefined, mode = 0o600) {
  if (typeof file !== 'string') {
    return { write: (s: string | Buffer) => new Promise<void>((resolve) => (process.stdout.write(s) ? resolve() : process.stdout.once('drain', resolve))), done: async () => {}, abort: async () => {} };
  }
  const final = path.resolve(file);
  const tmp = path.join(path.dirname(final), `.${path.basename(final)}.${process.pid}.tmp`);
  const handle = await fs.open(tmp, 'wx', mode);
  return {
    write: async (s: string | Buffer) => void (await handle.writeFile(s)),
    async done() {
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, final);
    },
    async abort() {
      await handle.close().catch(() => {});
      await fs.rm(tmp, { force: true });
    },
  };
}

/** Reads the log in chunks of whole lines, so a large file never sits in memory (or one request) at once. */
async function ingest(audit: AuditAdmin, file: string, opts: AuditOptions): Promise<void> {
  const host = typeof opts.flags['hostname'] === 'string' ? opts.flags['hostname'] : 'unknown';
  const total: IngestResult = { ...EMPTY_INGEST };
  let pending = '';
  const flush = async (text: string) => {
    const r = await audit.ingestSshd(text, host);
    for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
  };
  for await (const chunk of await readInput(file)) {
    pending += chunk;
    if (pending.length >= 512 * 1024) {
      const cut = pending.lastIndexOf('\n') + 1;
      if (cut > 0) {
        await flush(pending.slice(0, cut));
        pending = pending.slice(cut);
      }
    }
  }
  if (pending !== '') await flush(pending);
  if (opts.json) process.stdout.write(JSON.stringify(total) + '\n');
  else {
    process.stdout.write(
      `${total.lines} lines, ${total.logins} certificate logins: ${total.matched} recorded, ${total.duplicate} already recorded, ` +
        `${total.unknown} by certificates this CA did not issue` +
        (total.refusals > 0
          ? `; ${total.refusals} certificate refusals: ${total.refusals_matched} recorded, ${total.refusals_duplicate} already recorded, ${total.refusals_unknown} of certificates this CA did not issue\n`
          : '\n'),
    );
  }
}

async function revoke(audit: AuditAdmin, args: string[], opts: AuditOptions): Promise<void> {
  if (args.length > 1) throw new UsageError('usage: jit-ssh-ca revoke SERIAL|--user NAME|--request ID --reason TEXT');
  const target = {
    serial: args[0],
    user: typeof opts.flags['user'] === 'string' ? opts.flags['user'] : undefined,
    request: typeof opts.flags['request'] === 'string' ? opts.flags['request'] : undefined,
  };
  if ([target.serial, target.user, target.request].filter((v) => v !== undefined).length !== 1) {
    throw new UsageError('name exactly one of: a SERIAL, --user NAME or --request ID');
  }
  if (typeof opts.flags['reason'] !== 'string') throw new UsageError('--reason TEXT is required');
  const { revoked, ended_grants } = await audit.revoke(target, opts.flags['reason']);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ revoked, ended_grants }) + '\n');
    return;
  }
  if (revoked.length === 0 && ended_grants.length === 0) process.stdout.write('no live certificate or grant matched that was not already revoked; nothing changed\n');
  if (revoked.length > 0) process.stdout.write(`revoked ${revoked.length} certificate${revoked.length === 1 ? '' : 's'}: ${revoked.join(' ')}\n`);
  if (ended_grants.length > 0) process.stdout.write(`ended ${ended_grants.length} grant${ended_grants.length === 1 ? '' : 's'}: ${ended_grants.join(' ')}\n`);
  if (revoked.length > 0) process.stderr.write('servers refuse them once they fetch the new KRL (jit-ssh-refresh, or jit-ssh-ca krl --out FILE)\n');
  if (target.serial) process.stderr.write('the grant it was issued for stays: to end it too, jit-ssh-ca revoke --request ID\n');
  if (target.user) process.stderr.write(`to stop new requests too: jit-ssh-ca user disable ${target.user}\n`);
}

async function writeKrl(audit: AuditAdmin, opts: AuditOptions): Promise<void> {
  const out = opts.flags['out'];
  if (typeof out !== 'string' && process.stdout.isTTY) throw new UsageError('the KRL is binary: give --out FILE or redirect stdout');
  const k = await audit.krl();
  // Written atomically: a half-written RevokedKeys file would lock everyone out of the servers using it.
  const file = await openOutput(out, 0o644);
  try {
    await file.write(k.krl);
    await file.done();
  } catch (e) {
    await file.abort();
    throw e;
  }
  if (typeof opts.flags['sig'] === 'string') {
    const sig = await openOutput(opts.flags['sig'], 0o644);
    await sig.write(k.signature);
    await sig.done();
  }
  process.stderr.write(`KRL version ${k.version}, ${k.revoked} revoked certificate${k.revoked === 1 ? '' : 's'} still within validity${typeof out === 'string' ? `, written to ${out}` : ''}\n`);
}

export async function auditCommand(command: 'audit' | 'revoke' | 'krl', sub: string | undefined, args: string[], config: ServerConfig, opts: AuditOptions): Promise<number> {
  const known = ['list', 'events', 'verify', 'export', 'ingest-sshd', 'report'];
  if (command === 'audit' && (!sub || !known.includes(sub))) throw new UsageError(`usage: jit-ssh-ca audit ${known.join('|')} ...`);
  if (command === 'audit' && sub === 'ingest-sshd' && args.length !== 1) throw new UsageError('usage: jit-ssh-ca audit ingest-sshd FILE|- [--hostname NAME]');
  if (command === 'audit' && sub === 'verify' && typeof opts.flags['file'] === 'string') {
    // Offline: no server, no database.
    return verifyFile(opts.flags['file'], typeof opts.flags['ca-keys'] === 'string' ? opts.flags['ca-keys'] : undefined, config, opts);
  }
  if (command === 'audit' && sub !== 'ingest-sshd' && args.length > 0) throw new UsageError(`audit ${sub} takes no arguments (got ${JSON.stringify(args[0])})`);
  if (command === 'krl' && sub !== undefined) throw new UsageError('usage: jit-ssh-ca krl [--out FILE] [--sig FILE]');
  const admin = await openAdmin(config);
  try {
    const { audit } = admin;
    if (command === 'revoke') {
      await revoke(audit, sub === undefined ? args : [sub, ...args], opts);
      return 0;
    }
    if (command === 'krl') {
      await writeKrl(audit, opts);
      return 0;
    }
    switch (sub) {
      case 'list':
        await list(async (cursor) => {
          const p = await audit.certificates({ ...query(opts.flags, CERT_FILTERS), cursor });
          return { items: p.certificates, next_cursor: p.next_cursor };
        }, opts, 'certificates', CERT_COLUMNS, CERT_TABLE);
        return 0;
      case 'events':
        await list(async (cursor) => {
          const p = await audit.events({ ...query(opts.flags, EVENT_FILTERS), cursor });
          return { items: p.events, next_cursor: p.next_cursor };
        }, opts, 'events', EVENT_COLUMNS, EVENT_TABLE);
        return 0;
      case 'verify':
        return await verify(audit, config, opts);
      case 'export':
        await exportLines(audit, opts);
        return 0;
      case 'report': {
        const fmt = format(opts.flags, ['md', 'json', 'csv'], opts.json ? 'json' : 'md');
        const report = await audit.report({ since: typeof opts.flags['since'] === 'string' ? opts.flags['since'] : '30d', until: typeof opts.flags['until'] === 'string' ? opts.flags['until'] : undefined });
        const out = await openOutput(opts.flags['out'], 0o600);
        await out.write(renderAccessReport(report, fmt as 'md' | 'json' | 'csv'));
        await out.done();
        if (fmt === 'csv' && report.grants.truncated) process.stderr.write(`warning: only the first ${report.grants.limit} grants of the period are in the CSV; use a shorter period\n`);
        return 0;
      }
      default:
        await ingest(audit, args[0]!, opts);
        return 0;
    }
  } finally {
    await admin.close();
  }
}
