// Correlating sshd's log with the issuance log: sshd prints the key ID and
// serial of every certificate login, e.g.
//   Accepted publickey for alice from 10.0.0.5 port 50576 ssh2: ED25519-CERT SHA256:... ID alice@jit-ssh req=01J... serial=12 (serial 12) CA ED25519 SHA256:...
// Each such line is matched to an issued certificate by serial. Every login is
// kept once, known by certificate, host, client address and port
// (certificate_logins: the same log read twice counts nothing twice)
// and summed per certificate, host, source address and login name
// (certificate_usage: first and last seen, number of logins).
//
// OpenSSH 10.1 and later also say why they refused a certificate:
//   Refusing certificate ID "alice@jit-ssh req=01J... serial=12" serial=12 signed by ED25519 CA SHA256:... via /etc/ssh/ca.pub:1: Certificate invalid: expired
// (auth2-pubkeyfile.c; auth2-pubkey.c writes the same without "via LOCATION"). Such a refusal is
// kept as a refusal (certificate_refusals), never as a login. Since OpenSSH 9.8 the lines come from
// the per-connection process sshd-session (10.0: also sshd-auth) instead of sshd.

import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { issuedSerials, recordLogins, recordRefusals } from '../db/usage.js';
import { MAX_SERIAL } from '../ssh/serial.js';

// sshd writes the key ID with control characters escaped, and its own "(serial N) CA" part last.
const ACCEPTED = /Accepted publickey for (\S{1,256}) from (\S{1,256}) port (\d{1,5}) ssh2: \S+-CERT SHA256:\S+ ID .* \(serial (\d{1,20})\) CA \S+ SHA256:\S+/;
// rsyslog's precise form "2026-11-22T15:40:01.123456+00:00 host sshd[1]:" and the classic "Nov 22 15:40:01 host sshd[1]:".
// The program is sshd, or (OpenSSH 9.8 and later) sshd-session or sshd-auth, with or without its pid.
const ISO_PREFIX = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s+(\S+)\s+sshd(?:-session|-auth)?(?:\[\d+\])?:/;
const SYSLOG_PREFIX = /^([A-Z][a-z]{2})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s+(\S+)\s+sshd(?:-session|-auth)?(?:\[\d+\])?:/;
// The key ID is the certificate's own text (any characters, escaped by sshd): the match takes the
// last `" serial=` so a key ID imitating sshd's words cannot change the serial or the reason.
const REFUSING = /Refusing certificate ID "(.*)" serial=(\d{1,20}) signed by \S+ CA \S+(?: via .+?)?: (.{1,200})$/;
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

interface LineOrigin {
  host: string;
  /** The line's own time; null when it carries none. */
  at: Date | null;
}

/** Where and when a line was logged, from its syslog or journal prefix; undefined for a time no timestamp column can hold. */
function origin(line: string, defaults: { host: string; now: Date }): LineOrigin | undefined {
  const iso = ISO_PREFIX.exec(line);
  const sys = SYSLOG_PREFIX.exec(line);
  let at: Date | null = null;
  let host = defaults.host;
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
  if (at && !(at.getTime() >= EARLIEST && at.getTime() <= LATEST)) return undefined;
  return { host, at };
}

const scannable = (line: string) => line.length <= MAX_LINE && !CONTROL.test(line);

/**
 * Parses one sshd log line; null when it is not a certificate login. Lines
 * without a syslog time stamp (sshd -E, journalctl -o cat) take `defaults`.
 */
export function parseSshdLine(line: string, defaults: { host: string; now: Date }): LoginSeen | null {
  if (!scannable(line)) return null;
  const m = ACCEPTED.exec(line);
  if (!m || Number(m[3]) > 65535) return null;
  const o = origin(line, defaults);
  if (!o) return null;
  return { login: m[1]!, source: m[2]!, port: Number(m[3]), serial: m[4]!, host: o.host, at: o.at ?? defaults.now };
}

export interface RefusalSeen {
  serial: string;
  keyId: string;
  /** sshd's words, e.g. "Certificate invalid: expired". */
  reason: string;
  host: string;
  /** Null when the line carries no time. */
  at: Date | null;
}

/** Parses one sshd log line; null when it is not a certificate refusal (OpenSSH 10.1+). */
export function parseSshdRefusal(line: string, defaults: { host: string; now: Date }): RefusalSeen | null {
  if (!scannable(line)) return null;
  const m = REFUSING.exec(line);
  if (!m) return null;
  const o = origin(line, defaults);
  if (!o) return null;
  return { keyId: m[1]!, serial: m[2]!, reason: m[3]!, host: o.host, at: o.at };
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
  /** Certificates sshd refused (OpenSSH 10.1+ lines), among the lines. */
  refusals: number;
  /** Refusals of certificates this CA issued, recorded now. */
  refusals_matched: number;
  /** Refusals already recorded by an earlier ingestion. */
  refusals_duplicate: number;
  /** Refusals of certificates this CA never issued. */
  refusals_unknown: number;
}

export const EMPTY_INGEST: Readonly<IngestResult> = { lines: 0, logins: 0, matched: 0, duplicate: 0, unknown: 0, refusals: 0, refusals_matched: 0, refusals_duplicate: 0, refusals_unknown: 0 };

/** Those of `seen` whose serial this CA issued, and how many are not. */
async function ours<T extends { serial: string }>(db: Kysely<Database>, seen: T[]): Promise<{ known: T[]; unknown: number }> {
  const candidates = [...new Set(seen.map((s) => s.serial))].filter((s) => BigInt(s) <= MAX_SERIAL);
  const issued = await issuedSerials(db, candidates);
  const known = seen.filter((s) => issued.has(s.serial));
  return { known, unknown: seen.length - known.length };
}

/** Records certificate logins and refusals from sshd log text; other lines are skipped. */
export async function ingestSshdLog(db: Kysely<Database>, text: string, defaults: { host: string; now: Date }): Promise<IngestResult> {
  const lines = text.split('\n');
  const logins: LoginSeen[] = [];
  const refusals: RefusalSeen[] = [];
  for (const l of lines) {
    const login = parseSshdLine(l, defaults);
    if (login) logins.push(login);
    else {
      const refusal = parseSshdRefusal(l, defaults);
      if (refusal) refusals.push(refusal);
    }
  }
  const result: IngestResult = { ...EMPTY_INGEST, lines: lines.filter((l) => l.trim() !== '').length, logins: logins.length, refusals: refusals.length };
  for (let i = 0; i < logins.length; i += BATCH) {
    const { known, unknown } = await ours(db, logins.slice(i, i + BATCH));
    result.unknown += unknown;
    if (known.length === 0) continue;
    const added = await recordLogins(db, known);
    result.matched += added;
    result.duplicate += known.length - added;
  }
  for (let i = 0; i < refusals.length; i += BATCH) {
    const { known, unknown } = await ours(db, refusals.slice(i, i + BATCH));
    result.refusals_unknown += unknown;
    if (known.length === 0) continue;
    const added = await recordRefusals(db, known, defaults.now);
    result.refusals_matched += added;
    result.refusals_duplicate += known.length - added;
  }
  return result;
}
