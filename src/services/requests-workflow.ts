// The access workflow's changes: each call loads and locks what its
// transition reads, asks the core (core/grant-life.ts) what happens, and
// applies the effects in the same transaction, so concurrent approvals,
// denials and cancellations of one request are applied one after the other
// and end in one consistent state.
//
// Lock order: a grant before a request. Ending a grant closes its pending
// extensions (grant, then its requests); an extension's approval locks the
// grant it extends before the request, or the two deadlock.

import type { Kysely, Transaction } from 'kysely';
import { decide } from '../core/decide.js';
import type { Holder } from '../core/grant.js';
import { expiryReport, precheck, refusalError, transition, type LifeEvent, type Outcome, type Person } from '../core/grant-life.js';
import type { Policy } from '../core/policy-types.js';
import { parseAccessInput } from '../core/request-input.js';
import { approvalsFor, expirePending, findRequest, liveGrantHolders, lockGrant, lockLiveGrants, lockRequest } from '../db/requests.js';
import type { Database, GrantRow } from '../db/schema.js';
import { findUser } from '../db/users.js';
import { findIdentityOfUser } from '../db/oidc.js';
import { requireFreshGroups, requireFreshRequester } from '../core/group-age.js';
import type { Caller, RequestService } from './requests.js';
import { applyEffects, approvalFacts, inTransaction, requestFacts } from './requests-apply.js';
import { dryRunView, type RequestView } from './requests-views.js';
import { grantState, type EndedGrants } from './grant-end.js';
import { newId } from './ids.js';

export interface WorkflowDeps {
  db: Kysely<Database>;
  policy: () => Policy;
  now: () => Date;
  /** The view of request `id` as `trx` sees it. */
  load: (id: string, trx: Transaction<Database>) => Promise<RequestView>;
  /** Seconds groups from an identity provider's sign-in count; null = no limit. */
  maxGroupAge: number | null;
}

type Workflow = Pick<RequestService, 'create' | 'approve' | 'deny' | 'cancel' | 'extend' | 'relinquish' | 'acknowledge' | 'endIneligible' | 'expireDue'>;

export const person = (c: Caller): Person => ({ name: c.principal.username, groups: c.principal.groups, isAdmin: c.principal.isAdmin, isAuditor: c.principal.isAuditor, clientAddress: c.clientAddress, auth: c.principal.auth });

const holder = (u: { name: string; groups: readonly string[]; enabled: boolean }): Holder => ({ name: u.name, groups: u.groups, enabled: u.enabled });

