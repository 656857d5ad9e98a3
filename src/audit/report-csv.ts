// The access review's grants as CSV, one row a grant (audit/csv.ts makes cells safe to open).

import { csvRow } from './csv.js';
import { approvalText, reviewText, signInText } from './report-text.js';
import type { AccessReport } from './report-types.js';

export const CSV_COLUMNS = ['grant_id', 'user', 'role', 'starts_at', 'ends_at', 'duration_seconds', 'approval', 'reason', 'ticket', 'certificates', 'first_used', 'last_used', 'extensions', 'review', 'sign_in'] as const;

export function renderCsv(report: AccessReport): string {
  const rows = report.grants.rows.map((g) => [
    g.grant_id, g.user, g.role, g.starts_at, g.ends_at, g.duration_seconds, approvalText(g), g.reason, g.ticket, g.certificates, g.first_used, g.last_used, g.extensions, reviewText(g), signInText(g),
  ]);
  return [CSV_COLUMNS as readonly (string | number | null)[], ...rows].map(csvRow).join('');
}
