// Re-reading the policy file (SIGHUP, POST /v1/admin/policy/reload): an
// invalid file is refused and the policy in force stays; either way the
// attempt is recorded. Grants the new policy no longer allows end at once.

import type { Kysely } from 'kysely';
import { PolicyError } from '../core/policy.js';
import { appendEvent } from '../db/audit-events.js';
import type { Database } from '../db/schema.js';
import { errorFields, type Logger } from '../log.js';
import type { PolicyStore } from './policy-store.js';
import type { RequestService } from './requests.js';

export type PolicyReloadResult = { ok: true; changed: boolean; digest: string; roles: number } | { ok: false; problems: string[] };

/** Ends the grants whose holders may no longer hold them (a group or the policy changed), and logs them. */
export function ineligibleGrantsEnder(requests: Pick<RequestService, 'endIneligible'>, logger: Logger): () => Promise<void> {
  return async () => {
    const ended = await requests.endIneligible();
    if (ended.ended_grants.length > 0) logger.info('grants ended: their holders may no longer hold them', { grants: ended.ended_grants, revoked: ended.revoked });
  };
}

export interface PolicyReloaderDeps {
  store: PolicyStore;
  db: Kysely<Database>;
  logger: Logger;
  /** Ends the grants the new policy no longer allows (retried by the server's periodic sweep when it fails). */
  endIneligible: () => Promise<void>;
}

/** Re-reads the policy file on behalf of `actor`; an invalid file is refused and logged. */
export function createPolicyReloader(deps: PolicyReloaderDeps): (actor: string) => Promise<PolicyReloadResult> {
  const { store, logger } = deps;
  return async (actor) => {
    let result: PolicyReloadResult;
    try {
      result = { ok: true, ...(await store.reload()) };
      logger.info('policy reloaded', { digest: result.digest, roles: result.roles, changed: result.changed });
    } catch (e) {
      result = { ok: false, problems: e instanceof PolicyError ? e.problems : [(e as Error).message] };
      logger.error('policy reload refused; the policy in force is unchanged', { problems: result.problems });
    }
    await appendEvent(deps.db, { at: new Date(), actor, action: 'policy.reload', target: store.path, outcome: result.ok ? 'ok' : 'refused', clientAddress: null, details: result });
    // Grants the new policy no longer allows end now, not at the next sweep (which retries on failure).
    if (result.ok && result.changed) await deps.endIneligible().catch((e) => logger.warn('ending grants the new policy no longer allows failed; retried every 15 s', errorFields(e)));
    return result;
  };
}
