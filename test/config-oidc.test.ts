// JIT_SSH_OIDC_CONFIG: the identity providers file, its defaults and its errors.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadServerConfig } from '../src/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'jit-ssh-oidc-config-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const problems = (env: Record<string, string>): string[] => {
  try {
    loadServerConfig(env, {}, dir);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

test('ok: standalone by default; an issuer gets the documented defaults; secrets from file or environment', () => {
  assert.equal(loadServerConfig({}, {}, dir).oidc, null);
  file('secret.txt', 'file-secret\n');
  const p = file(
    'ok.yaml',
    `redirect_base_url: https://ca.example.com/
issuers:
  - id: okta
    name: Okta
    issuer: https://example.okta.com
    client_id: abc
    client_secret_file: secret.txt
  - id: kc
    name: Keycloak
    issuer: http://127.0.0.1:8081/realms/x
    client_id: jit
    client_secret_env: KC_SECRET
    username_claim: email
    groups_claim: roles
    allowed_email_domains: [Example.com]
    group_map: { SRE: sre, Oncall: [oncall, engineering] }
    username_prefix: ""
`,
  );
  const c = loadServerConfig({ JIT_SSH_OIDC_CONFIG: p, KC_SECRET: 'env-secret', JIT_SSH_OIDC_MAX_GROUP_AGE: '2h' }, {}, dir);
  assert.equal(c.oidc!.redirectBase, 'https://ca.example.com');
  assert.equal(c.auth.maxGroupAge, 7200);
  const [okta, kc] = c.oidc!.issuers;
  assert.deepEqual(
    { secret: okta!.clientSecret, scopes: okta!.scopes, claims: okta!.usernameClaims, groups: okta!.groupsClaim, prefix: okta!.usernamePrefix, map: okta!.groupMap },
    { secret: 'file-secret', scopes: ['openid', 'profile', 'email'], claims: ['preferred_username', 'email'], groups: 'groups', prefix: 'okta.', map: null },
  );
  assert.equal(kc!.clientSecret, 'env-secret');
  assert.deepEqual(kc!.usernameClaims, ['email']);
  assert.deepEqual(kc!.allowedEmailDomains, ['example.com']);
  assert.deepEqual([...kc!.groupMap!], [['SRE', ['sre']], ['Oncall', ['oncall', 'engineering']]]);
  assert.equal(kc!.usernamePrefix, '');
});

test('fail: every problem in the file is named with its place; secrets never appear', () => {
  const p = file(
    'bad.yaml',
    `issuers:
  - id: Okta
    name: Okta
    issuer: http://idp.example.com
    client_id: abc
    client_secret: s3cret-value
    scopes: [profile]
    extra: 1
`,
  );
  const out = problems({ JIT_SSH_OIDC_CONFIG: p });
  const text = out.join('\n');
  assert.match(text, /issuers\.0\.id: must be lower case/);
  assert.match(text, /issuers\.0\.issuer: must be https:\/\//);
  assert.match(text, /extra/);
  assert.doesNotMatch(text, /s3cret-value/);
  const p2 = file('bad2.yaml', `issuers:\n  - { id: a, name: A, issuer: https://a.example, client_id: x }\n  - { id: a, name: A, issuer: https://a.example, client_id: x, client_secret: y, client_secret_env: Z, scopes: [email] }\n`);
  const t2 = problems({ JIT_SSH_OIDC_CONFIG: p2 }).join('\n');
  assert.match(t2, /redirect_base_url: required unless JIT_SSH_PUBLIC_URL/);
  assert.match(t2, /issuers\.0 \(a\): client_secret, client_secret_file or client_secret_env is required/);
  assert.match(t2, /issuers\.1 \(a\): id a is listed twice/);
  assert.match(t2, /issuers\.1 \(a\): give one of client_secret/);
  assert.match(t2, /issuers\.1 \(a\): scopes: must include openid/);
  assert.match(problems({ JIT_SSH_OIDC_CONFIG: path.join(dir, 'missing.yaml') }).join('\n'), /JIT_SSH_OIDC_CONFIG \(--oidc-config\): cannot read .*ENOENT/);
  assert.match(problems({ JIT_SSH_OIDC_MAX_GROUP_AGE: 'soon' }).join('\n'), /JIT_SSH_OIDC_MAX_GROUP_AGE \(--oidc-max-group-age\): must be a duration/);
  // JIT_SSH_PUBLIC_URL serves as the redirect base.
  const c = loadServerConfig({ JIT_SSH_OIDC_CONFIG: file('pub.yaml', `issuers:\n  - { id: a, name: A, issuer: https://a.example, client_id: x, client_secret: y }\n`), JIT_SSH_PUBLIC_URL: 'https://ca.example.com' }, {}, dir);
  assert.equal(c.oidc!.redirectBase, 'https://ca.example.com');
});
