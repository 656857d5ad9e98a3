// Every service, built in one place from what they share: the database, the
// CA keys, the secret box that seals TOTP secrets and the policy in force.
// The server, the admin commands run without it and the tests all build
// their services here; each is made the first time it is asked for, so a
// command pays only for what it uses.

import type { Kysely } from 'kysely';
import type { SecretBox } from '../auth/secret-box.js';
import type { ServerConfig } from '../config.js';
import type { Policy } from '../core/policy-types.js';
import type { Database } from '../db/schema.js';
import type { Logger } from '../log.js';
import { createAuditService, type AuditDeps, type AuditService } from './audit.js';
import { createAuthService, createStepUpVerifier, type AuthService, type StepUpVerifier } from './auth.js';
import { createCaKeysPublisher } from './ca-keys.js';
import { caKeyBlobs, type CaKeys } from './ca-signer.js';
import { createCertificateService, createIssuer, type CertificateService, type Issuer } from './issuance.js';
import { createNotifier, type Notifier } from './notify.js';
import { createOidcService, type OidcService } from './oidc.js';
import { createRequestService, type RequestService } from './requests.js';
import { createRevocationService, type RevocationService } from './revocation.js';
import { createUserAdmin, type UserAdmin } from './users.js';
import { createHostService, type HostService } from './hosts.js';
import { createWebauthnService, type WebauthnService } from './webauthn.js';

/** Groups from an identity provider's sign-in count this long by default (JIT_SSH_OIDC_MAX_GROUP_AGE). */
export const DEFAULT_MAX_GROUP_AGE = 12 * 3600;

/** The settings the services read. */
export type ServicesConfig = Pick<ServerConfig, 'auth' | 'webhookSecret'> & Partial<Pick<ServerConfig, 'oidc' | 'hostCertTtl' | 'webauthn'>>;

/** What the services are handed besides the settings, the database and the CA keys. */
export interface ServicesContext {
  /** Seals each user's TOTP secret (made from the server's secret key). */
  box: SecretBox;
  /**
   * The policy in force, read at each step. Absent when none could be read
   * (an admin command with a broken file): user changes then leave the grants
   * the new groups no longer allow to the server's periodic sweep.
   */
  policy?: () => Policy;
  logger: Logger;
  now?: () => Date;
  /** The chain heads this instance signed (kept outside the database): audit verify fails when the log no longer holds one. */
  signedHeads?: AuditDeps['signedHeads'];
  /** The host CA's keys (services/ca-signer.ts loadHostCaKeys); absent = no host certificates here. */
  hostKeys?: CaKeys;
}

export interface Services {
  /** A promise: it first derives the stand-in password hash that makes a login of an unknown name cost what a known one does. */
  auth: Promise<AuthService>;
  stepUp: StepUpVerifier;
  users: UserAdmin;
  requests: RequestService;
  issuer: Issuer;
  certificates: CertificateService;
  notifier: Notifier;
  /** Auditors' views; verify checks the checkpoints' signatures against every CA key, retired ones too. */
  audit: AuditService;
  revocation: RevocationService;
  /** The signed list of CA keys served at /v1/ca.pub. */
  caKeys: ReturnType<typeof createCaKeysPublisher>;
  /** Sign-in through identity providers; null in standalone mode (no JIT_SSH_OIDC_CONFIG). */
  oidc: OidcService | null;
  /** Host certificates: signing, enrollment, renewal, /v1/host-ca.pub. Throws on use when no host CA key was loaded. */
  hosts: HostService;
  /** The policy in force (throws when none could be read). */
  policy: () => Policy;
  /** Passkeys: registration, the passkey step of a web sign-in, passkey step-ups. */
  webauthn: WebauthnService;
}

/** The services that need no CA key (the admin commands load it only when a KRL or a verification asks for it). */
export type KeylessServices = Omit<Services, 'issuer' | 'certificates' | 'revocation' | 'caKeys' | 'hosts'>;

export function createServices(config: ServicesConfig, db: Kysely<Database>, keys: CaKeys, ctx: ServicesContext): Services;
export function createServices(config: ServicesConfig, db: Kysely<Database>, keys: null, ctx: ServicesContext): KeylessServices;
export function createServices(config: ServicesConfig, db: Kysely<Database>, keys: CaKeys | null, ctx: ServicesContext): Services | KeylessServices {
  const { box, logger, now } = ctx;
  const settings = config.auth;
  const maxGroupAge = settings.maxGroupAge ?? DEFAULT_MAX_GROUP_AGE;
  const policy =
    ctx.policy ??
    (() => {
      throw new Error('no policy is in force');
    });
  const ca = (): CaKeys => {
    if (!keys) throw new Error('the CA key is not loaded');
    return keys;
  };
  return lazily<Services>({
    auth: () => createAuthService({ db, box, settings, now }),
    stepUp: () => createStepUpVerifier({ db, box, settings, now }),
    users: () => createUserAdmin({ db, box, passwordCost: settings.passwordCost, policy: ctx.policy, now }),
    requests: () => createRequestService({ db, policy, now, maxGroupAge }),
    issuer: () => createIssuer({ db, signer: ca().signer, now }),
    certificates: (s) => createCertificateService({ db, issuer: s.issuer, policy, now, maxGroupAge }),
    notifier: () => createNotifier({ db, secret: config.webhookSecret, logger, now }),
    audit: () => createAuditService({ db, now, trustedKeys: keys ? [...caKeyBlobs([...keys.publicKeys, ...keys.retiredKeys]).values()] : undefined, signedHeads: ctx.signedHeads }),
    revocation: () => createRevocationService({ db, signer: ca().signer, caKeys: caKeyBlobs(ca().publicKeys), now }),
    oidc: (s) => (config.oidc ? createOidcService({ db, box, settings: config.oidc, tokenTtl: settings.tokenTtl, logger, webauthn: s.webauthn, mfaLogin: () => policy().mfa.login, now }) : null),
    policy: () => policy,
    webauthn: () => createWebauthnService({ db, settings: config.webauthn ?? { rpId: null, origin: null }, tokenTtl: settings.tokenTtl, now }),
    caKeys: () => createCaKeysPublisher({ db, signer: ca().signer, publicKeys: ca().publicKeys, retiredKeys: ca().retiredKeys, now }),
    hosts: () => {
      if (!ctx.hostKeys) throw new Error('the host CA key is not loaded');
      return createHostService({ db, keys: ctx.hostKeys, ttl: config.hostCertTtl ?? 30 * 86400, now });
    },
  });
}

/** An object whose members are made on first use, once, from the functions given (each may use the others). */
function lazily<T extends object>(make: { [K in keyof T]: (self: T) => T[K] }): T {
  const self = {} as T;
  for (const key of Object.keys(make) as Array<keyof T>) {
    let value: T[typeof key] | undefined;
    let made = false;
    Object.defineProperty(self, key, {
      enumerable: true,
      get: () => {
        if (!made) {
          value = make[key](self);
          made = true;
        }
        return value;
      },
    });
  }
  return self;
}
