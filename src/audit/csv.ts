// CSV for spreadsheets (RFC 4180), safe to open: a cell a spreadsheet would
// take for a formula (= + - @, tab, CR) is prefixed with a quote, as OWASP
// advises, since log fields (reasons, tickets, key IDs) come from users.

const FORMULA = /^[=+\-@\t\r]/;

export function csvCell(value: string): string {
  const safe = FORMULA.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV record, CRLF-terminated. */
export function csvRow(cells: readonly string[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}