export function createWorkflow(deps: WorkflowDeps): Workflow {
  const { db, now } = deps;
  type Settle = (out: Outcome) => Promise<EndedGrants>;
  const run = <T>(fn: (trx: Transaction<Database>, at: Date, settle: Settle) => Promise<T>, clock = now) => inTransaction(db, clock, () => deps.policy().webhooks, fn);

  /** Refuses what no state could make acceptable before a transaction is opened for it. */
  function early(event: LifeEvent): void {
    const refusal = precheck(event, deps.policy());
    if (refusal) throw refusalError(refusal);
  }

  async function decideOn(caller: Caller, id: string, comment: unknown, verdict: 'approve' | 'deny'): Promise<RequestView> {
    const event: LifeEvent = { kind: verdict, id, by: person(caller), comment, ...(caller.stepUp ? { stepUp: caller.stepUp } : {}) };
    early(event);
    // An approver's right to decide comes from their groups: an identity provider's, only while fresh.
    requireFreshGroups(caller.principal.groupsFrom, deps.maxGroupAge, now());
    return run(async (trx, at, settle) => {
      // The grant an extension extends first, then the request (see above): the other order deadlocks against a grant ending.
      const extended = (await findRequest(trx, id))?.extends_grant;
      const grant = extended ? await lockGrant(trx, extended) : undefined;
      const r = await lockRequest(trx, id);
      const approvals = r ? (await approvalsFor(trx, [r.id])).map(approvalFacts) : [];
      // Approval time re-check: the requester as they are now.
      const account = r && verdict === 'approve' ? await findUser(trx, r.requester) : undefined;
      if (account && r) {
        const from = await findIdentityOfUser(trx, account.name);
        if (from) requireFreshRequester(account.name, { issuerId: from.issuerId, at: from.groupsAt }, deps.maxGroupAge, at);
      }
      const state = { request: r && requestFacts(r), approvals, grant: grant && grantState(grant), account: account && holder(account) };
      await settle(transition(state, event, deps.policy(), at));
      return deps.load(id, trx);
    });
  }

  /** Runs `event` on grant `grantId`, locked; returns what it ended. */
  async function onGrant(trx: Transaction<Database>, at: Date, settle: Settle, grantId: string, event: LifeEvent): Promise<EndedGrants> {
    const g = await lockGrant(trx, grantId);
    return settle(transition({ approvals: [], grant: g && grantState(g) }, event, deps.policy(), at));
  }

  return {
    async create(caller, input, dryRun) {
      const policy = deps.policy();
      const by = person(caller);
      const req = parseAccessInput(input, policy.roles.get(String(input['role'])));
      // Policy may approve at once on the requester's groups: an identity provider's count only while fresh.
      if (!dryRun) requireFreshGroups(caller.principal.groupsFrom, deps.maxGroupAge, now());
      if (dryRun) return dryRunView(policy, req, decide(policy, by, req, now()));
      return run(async (trx, at, settle) => {
        const id = newId(at);
        await settle(transition({ approvals: [] }, { kind: 'create', id, by, input }, deps.policy(), at));
        return deps.load(id, trx);
      });
    },

    approve: (caller, id, comment) => decideOn(caller, id, comment, 'approve'),
    deny: (caller, id, comment) => decideOn(caller, id, comment, 'deny'),

    async cancel(caller, id) {
      return run(async (trx, at, settle) => {
        const r = await lockRequest(trx, id);
        await settle(transition({ request: r && requestFacts(r), approvals: [] }, { kind: 'cancel', id, by: person(caller) }, deps.policy(), at));
        return deps.load(id, trx);
      });
    },

    async extend(caller, grantId, input) {
      return run(async (trx, at, settle) => {
        // Judged under the grant's lock: extensions filed at the same time are judged one after the other.
        const id = newId(at);
        await onGrant(trx, at, settle, grantId, { kind: 'extend', id, grantId, by: person(caller), input });
        return deps.load(id, trx);
      });
    },

    async relinquish(caller, grantId) {
      return run(async (trx, at, settle) => {
        const { revoked } = await onGrant(trx, at, settle, grantId, { kind: 'relinquish', grantId, by: person(caller) });
        return { ...(await deps.load(grantId, trx)), revoked };
      });
    },

    async acknowledge(caller, grantId, comment) {
      const event: LifeEvent = { kind: 'review', grantId, by: person(caller), comment };
      early(event);
      return run(async (trx, at, settle) => {
        await onGrant(trx, at, settle, grantId, event);
        return deps.load(grantId, trx);
      });
    },

    async endIneligible() {
      const at = now();
      const policy = deps.policy();
      const recheck = (g: GrantRow, account: Holder | undefined) => transition({ approvals: [], grant: grantState(g), account }, { kind: 'recheck' }, policy, at);
      const suspects = (await liveGrantHolders(db, at)).filter((g) => recheck(g, g.enabled === null ? undefined : holder({ name: g.username, groups: g.groups ?? [], enabled: g.enabled })).effects.length > 0);
      if (suspects.length === 0) return { ended_grants: [], revoked: [] };
      return run(
        async (trx, _at, settle) => {
          const out: EndedGrants = { ended_grants: [], revoked: [] };
          // Judged again under the lock, with the holder as they are now.
          for (const g of await lockLiveGrants(trx, at, { ids: suspects.map((x) => x.id) })) {
            const u = await findUser(trx, g.username);
            const ended = await settle(recheck(g, u && holder(u)));
            out.ended_grants.push(...ended.ended_grants);
            out.revoked.push(...ended.revoked);
          }
          return out;
        },
        () => at,
      );
    },

    async expireDue() {
      return run(async (trx, at) => {
        // One statement closes them all (the core's rule: pending past the time to live); each is reported as the core says.
        const expired = await expirePending(trx, at);
        await applyEffects(trx, deps.policy().webhooks, expired.flatMap((r) => expiryReport(requestFacts(r))), at);
        return expired.length;
      });
    },
  };
}
