// CSV for spreadsheets (RFC 4180), safe to open: text a spreadsheet would run
// as a formula (leading = + - @, tab or CR) gets a leading apostrophe, as
// OWASP advises, since log fields (reasons, tickets, key IDs) come from users.
// Numbers are written as they are: a negative number is not a formula.

export function csvCell(value: string | number | null): string {
  let s = value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record, CRLF-terminated. */
export function csvRow(cells: readonly (string | number | null)[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}
