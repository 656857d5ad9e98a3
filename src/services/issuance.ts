// Issuing a certificate for a grant, one named step after the other:
//
//   1. vetRequest        the body, whole, before anything is looked up: the
//                        public key parsed and vetted first, then the request id
//   2. loadGrant         the caller's grant, read without a lock
//      checkGrant        the caller still may hold its role, and it is live
//                        (core/grant.ts isLive)
//      checkKey          the role takes the key's type (require_key: fido takes
//                        FIDO security keys only)
//   3. certificateTerms  principals, window, options, key ID (core/cert-terms.ts, pure;
//                        verify-required for a require_key: fido role)
//   4. mint              encoded and signed by the CA signer
//   5. verifyMinted      parsed back; every field checked against the terms, the
//                        signature too unless node:crypto made it in this process
//   6. log               the certificates row, committed
//   7. issued            returned
//
// Steps 4–7 are the issuer's (issuance-sign.ts): they hold the signer and
// the log writer, and "no log row, no certificate" is theirs to keep. The
// grant is read lock-free; a grant that ends while its certificate is being
// made is caught by the log itself (the certificates table refuses the row).

import type { Kysely } from 'kysely';
import { certificateTerms, keyRefusal } from '../core/cert-terms.js';
import { DomainError } from '../core/errors.js';
import { holdRefusal, isLive } from '../core/grant.js';
import { requireFreshGroups } from '../core/group-age.js';
import type { Policy, Role } from '../core/policy-types.js';
import { batchedLookup } from '../db/batch.js';
import { findGrants } from '../db/requests.js';
import type { Database, GrantRow } from '../db/schema.js';
import { parseUserPublicKey, type UserPublicKey } from '../ssh/pubkey.js';
import { grantFacts } from './grant-end.js';
import { ID_FORM } from './ids.js';
import type { IssuedCertificate, Issuer } from './issuance-sign.js';
import type { Caller } from './requests.js';

export { CertificateCheckError, createIssuer, type IssueInput, type IssuedCertificate, type Issuer, type IssuerDeps } from './issuance-sign.js';
export { keyIdFor } from '../core/cert-terms.js';

export interface CertificateService {
  issue(caller: Caller, input: Record<string, unknown>): Promise<IssuedCertificate>;
}

export interface CertificateServiceDeps {
  db: Kysely<Database>;
  issuer: Issuer;
  policy: () => Policy;
  now?: () => Date;
  /** Seconds groups from an identity provider's sign-in count; null = no limit. */
  maxGroupAge?: number | null;
}

/** What a valid body asks for. */
export interface CertificateRequest {
  key: UserPublicKey;
  grantId: string;
}

const notYours = (grantId: string) => new DomainError('not_found', `no approved request ${grantId} of yours`);

/** Step 1: the whole body checked, the key first, so a bad key is named whatever else is wrong. */
export function vetRequest(input: Record<string, unknown>): CertificateRequest {
  const { public_key: publicKey, request_id: grantId } = input;
  if (typeof publicKey !== 'string' || publicKey.length === 0) throw new DomainError('invalid_input', 'public_key is required: one OpenSSH public key line');
  const key = parseUserPublicKey(publicKey);
  if (typeof grantId !== 'string' || grantId.length === 0 || grantId.length > 64) throw new DomainError('invalid_input', 'request_id is required');
  // Ids are ULIDs. Anything else names no grant and stays out of the shared lookup, where a value
  // the database refuses (a NUL) failed every issuance of the same statement with a 500.
  if (!ID_FORM.test(grantId)) throw notYours(grantId);
  return { key, grantId };
}

/** Step 2a: the caller's own grant, or not found (someone else's is not found either). */
export async function loadGrant(grantOf: (id: string) => Promise<GrantRow | undefined>, grantId: string, username: string): Promise<GrantRow> {
  const grant = await grantOf(grantId);
  if (!grant || grant.username !== username) throw notYours(grantId);
  return grant;
}

/** Step 2b: the grant still gives `caller` a certificate at `at`; returns its role as the policy now says. */
export function checkGrant(grant: GrantRow, caller: Caller, policy: Policy, at: Date): Role {
  const me = caller.principal;
  const role = policy.roles.get(grant.role);
  // Issuance-time re-check, before the grant's state: someone removed from the group since the
  // approval is told so, whether or not their grant has been ended for it already.
  if (role && holdRefusal(role, grant.role, { name: me.username, groups: me.groups, enabled: true }, grant.break_glass)) {
    throw new DomainError('forbidden', `you no longer may request ${grant.role}`);
  }
  if (!isLive(grantFacts(grant), at)) {
    if (grant.relinquished_at) throw new DomainError('conflict', `grant ${grant.id} was relinquished`);
    if (grant.ended_at) throw new DomainError('conflict', `grant ${grant.id} ended at ${grant.ended_at.toISOString()}: ${grant.end_reason}`);
    throw new DomainError('conflict', `grant ${grant.id} ended at ${grant.ends_at.toISOString()}`);
  }
  if (!role) throw new DomainError('conflict', `role ${grant.role} is no longer in the policy`);
  return role;
}

/** Step 2c: the role takes a key of this type; refused before anything is signed or logged. */
export function checkKey(role: Role, key: UserPublicKey): void {
  const refused = keyRefusal(role, key.type);
  if (refused) throw refused;
}

export function createCertificateService(deps: CertificateServiceDeps): CertificateService {
  const now = deps.now ?? (() => new Date());
  // Concurrent issuances read their grants with one statement (see db/batch.ts).
  const grantOf = batchedLookup((ids: string[]) => findGrants(deps.db, ids));
  return {
    async issue(caller, input) {
      const { key, grantId } = vetRequest(input);
      const at = now();
      const grant = await loadGrant(grantOf, grantId, caller.principal.username);
      // The holder's groups are re-checked below: an identity provider's count only while fresh.
      requireFreshGroups(caller.principal.groupsFrom, deps.maxGroupAge ?? null, at);
      const policy = deps.policy();
      const role = checkGrant(grant, caller, policy, at);
      checkKey(role, key);
      const terms = (serial: bigint) => certificateTerms({ grant: { id: grant.id, username: grant.username, startsAt: grant.starts_at, endsAt: grant.ends_at }, role, policy, key, serial, now: at });
      return deps.issuer.certify(key, terms, { username: grant.username, requestId: grant.id, role: grant.role, clientAddress: caller.clientAddress });
    },
  };
}
