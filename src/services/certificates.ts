// Certificates for grants: authenticate → load the caller's grant → check it
// is live and the caller still may hold the role → mint → log → return. The
// certificate's window is the grant's: valid_before is the grant's end, never
// later; valid_after is now minus the clock-skew allowance, never before the
// grant started minus that allowance.

import type { Kysely } from 'kysely';
import { DomainError } from '../core/errors.js';
import { holdRefusal, isLive } from '../core/grant.js';
import type { Policy } from '../core/policy-types.js';
import { batchedLookup } from '../db/batch.js';
import { findGrants } from '../db/requests.js';
import { ID_FORM } from './ids.js';
import { grantFacts } from './grant-end.js';
import type { Database } from '../db/schema.js';
import type { Caller } from './requests.js';
import type { IssuedCertificate, Issuer } from './issuer.js';

export interface CertificateService {
  issue(caller: Caller, input: Record<string, unknown>): Promise<IssuedCertificate>;
}

export function createCertificateService(deps: { db: Kysely<Database>; issuer: Issuer; policy: () => Policy; now?: () => Date }): CertificateService {
  const now = deps.now ?? (() => new Date());
  // Concurrent issuances read their grants with one statement (see db/batch.ts).
  const grantOf = batchedLookup((ids: string[]) => findGrants(deps.db, ids));
  return {
    async issue(caller, input) {
      const { public_key: publicKey, request_id: grantId } = input;
      if (typeof publicKey !== 'string' || publicKey.length === 0) throw new DomainError('invalid_input', 'public_key is required: one OpenSSH public key line');
      if (typeof grantId !== 'string' || grantId.length === 0 || grantId.length > 64) throw new DomainError('invalid_input', 'request_id is required');
      // Ids are ULIDs. Anything else names no grant and stays out of the shared lookup, where a value
      // the database refuses (a NUL) failed every issuance of the same statement with a 500.
      if (!ID_FORM.test(grantId)) throw new DomainError('not_found', `no approved request ${grantId} of yours`);
      const at = now();
      const me = caller.principal;
      const grant = await grantOf(grantId);
      if (!grant || grant.username !== me.username) throw new DomainError('not_found', `no approved request ${grantId} of yours`);
      const policy = deps.policy();
      const role = policy.roles.get(grant.role);
      // Issuance-time re-check, before the grant's state: someone removed from the group since the
      // approval is told so, whether or not their grant has been ended for it already.
      if (role && holdRefusal(role, grant.role, { name: me.username, groups: me.groups, enabled: true }, grant.break_glass)) {
        throw new DomainError('forbidden', `you no longer may request ${grant.role}`);
      }
      if (!isLive(grantFacts(grant), at)) {
        if (grant.relinquished_at) throw new DomainError('conflict', `grant ${grantId} was relinquished`);
        if (grant.ended_at) throw new DomainError('conflict', `grant ${grantId} ended at ${grant.ended_at.toISOString()}: ${grant.end_reason}`);
        throw new DomainError('conflict', `grant ${grantId} ended at ${grant.ends_at.toISOString()}`);
      }
      if (!role) throw new DomainError('conflict', `role ${grant.role} is no longer in the policy`);
      const skew = policy.defaults.clockSkew * 1000;
      const validAfter = new Date(Math.max(at.getTime() - skew, grant.starts_at.getTime() - skew));
      const criticalOptions: Record<string, string> = {};
      if (role.certificate.sourceAddress.length > 0) criticalOptions['source-address'] = role.certificate.sourceAddress.join(',');
      if (role.certificate.forceCommand) criticalOptions['force-command'] = role.certificate.forceCommand;
      return deps.issuer.issue({
        username: me.username,
        requestId: grant.id,
        role: grant.role,
        publicKey,
        principals: role.principals,
        validAfter,
        validBefore: grant.ends_at,
        extensions: role.certificate.extensions,
        criticalOptions,
        clientAddress: caller.clientAddress,
      });
    },
  };
}
