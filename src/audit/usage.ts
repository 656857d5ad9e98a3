// Correlating sshd's log with the issuance log: sshd prints the key ID and
// serial of every certificate login, e.g.
//   Accepted publickey for alice from 10.0.0.5 port 50576 ssh2: ED25519-CERT SHA256:... ID alice@jit-ssh req=01J... serial=12 (serial 12) CA ED25519 SHA256:...
// Each such line is matched to an issued certificate by serial. Every login is
// kept once, known by certificate, host, client address and port
// (certificate_logins: the same log read twice counts nothing twice)
// and summed per certificate, host, source address and login name
// (certificate_usage: first and last seen, number of logins).

import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { issuedSerials, recordLogins } from '../db/usage.js';
import { MAX_SERIAL } from '../ssh/serial.js';

// sshd writes the key ID with control characters escaped, and its own "(serial N) CA" part last.
const ACCEPTED = /Accepted publickey for (\S{1,256}) from (\S{1,256}) port (\d{1,5}) ssh2: \S+-CERT SHA256:\S+ ID .* \(serial (\d{1,20})\) CA \S+ SHA256:\S+/;
// rsyslog's precise form "2026-11-22T15:40:01.123456+00:00 host sshd[1]:" and the classic "Nov 22 15:40:01 host sshd[1]:".
const ISO_PREFIX = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s+(\S+)\s+sshd/;
const SYSLOG_PREFIX = /^([A-Z][a-z]{2})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s+(\S+)\s+sshd/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// sshd formats a log message into 1 KiB (MSGBUFSIZ); with a syslog or journal prefix a login line
// stays far below this. A longer line is not sshd's, and is not scanned: the pattern's cost grows
// with the square of a line made of many "Accepted publickey" look-alikes.
const MAX_LINE = 8192;
// sshd escapes control characters in what it logs (strnvis): a line holding one is not sshd's
// (and PostgreSQL refuses NUL in text). Nor is a time no timestamp column can hold.
const CONTROL = /[\x00-\x08\x0a-\x0c\x0e-\x1f\x7f]/;
const EARLIEST = Date.parse('0001-01-01T00:00:00Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');
/** Lines per database round trip. */
const BATCH = 500;

export interface LoginSeen {
  serial: string;
  login: string;
  source: string;
  port: number;
  host: string;
  at: Date;
}

/**
 * Parses one sshd log line; null when it is not a certificate login. Lines
 * without a syslog time stamp (sshd -E, journalctl -o cat) take `defaults`.
 */
export function parseSshdLine(line: string, defaults: { host: string; now: Date }): LoginSeen | null {
  if (line.length > MAX_LINE || CONTROL.test(line)) return null;
  const m = ACCEPTED.exec(line);
  if (!m || Number(m[3]) > 65535) return null;
  let at = defaults.now;
  let host = defaults.host;
  const iso = ISO_PREFIX.exec(line);
  const sys = SYSLOG_PREFIX.exec(line);
  if (iso && !Number.isNaN(Date.parse(iso[1]!))) {
    at = new Date(iso[1]!);
    host = iso[2]!;
  } else if (sys && MONTHS.includes(sys[1]!)) {
    // Classic syslog has no year: take the latest such date not in the future.
    const year = defaults.now.getUTCFullYear();
    const make = (y: number) => new Date(Date.UTC(y, MONTHS.indexOf(sys[1]!), Number(sys[2]), Number(sys[3]), Number(sys[4]), Number(sys[5])));
    at = make(year) > defaults.now ? make(year - 1) : make(year);
    host = sys[6]!;
  }
  if (!(at.getTime() >= EARLIEST && at.getTime() <= LATEST)) return null;
  return { login: m[1]!, source: m[2]!, port: Number(m[3]), serial: m[4]!, host, at };
}

export interface IngestResult {
  /** Non-empty lines read. */
  lines: number;
  /** Certificate logins among them. */
  logins: number;
  /** Logins by a certificate this CA issued, recorded now. */
  matched: number;
  /** Logins already recorded by an earlier ingestion. */
  duplicate: number;
  /** Certificate logins whose serial this CA never issued (another CA, or a forged log line). */
  unknown: number;
}

/** Records certificate logins from sshd log text; lines that are not certificate logins are skipped. */
export async function ingestSshdLog(db: Kysely<Database>, text: string, defaults: { host: string; now: Date }): Promise<IngestResult> {
  const lines = text.split('\n');
  const seen = lines.map((l) => parseSshdLine(l, defaults)).filter((x): x is LoginSeen => x !== null);
  const result: IngestResult = { lines: lines.filter((l) => l.trim() !== '').length, logins: seen.length, matched: 0, duplicate: 0, unknown: 0 };
  for (let i = 0; i < seen.length; i += BATCH) {
    const batch = seen.slice(i, i + BATCH);
    const candidates = [...new Set(batch.map((s) => s.serial))].filter((s) => BigInt(s) <= MAX_SERIAL);
    const known = await issuedSerials(db, candidates);
    const ours = batch.filter((s) => known.has(s.serial));
    result.unknown += batch.length - ours.length;
    if (ours.length === 0) continue;
    const added = await recordLogins(db, ours);
    result.matched += added;
    result.duplicate += ours.length - added;
  }
  return result;
}
