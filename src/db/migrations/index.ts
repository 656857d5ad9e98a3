// Migrations are listed here, not discovered on disk, so they run the same
// from source, from a package and from a bundle. Names sort in order of
// application; never edit one that has shipped — add a new one.
import type { Migration, MigrationProvider } from 'kysely';
import * as certificates from './2026-11-22-01-certificates.js';
import * as identity from './2026-11-22-02-identity.js';
import * as requests from './2026-11-22-03-requests.js';
import * as audit from './2026-11-22-04-audit.js';
import * as workflowHistory from './2026-12-03-01-workflow-history.js';
import * as caKeysState from './2026-12-03-02-ca-keys-state.js';
import * as grantEnd from './2026-12-03-04-grant-end.js';
import * as sessionAuth from './2026-12-03-05-session-auth.js';
import * as oidcIdentities from './2026-12-03-06-oidc-identities.js';
import * as hostCertificates from './2026-12-03-08-host-certificates.js';
import * as webauthn from './2026-12-04-10-webauthn.js';
import * as certificateRefusals from './2026-12-04-14-certificate-refusals.js';

const migrations: Record<string, Migration> = {
  '2026-11-22-01-certificates': certificates,
  '2026-11-22-02-identity': identity,
  '2026-11-22-03-requests': requests,
  '2026-11-22-04-audit': audit,
  '2026-12-03-01-workflow-history': workflowHistory,
  '2026-12-03-02-ca-keys-state': caKeysState,
  '2026-12-03-04-grant-end': grantEnd,
  '2026-12-03-05-session-auth': sessionAuth,
  '2026-12-03-06-oidc-identities': oidcIdentities,
  '2026-12-03-08-host-certificates': hostCertificates,
  '2026-12-04-10-webauthn': webauthn,
  '2026-12-04-14-certificate-refusals': certificateRefusals,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
