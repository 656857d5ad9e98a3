// CSV for spreadsheets (RFC 4180), safe to open: text a spreadsheet would run
// as a formula (leading = + - @, tab or CR) gets a leading apostrophe, as
// OWASP advises, since log fields (reasons, tickets, key IDs) come from users.
// Numbers are written as they are: a negative number is not a formula.

import type { CertificateView, EventView } from './queries.js';

export function csvCell(value: string | number | null): string {
  let s = value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record, CRLF-terminated. */
export function csvRow(cells: readonly (string | number | null)[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}

/** The columns of a certificate or event search as CSV, the same in the CLI and on the web pages. */
export const CERT_COLUMNS: Array<[string, (c: CertificateView) => string]> = [
  ['serial', (c) => c.serial],
  ['issued_at', (c) => c.issued_at],
  ['user', (c) => c.username],
  ['role', (c) => c.role ?? ''],
  ['principals', (c) => c.principals.join(' ')],
  ['valid_after', (c) => c.valid_after],
  ['valid_before', (c) => c.valid_before],
  ['request_id', (c) => c.request_id ?? ''],
  ['break_glass', (c) => String(c.break_glass)],
  ['revoked_at', (c) => c.revoked_at ?? ''],
  ['first_used', (c) => c.first_used ?? ''],
  ['last_used', (c) => c.last_used ?? ''],
  ['client_address', (c) => c.client_address ?? ''],
  ['public_key_fingerprint', (c) => c.public_key_fingerprint],
  ['ca_key_fingerprint', (c) => c.ca_key_fingerprint],
  ['key_id', (c) => c.key_id],
  ['kind', (c) => c.kind],
  ['refusals', (c) => String(c.refusals)],
  ['last_refusal', (c) => (c.last_refusal ? `${c.last_refusal.at ?? ''} ${c.last_refusal.host}: ${c.last_refusal.reason}`.trim() : '')],
];

export const EVENT_COLUMNS: Array<[string, (e: EventView) => string]> = [
  ['id', (e) => e.id],
  ['at', (e) => e.at],
  ['actor', (e) => e.actor],
  ['action', (e) => e.action],
  ['target', (e) => e.target ?? ''],
  ['outcome', (e) => e.outcome],
  ['client_address', (e) => e.client_address ?? ''],
  ['details', (e) => JSON.stringify(e.details)],
];
