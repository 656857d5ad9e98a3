import { Hono } from 'hono';
import type { AuthService } from '../../services/auth.js';
import type { PolicyReloadResult } from '../../services/policy-reload.js';
import { problem } from '../problem.js';
import { admins, requireRole, requireUser } from '../middleware/auth.js';
import type { AppEnv } from '../types.js';

export type { PolicyReloadResult };

export interface AdminRoutesDeps {
  auth: AuthService;
  /** Re-reads the policy file (and records that it did); an invalid file leaves the policy in force. */
  reloadPolicy: (actor: string) => Promise<PolicyReloadResult>;
}

export function adminRoutes(deps: AdminRoutesDeps) {
  const app = new Hono<AppEnv>();
  app.use('/v1/admin/*', requireUser(deps.auth), requireRole(admins, 'administrators'));
  app.post('/v1/admin/policy/reload', async (c) => {
    const result = await deps.reloadPolicy(c.get('principal').username);
    if (result.ok) return c.json({ changed: result.changed, digest: result.digest, roles: result.roles });
    return problem(c, 422, 'the new policy file is invalid; the policy in force is unchanged', { extra: { problems: result.problems } });
  });
  return app;
}
