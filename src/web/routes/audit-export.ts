// Downloads of an auditor's current search: every matching record (not just
// the page on screen), read page by page so memory stays bounded, as CSV with
// the columns of `jit-ssh-ca audit list --format csv` (audit/csv.ts), or as JSON of the same
// shape as `--format json` ({"certificates": [...]}, {"events": [...]}).

import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import { CERT_COLUMNS, csvRow, EVENT_COLUMNS } from '../../audit/csv.js';
import type { CertificateView, EventView } from '../../audit/queries.js';
import type { AuditService } from '../../services/audit.js';

export const CERT_FILTERS = ['user', 'principal', 'role', 'serial', 'request', 'approver', 'break_glass', 'since', 'until'] as const;
export const EVENT_FILTERS = ['actor', 'action', 'target', 'since', 'until'] as const;

/** The query's known, non-empty filters; anything else in the URL is ignored. */
export function filtersOf(query: Record<string, string>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = query[k]?.trim();
    if (v) out[k] = v;
  }
  return out;
}

type Kind = 'certificates' | 'events';

async function page(audit: AuditService, kind: Kind, filters: Record<string, string>, cursor: string | undefined) {
  const q = { ...filters, limit: '1000', ...(cursor ? { cursor } : {}) };
  if (kind === 'certificates') {
    const p = await audit.certificates(q);
    return { items: p.certificates as Array<CertificateView | EventView>, next: p.next_cursor };
  }
  const p = await audit.events(q);
  return { items: p.events as Array<CertificateView | EventView>, next: p.next_cursor };
}

export async function exportSearch(c: Context, audit: AuditService, kind: Kind, format: 'csv' | 'json'): Promise<Response> {
  const filters = filtersOf(c.req.query(), kind === 'certificates' ? CERT_FILTERS : EVENT_FILTERS);
  // The first page is read before answering, so bad filters still get an error page.
  let current = await page(audit, kind, filters, undefined);
  const stamp = new Date().toISOString().replace(/[-:]|\.\d+/g, '');
  const columns = (kind === 'certificates' ? CERT_COLUMNS : EVENT_COLUMNS) as Array<[string, (x: CertificateView | EventView) => string]>;
  c.header('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8');
  c.header('Content-Disposition', `attachment; filename="jit-ssh-${kind}-${stamp}.${format}"`);
  return stream(c, async (s) => {
    let first = true;
    await s.write(format === 'csv' ? csvRow(columns.map(([name]) => name)) : `{"${kind}":[`);
    for (;;) {
      for (const item of current.items) {
        if (format === 'csv') await s.write(csvRow(columns.map(([, get]) => get(item))));
        else await s.write((first ? '\n' : ',\n') + JSON.stringify(item));
        first = false;
      }
      if (!current.next) break;
      current = await page(audit, kind, filters, current.next);
    }
    if (format === 'json') await s.write('\n]}\n');
  });
}
