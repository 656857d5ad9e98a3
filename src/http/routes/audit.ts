import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { DomainError } from '../../core/errors.js';
import { renderAccessReport } from '../../audit/report.js';
import type { AuditService } from '../../services/audit.js';
import type { AuthService } from '../../services/auth.js';
import { auditors, requireRole, requireUser } from '../middleware/auth.js';
import type { AppEnv } from '../types.js';

export interface AuditRoutesDeps {
  auth: AuthService;
  audit: AuditService;
}

export function auditRoutes(deps: AuditRoutesDeps) {
  const app = new Hono<AppEnv>();
  const user = requireUser(deps.auth);
  const auditor = requireRole(auditors, 'auditors');
  app.use('/v1/audit/*', user, auditor);
  // POST /v1/certificates is for engineers (their own grants); reading the log is for auditors.
  app.get('/v1/certificates', user, auditor, async (c) => c.json(await deps.audit.certificates(c.req.query())));
  app.get('/v1/audit/events', async (c) => c.json(await deps.audit.events(c.req.query())));
  app.get('/v1/audit/verify', async (c) => {
    const result = await deps.audit.verify();
    return c.json(result, result.ok ? 200 : 409);
  });
  app.get('/v1/audit/report', async (c) => {
    const format = c.req.query('format') ?? 'json';
    if (format !== 'json' && format !== 'md' && format !== 'csv') throw new DomainError('invalid_input', 'format must be json, md or csv');
    const report = await deps.audit.report(c.req.query());
    if (format === 'json') return c.json(report);
    const type = format === 'md' ? 'text/markdown; charset=utf-8' : 'text/csv; charset=utf-8';
    c.header('Content-Disposition', `attachment; filename="access-review-${report.period.since.slice(0, 10)}.${format}"`);
    return c.body(renderAccessReport(report, format), 200, { 'Content-Type': type });
  });
  app.get('/v1/audit/chain', (c) => {
    c.header('Content-Type', 'application/x-ndjson');
    c.header('Content-Disposition', 'attachment; filename="jit-ssh-chain.jsonl"');
    return stream(c, async (s) => {
      for await (const chunk of deps.audit.exportChain()) await s.write(chunk);
    });
  });
  app.get('/v1/audit/export', async (c) => {
    const lines = deps.audit.export(c.req.query('stream') ?? 'certificates', c.req.query());
    // Read the first line before answering, so bad parameters still get a problem+json answer.
    const first = await lines.next();
    c.header('Content-Type', 'application/x-ndjson');
    return stream(c, async (s) => {
      if (!first.done) await s.write(first.value);
      for await (const line of lines) await s.write(line);
    });
  });
  return app;
}
