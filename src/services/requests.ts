// The access workflow as a service: requests, decisions, approvals, grants,
// extensions, relinquishment and break-glass reviews. What may happen is
// decided in core/ (grant-life.ts: the transitions; decide.ts: the policy's
// answer to a request); the changes are applied in requests-workflow.ts, one
// transaction each, with their audit events and notifications; the views are
// built in requests-views.ts.

import type { Kysely, Transaction } from 'kysely';
import { isApprover } from '../core/decide.js';
import { DomainError } from '../core/errors.js';
import { mayView } from '../core/grant-life.js';
import type { Policy, Requester } from '../core/policy-types.js';
import { checkStatus } from '../core/request-input.js';
import { findRequest, listRequests } from '../db/requests.js';
import type { Database, RequestRow } from '../db/schema.js';
import type { Principal, StepUpProof } from './auth.js';
import type { EndedGrants } from './grant-end.js';
import { createWorkflow } from './requests-workflow.js';
import { requestViews, roleViews, type DryRunView, type RequestView, type RoleView } from './requests-views.js';

export type { DryRunView, GrantView, RequestView, RoleView } from './requests-views.js';
export { checkComment } from '../core/request-input.js';

export interface Caller {
  principal: Principal;
  clientAddress: string | null;
  /** A fresh TOTP code verified for this very decision (the web pages ask for one); recorded with it. */
  stepUp?: StepUpProof;
}

export interface RequestService {
  roles(who: Principal): RoleView[];
  create(caller: Caller, input: Record<string, unknown>, dryRun: boolean): Promise<RequestView | DryRunView>;
  list(who: Principal, filter: { status?: string; reviews?: boolean }): Promise<RequestView[]>;
  get(who: Principal, id: string): Promise<RequestView>;
  approve(caller: Caller, id: string, comment: unknown): Promise<RequestView>;
  deny(caller: Caller, id: string, comment: unknown): Promise<RequestView>;
  cancel(caller: Caller, id: string): Promise<RequestView>;
  extend(caller: Caller, grantId: string, input: Record<string, unknown>): Promise<RequestView>;
  /** Ends the caller's grant now and revokes its live certificates (listed in `revoked`). */
  relinquish(caller: Caller, grantId: string): Promise<RequestView & { revoked: string[] }>;
  acknowledge(caller: Caller, grantId: string, comment: unknown): Promise<RequestView>;
  /** Closes unanswered requests past their TTL; returns how many. */
  expireDue(): Promise<number>;
  /**
   * Ends every live grant whose holder may no longer hold it under the policy in
   * force (disabled, removed from the role's requesters or break-glass list, the
   * role gone), revoking its certificates. Run after a policy reload and periodically.
   */
  endIneligible(): Promise<EndedGrants>;
  /** Roles whose requests `who` may decide (as an approver named by the policy). */
  decidableRoles(who: Principal): string[];
  /** `requester`'s most recent requests that `who` may see, newest first: context for a decision. */
  history(who: Principal, requester: string, limit?: number): Promise<RequestView[]>;
}

export interface RequestDeps {
  db: Kysely<Database>;
  policy: () => Policy;
  now?: () => Date;
  /** Seconds groups from an identity provider's sign-in count for requests and approvals; null = no limit. */
  maxGroupAge?: number | null;
}

const requesterOf = (p: Principal): Requester => ({ name: p.username, groups: p.groups });
const viewer = (p: Principal) => ({ name: p.username, groups: p.groups, isAdmin: p.isAdmin, isAuditor: p.isAuditor });

export function createRequestService(deps: RequestDeps): RequestService {
  const { db } = deps;
  const now = deps.now ?? (() => new Date());

  const views = (rows: RequestRow[], trx: Kysely<Database> | Transaction<Database> = db) => requestViews(trx, deps.policy(), rows, now());

  async function load(id: string, trx: Kysely<Database> | Transaction<Database> = db): Promise<RequestView> {
    const r = await findRequest(trx, id);
    if (!r) throw new DomainError('not_found', `no request ${id}`);
    return (await views([r], trx))[0]!;
  }

  const visible = (who: Principal, r: RequestRow) => mayView(deps.policy(), viewer(who), r);
  const decidableRoles = (who: Principal) => [...deps.policy().roles.values()].filter((role) => isApprover(role, requesterOf(who))).map((r) => r.name);

  return {
    ...createWorkflow({ db, policy: deps.policy, now, load, maxGroupAge: deps.maxGroupAge ?? null }),

    roles: (who) => roleViews(deps.policy(), requesterOf(who)),

    async list(who, filter) {
      const status = checkStatus(filter.status);
      const rows = await listRequests(db, { requester: who.username, roles: decidableRoles(who), status, all: who.isAdmin || who.isAuditor });
      let out = await views(rows.filter((r) => visible(who, r)));
      if (filter.reviews) out = out.filter((v) => v.grant?.review?.status === 'open' && v.requester !== who.username);
      return out;
    },

    async get(who, id) {
      const r = await findRequest(db, id);
      if (!r || !visible(who, r)) throw new DomainError('not_found', `no request ${id}`);
      return (await views([r]))[0]!;
    },

    decidableRoles,

    async history(who, requester, limit = 10) {
      const rows = await listRequests(db, { requester, limit: Math.min(Math.max(limit, 1), 100) });
      return views(rows.filter((r) => visible(who, r)));
    },
  };
}
