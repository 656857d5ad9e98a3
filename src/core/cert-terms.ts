// What a certificate says, decided before anything is signed: the key it
// certifies, its serial and key ID, its principals, its validity window and
// its options. Pure: the caller brings the grant, the policy, the key, the
// serial and the clock.
//
// The window is the grant's: valid_before is the grant's end, never later;
// valid_after is now minus the clock-skew allowance, never before the grant
// started minus that allowance. Both are whole Unix seconds, rounded down.

import { isSecurityKeyType, SECURITY_KEY_TYPES } from './cert-options.js';
import { DomainError } from './errors.js';
import type { Policy, Role } from './policy-types.js';

/** The key being certified: its type name and its wire encoding. */
export interface CertifiedKey {
  type: string;
  blob: Buffer;
}

export interface CertificateTerms<K extends CertifiedKey = CertifiedKey> {
  publicKey: K;
  serial: bigint;
  keyId: string;
  principals: string[];
  /** Unix seconds, inclusive. */
  validAfter: number;
  /** Unix seconds, exclusive. */
  validBefore: number;
  /** Flag extensions, e.g. `permit-pty`. */
  extensions: string[];
  /** `source-address` and `force-command`, by name; `verify-required` (a flag, value '') for a `require_key: fido` role. */
  criticalOptions: Record<string, string>;
}

/** The part of a grant a certificate's terms depend on. */
export interface GrantForTerms {
  id: string;
  username: string;
  startsAt: Date;
  endsAt: Date;
}

export interface TermsInput<K extends CertifiedKey> {
  grant: GrantForTerms;
  /** The grant's role, as the policy in force now describes it. */
  role: Role;
  policy: Pick<Policy, 'defaults'>;
  key: K;
  serial: bigint;
  now: Date;
}

/** The key ID sshd logs with every login: who, for which request, which certificate. */
export function keyIdFor(username: string, requestId: string | null, serial: bigint): string {
  return `${username}@jit-ssh req=${requestId ?? 'none'} serial=${serial}`;
}

export const unixSeconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/** The critical options a role's certificates carry. */
export function roleCriticalOptions(role: Role): Record<string, string> {
  const out: Record<string, string> = {};
  if (role.certificate.sourceAddress.length > 0) out['source-address'] = role.certificate.sourceAddress.join(',');
  if (role.certificate.forceCommand) out['force-command'] = role.certificate.forceCommand;
  // sshd (OpenSSH 8.4 and later) then accepts a login only with a signature the security key made
  // after verifying its user (PIN or biometric); an older sshd refuses the certificate outright,
  // as it refuses any critical option it does not know: closed, not open.
  if (role.requireKey === 'fido') out['verify-required'] = '';
  return out;
}

/**
 * Whether `role` certifies a key of type `keyType`: null when it does, else the refusal.
 * A `require_key: fido` role takes FIDO security keys only; every other role takes them too,
 * as a security key is never weaker than a plain key.
 */
export function keyRefusal(role: Role, keyType: string): DomainError | null {
  if (role.requireKey !== 'fido' || isSecurityKeyType(keyType)) return null;
  return new DomainError(
    'key_type_not_allowed',
    `role ${role.name} takes only FIDO security keys (${SECURITY_KEY_TYPES.join(' or ')}), not ${keyType}: make one with ssh-keygen -t ed25519-sk -O verify-required`,
  );
}

/** The terms of a certificate for `grant`, issued at `now`; throws the refusal for a key the role does not take. */
export function certificateTerms<K extends CertifiedKey>(input: TermsInput<K>): CertificateTerms<K> {
  const { grant, role, key, serial, now } = input;
  const refused = keyRefusal(role, key.type);
  if (refused) throw refused;
  const skew = input.policy.defaults.clockSkew * 1000;
  const validAfter = new Date(Math.max(now.getTime() - skew, grant.startsAt.getTime() - skew));
  return {
    publicKey: key,
    serial,
    keyId: keyIdFor(grant.username, grant.id, serial),
    principals: [...role.principals],
    validAfter: unixSeconds(validAfter),
    validBefore: unixSeconds(grant.endsAt),
    extensions: [...role.certificate.extensions],
    criticalOptions: roleCriticalOptions(role),
  };
}

/** Terms given whole (a certificate no grant backs): only the serial and key ID are added. */
export interface GivenTerms {
  username: string;
  requestId: string | null;
  principals: readonly string[];
  validAfter: Date;
  validBefore: Date;
  extensions: readonly string[];
  criticalOptions: Readonly<Record<string, string>>;
}

export function givenTerms<K extends CertifiedKey>(given: GivenTerms, key: K, serial: bigint): CertificateTerms<K> {
  return {
    publicKey: key,
    serial,
    keyId: keyIdFor(given.username, given.requestId, serial),
    principals: [...given.principals],
    validAfter: unixSeconds(given.validAfter),
    validBefore: unixSeconds(given.validBefore),
    extensions: [...given.extensions],
    criticalOptions: { ...given.criticalOptions },
  };
}
