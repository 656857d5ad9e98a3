// The terms of a grant's certificate, decided without I/O: principals and
// options from the role, the window from the grant, the key ID from who, which
// request and which serial.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certificateTerms, givenTerms, keyIdFor, keyRefusal, type CertifiedKey, type TermsInput } from '../../src/core/cert-terms.js';
import { parsePolicy } from '../../src/core/policy.js';
import type { Role } from '../../src/core/policy-types.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const policy = parsePolicy(WORKFLOW_POLICY);
const webProd = policy.roles.get('web-prod')!;
const dbProd = policy.roles.get('db-prod')!;
const key: CertifiedKey = { type: 'ssh-ed25519', blob: Buffer.from('00000000', 'hex') };
const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);
const unix = (s: number) => Math.floor((T0 + s * 1000) / 1000);

function input(overrides: Partial<TermsInput<CertifiedKey>> = {}): TermsInput<CertifiedKey> {
  return {
    grant: { id: '01JGRANT00000000000000000A', username: 'alice', startsAt: at(0), endsAt: at(3600) },
    role: webProd,
    policy,
    key,
    serial: 4242n,
    now: at(600),
    ...overrides,
  };
}

test('ok: the window, row by row — valid_before is the grant end, valid_after now (or the start) less the skew', () => {
  const skew = (s: number) => ({ ...policy, defaults: { ...policy.defaults, clockSkew: s } });
  const cases: Array<[string, Partial<TermsInput<CertifiedKey>>, number, number]> = [
    ['inside the grant', {}, unix(600 - 60), unix(3600)],
    ['at the very start', { now: at(0) }, unix(-60), unix(3600)],
    ['a clock behind the approver: never before the start less the skew', { now: at(-300) }, unix(-60), unix(3600)],
    ['no skew allowance', { now: at(600), policy: skew(0) }, unix(600), unix(3600)],
    ['an hour of skew allowance', { policy: skew(3600) }, unix(600 - 3600), unix(3600)],
    ['milliseconds round down', { now: at(600.999), grant: { ...input().grant, endsAt: at(3600.999) } }, unix(540), unix(3600)],
    ['an extended grant: its new end', { grant: { ...input().grant, endsAt: at(7200) } }, unix(540), unix(7200)],
  ];
  for (const [label, overrides, after, before] of cases) {
    const t = certificateTerms(input(overrides));
    assert.equal(t.validAfter, after, label);
    assert.equal(t.validBefore, before, label);
  }
});

test('ok: principals, extensions and critical options come from the role', () => {
  const cases: Array<[string, Role, string[], string[], Record<string, string>]> = [
    ['source addresses joined', webProd, ['deploy'], ['permit-pty', 'permit-port-forwarding'], { 'source-address': '10.0.0.0/8,127.0.0.1/32' }],
    ['a forced command (and the default extension)', dbProd, ['dba', 'postgres'], ['permit-pty'], { 'force-command': '/usr/local/bin/db-shell' }],
    ['both', { ...webProd, certificate: { extensions: [], sourceAddress: ['192.0.2.1'], forceCommand: 'uptime' } }, ['deploy'], [], { 'source-address': '192.0.2.1', 'force-command': 'uptime' }],
    ['neither', { ...webProd, certificate: { extensions: ['permit-pty'], sourceAddress: [], forceCommand: null } }, ['deploy'], ['permit-pty'], {}],
  ];
  for (const [label, role, principals, extensions, criticalOptions] of cases) {
    const t = certificateTerms(input({ role }));
    assert.deepEqual(t.principals, principals, label);
    assert.deepEqual(t.extensions, extensions, label);
    assert.deepEqual(t.criticalOptions, criticalOptions, label);
  }
});

test('ok: the key ID names the user, the request and the serial; the key and serial are the ones given', () => {
  const t = certificateTerms(input({ serial: 9_223_372_036_854_775_807n }));
  assert.equal(t.keyId, 'alice@jit-ssh req=01JGRANT00000000000000000A serial=9223372036854775807');
  assert.equal(t.serial, 9_223_372_036_854_775_807n);
  assert.equal(t.publicKey, key);
  assert.equal(keyIdFor('bob', null, 2n), 'bob@jit-ssh req=none serial=2');
});

test('ok: pure — the same inputs give the same terms, and the terms share nothing with the policy', () => {
  const a = certificateTerms(input());
  assert.deepEqual(certificateTerms(input()), a);
  a.principals.push('root');
  a.extensions.push('permit-user-rc');
  assert.deepEqual(webProd.principals, ['deploy']);
  assert.deepEqual(webProd.certificate.extensions, ['permit-pty', 'permit-port-forwarding']);
  assert.deepEqual(certificateTerms(input()).principals, ['deploy']);
});

test('ok: terms given whole keep what they say and get their key ID', () => {
  const given = { username: 'carol', requestId: null, principals: ['ops'], validAfter: at(0.5), validBefore: at(60.5), extensions: ['permit-pty'], criticalOptions: { 'force-command': 'true' } };
  const t = givenTerms(given, key, 77n);
  assert.deepEqual(t, { publicKey: key, serial: 77n, keyId: 'carol@jit-ssh req=none serial=77', principals: ['ops'], validAfter: unix(0), validBefore: unix(60), extensions: ['permit-pty'], criticalOptions: { 'force-command': 'true' } });
  t.principals.push('root');
  assert.deepEqual(given.principals, ['ops']);
});

test('ok/fail-require-key: a require_key: fido role certifies only security keys, each with verify-required; other roles take them without it', () => {
  const fido: Role = { ...webProd, requireKey: 'fido' };
  const plainTypes = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'];
  const skTypes = ['sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'];
  for (const type of skTypes) {
    const k = { type, blob: key.blob };
    assert.equal(keyRefusal(fido, type), null, type);
    assert.deepEqual(certificateTerms(input({ role: fido, key: k })).criticalOptions, { 'source-address': '10.0.0.0/8,127.0.0.1/32', 'verify-required': '' }, type);
    assert.equal(keyRefusal(webProd, type), null, `${type} for a role without require_key`);
    assert.deepEqual(certificateTerms(input({ key: k })).criticalOptions, { 'source-address': '10.0.0.0/8,127.0.0.1/32' }, `${type}: no verify-required unless the role asks`);
  }
  for (const type of plainTypes) {
    const refused = keyRefusal(fido, type);
    assert.equal(refused?.code, 'key_type_not_allowed', type);
    assert.equal(refused?.message, `role web-prod takes only FIDO security keys (sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com), not ${type}: make one with ssh-keygen -t ed25519-sk -O verify-required`);
    // No terms are made for such a key, so nothing can be signed for it.
    assert.throws(() => certificateTerms(input({ role: fido, key: { type, blob: key.blob } })), { code: 'key_type_not_allowed' }, type);
    assert.equal(keyRefusal(webProd, type), null, `${type} for a role without require_key`);
  }
  // The flag option sits with the role's valued ones (the encoder sorts them by name).
  assert.deepEqual(certificateTerms(input({ role: { ...dbProd, requireKey: 'fido' }, key: { type: skTypes[0]!, blob: key.blob } })).criticalOptions, { 'force-command': '/usr/local/bin/db-shell', 'verify-required': '' });
});
