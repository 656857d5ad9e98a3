// Downloads of an auditor's current search: every matching record (not just
// the page on screen), read page by page so memory stays bounded, as CSV with
// the columns of `jit-ssh-ca audit list --format csv` (audit/csv.ts), or as JSON of the same
// shape as `--format json` ({"certificates": [...]}, {"events": [...]}).

import type { Context } from 'hono';
import { CERT_COLUMNS, csvRow, EVENT_COLUMNS } from '../../audit/csv.js';
import type { CertificateView, EventView } from '../../audit/queries.js';
import { errorFields } from '../../log.js';
import type { AuditService } from '../../services/audit.js';
import type { WebDeps } from '../context.js';

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

/**
 * Answers with the whole search as a download. The first page is read before
 * answering, so bad filters still get an error page. A failure after that
 * cannot change the status any more: the body is then ended as an error (the
 * connection is cut and the browser reports the download as failed), never
 * closed as if the file were complete, since a silently short audit export
 * would read as "that is all there was".
 */
export async function exportSearch(c: Context, deps: Pick<WebDeps, 'audit' | 'logger'>, kind: Kind, format: 'csv' | 'json'): Promise<Response> {
  const filters = filtersOf(c.req.query(), kind === 'certificates' ? CERT_FILTERS : EVENT_FILTERS);
  const first = await page(deps.audit, kind, filters, undefined);
  const stamp = new Date().toISOString().replace(/[-:]|\.\d+/g, '');
  const columns = (kind === 'certificates' ? CERT_COLUMNS : EVENT_COLUMNS) as Array<[string, (x: CertificateView | EventView) => string]>;

  async function* pieces(): AsyncGenerator<string> {
    yield format === 'csv' ? csvRow(columns.map(([name]) => name)) : `{"${kind}":[`;
    let current = first;
    let n = 0;
    for (;;) {
      for (const item of current.items) yield format === 'csv' ? csvRow(columns.map(([, get]) => get(item))) : (n++ === 0 ? '\n' : ',\n') + JSON.stringify(item);
      if (!current.next) break;
      current = await page(deps.audit, kind, filters, current.next);
    }
    if (format === 'json') yield '\n]}\n';
  }
  const source = pieces();
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await source.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      } catch (e) {
        deps.logger.error('audit export failed part way', { request_id: c.get('requestId'), kind, format, ...errorFields(e, true) });
        controller.error(new Error('the export failed part way'));
      }
    },
    async cancel() {
      await source.return(undefined);
    },
  });
  return c.body(body, 200, {
    'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
    'Content-Disposition': `attachment; filename="jit-ssh-${kind}-${stamp}.${format}"`,
  });
}
