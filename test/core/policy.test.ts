import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EXAMPLE_POLICY } from '../../src/config.js';
import { parsePolicy, PolicyError } from '../../src/core/policy.js';

function problems(text: string): string[] {
  try {
    parsePolicy(text);
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
  assert.fail('the policy was accepted');
}

const role = (body: string) => `roles:\n  web:\n    principals: [deploy]\n    requesters: [group:eng]\n    approval: {approvers: [group:leads], required: 1}\n${body}`;

test('ok-example: the shipped example (examples/policy.yaml, every field) parses with its values', () => {
  const text = readFileSync(EXAMPLE_POLICY, 'utf8');
  const p = parsePolicy(text);
  assert.equal(p.digest, createHash('sha256').update(text).digest('hex'));
  assert.deepEqual(p.defaults, { maxDuration: 8 * 3600, requestTtl: 24 * 3600, clockSkew: 60, minReasonLength: 10 });
  assert.deepEqual(p.mfa, { login: 'totp', approval: 'totp' });
  const r = p.roles.get('web-prod')!;
  assert.deepEqual(r.principals, ['deploy']);
  assert.deepEqual(r.requesters, [{ kind: 'group', name: 'engineering' }]);
  assert.equal(r.maxDuration, 4 * 3600);
  assert.deepEqual(r.approval, { approvers: [{ kind: 'group', name: 'sre-leads' }, { kind: 'user', name: 'carol' }], required: 1, stepUp: 'required' });
  assert.equal(r.autoApprove.length, 2);
  assert.equal(r.autoApprove[0]!.maxDuration, 4 * 3600, "a rule's cap above the role's is held to the role's");
  assert.deepEqual([r.autoApprove[1]!.maxDuration, r.autoApprove[1]!.requireTicket], [1800, true]);
  assert.deepEqual(r.breakGlass, { groups: ['sre'], users: [], maxDuration: 3600 });
  assert.deepEqual(r.certificate, { extensions: ['permit-pty', 'permit-port-forwarding'], sourceAddress: ['10.0.0.0/8', '127.0.0.1/32'], forceCommand: null });
});

test('ok-defaults: durations, extensions and window fall back to documented defaults', () => {
  const p = parsePolicy(role('    auto_approve:\n      - groups: [oncall]\n        window: {start: "09:00", end: "17:00"}\n'));
  const r = p.roles.get('web')!;
  assert.equal(r.maxDuration, 8 * 3600);
  assert.equal(r.defaultDuration, 3600);
  assert.deepEqual(r.certificate.extensions, ['permit-pty']);
  assert.deepEqual(r.autoApprove[0]!.window, { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], startMinute: 540, endMinute: 1020, timezone: 'UTC' });
  assert.deepEqual(p.webhooks, []);
});

const failures: Array<[string, string, string[]]> = [
  ['fail-dangerous-principals', `roles:\n  web:\n    principals: ["a,b", "*", "root\\nadmin", "", "-x", " x", "a\\0b", "@admins", "${'x'.repeat(257)}", "db?", "a\\tb", "a\\x1bb", "!root", "héllo", ".x"]\n    requesters: [group:eng]\n    approval: {approvers: [group:l], required: 1}\n`, [
    'roles.web.principals[0]: principal "a,b" contains a comma (sshd would read two principals)',
    'roles.web.principals[1]: principal "*" contains a wildcard',
    'roles.web.principals[2]: principal "root\\nadmin" contains whitespace or a newline',
    'roles.web.principals[3]: principal "" is empty',
    'roles.web.principals[4]: principal "-x" starts with "-" (a login name starts with a letter, digit or _)',
    'roles.web.principals[5]: principal " x" contains whitespace or a newline',
    'roles.web.principals[6]: principal "a\\u0000b" contains a NUL or another control character',
    'roles.web.principals[7]: principal "@admins" starts with "@" (a login name starts with a letter, digit or _)',
    `roles.web.principals[8]: principal "${'x'.repeat(64)}…" is 257 characters long (at most 256)`,
    'roles.web.principals[9]: principal "db?" contains a wildcard',
    'roles.web.principals[10]: principal "a\\tb" contains whitespace or a newline',
    'roles.web.principals[11]: principal "a\\u001bb" contains a NUL or another control character',
    'roles.web.principals[12]: principal "!root" contains a wildcard',
    'roles.web.principals[13]: principal "héllo" has characters a login name cannot have',
    'roles.web.principals[14]: principal ".x" starts with "." (a login name starts with a letter, digit or _)',
  ]],
  ['fail-principal-one-past-the-longest', `roles:\n  web:\n    principals: ["${'x'.repeat(256)}", "${'y'.repeat(257)}"]\n    requesters: [group:eng]\n    approval: {approvers: [group:l], required: 1}\n`, [
    `roles.web.principals[1]: principal "${'y'.repeat(64)}…" is 257 characters long (at most 256)`,
  ]],
  ['fail-no-principals', 'roles:\n  web:\n    principals: []\n    requesters: [group:eng]\n    approval: {approvers: [group:l], required: 1}\n', ['roles.web.principals: must list at least one principal (sshd refuses certificates without)']],
  ['fail-duplicate-principal', 'roles:\n  web:\n    principals: [a, a]\n    requesters: [group:eng]\n    approval: {approvers: [group:l], required: 1}\n', ['roles.web.principals: lists the same principal twice']],
  ['fail-bad-subjects', 'roles:\n  web:\n    principals: [a]\n    requesters: [eng, "team:x", "group:Bad Name"]\n    approval: {approvers: [group:l], required: 0}\n', [
    'roles.web.requesters[0]: must be group:NAME or user:NAME',
    'roles.web.requesters[1]: must be group:NAME or user:NAME',
    'roles.web.requesters[2]: must be group:NAME or user:NAME',
    'roles.web.approval.required: Too small: expected number to be >=1',
  ]],
  ['fail-typo-keys', role('    max_duraton: 2h\n    auto_approve:\n      - group: [oncall]\n'), ['roles.web.auto_approve[0]: Unrecognized key: "group"', 'roles.web: Unrecognized key: "max_duraton"']],
  ['fail-durations', `defaults:\n  max_duration: 2h\n  request_ttl: soon\n${role('    max_duration: 3h\n    default_duration: 1d\n')}`, ['defaults.request_ttl: must be a duration such as 30m, 2h or 1h30m']],
  ['fail-caps', `defaults:\n  max_duration: 2h\n${role('    max_duration: 3h\n    break_glass: {groups: [sre], max_duration: 4h}\n')}`, [
    'roles.web.max_duration: 3h is more than defaults.max_duration (2h)',
    'roles.web.break_glass.max_duration: 4h is more than the role max_duration (3h)',
  ]],
  ['fail-certificate-options', role('    certificate:\n      extensions: [permit-pty, permit-everything]\n      source_address: [10.0.0.1/8, "10.0.0.0/8,1.2.3.4"]\n      force_command: "ls\\nrm -rf /"\n'), [
    'roles.web.certificate.extensions[1]: Invalid option: expected one of "no-touch-required"|"permit-X11-forwarding"|"permit-agent-forwarding"|"permit-port-forwarding"|"permit-pty"|"permit-user-rc"',
    'roles.web.certificate.source_address[0]: must be an address or CIDR block such as 10.0.0.0/8',
    'roles.web.certificate.source_address[1]: must be an address or CIDR block such as 10.0.0.0/8',
    'roles.web.certificate.force_command: must be one line',
  ]],
  ['fail-window', role('    auto_approve:\n      - window: {start: "9:00", end: "24:00", timezone: Mars/Olympus, days: [monday]}\n'), [
    'roles.web.auto_approve[0].window.days[0]: Invalid option: expected one of "mon"|"tue"|"wed"|"thu"|"fri"|"sat"|"sun"',
    'roles.web.auto_approve[0].window.start: must be a time HH:MM between 00:00 and 23:59',
    'roles.web.auto_approve[0].window.end: must be a time HH:MM between 00:00 and 23:59',
    'roles.web.auto_approve[0].window.timezone: must be an IANA time zone such as Europe/Berlin',
  ]],
  ['fail-empty-window', role('    auto_approve:\n      - window: {start: "09:00", end: "09:00"}\n'), ['roles.web.auto_approve[0].window: start and end must differ']],
  ['fail-duplicate-extension', role('    certificate:\n      extensions: [permit-pty, permit-pty]\n'), ['roles.web.certificate.extensions: lists the same extension twice']],
  ['fail-unreachable-role', 'roles:\n  web:\n    principals: [a]\n    requesters: [group:eng]\n', ['roles.web: has no approval, auto_approve or break_glass: no one could ever get this role']],
  ['fail-bad-role-name', 'roles:\n  Web Prod:\n    principals: [a]\n    requesters: [group:eng]\n    auto_approve: [{}]\n', ['roles.Web Prod: role names are lower case, digits, _ . - (at most 64)']],
  ['fail-no-roles', 'roles: {}\n', ['roles: must define at least one role']],
  ['fail-break-glass-nobody', role('    break_glass: {max_duration: 1h}\n'), ['roles.web.break_glass: must name groups or users']],
  ['fail-webhooks', `${role('')}notifications:\n  webhooks:\n    - url: ftp://x\n      events: [request.approved, request.exploded]\n`, [
    'notifications.webhooks[0].url: must be an http(s) URL',
    'notifications.webhooks[0].events[1]: Invalid option: expected one of "request.created"|"request.approved"|"request.denied"|"request.expired"|"request.cancelled"|"request.break_glass"|"request.extended"',
  ]],
  ['fail-yaml-duplicate-key', 'roles:\n  web:\n    principals: [a]\n    principals: [b]\n', ['YAML: Map keys must be unique']],
  ['fail-not-a-map', '- just\n- a list\n', ['(top level): Invalid input: expected object, received array']],
];

for (const [name, text, expected] of failures) {
  test(name, () => {
    assert.deepEqual(problems(text), expected);
  });
}

test('fail-every-problem-at-once: several problems are reported together', () => {
  const got = problems(`defaults:\n  clock_skew: 2h\nroles:\n  a:\n    principals: [x]\n    requesters: [group:e]\n  b:\n    principals: [y]\n    requesters: [group:e]\n`);
  assert.deepEqual(got, [
    'defaults.clock_skew: must be at most 1h',
    'roles.a: has no approval, auto_approve or break_glass: no one could ever get this role',
    'roles.b: has no approval, auto_approve or break_glass: no one could ever get this role',
  ]);
});

test('ok-mfa: second factors default to totp; one method for both, or login and approval apart; require_mfa per role', () => {
  const base = parsePolicy(role(''));
  assert.deepEqual(base.mfa, { login: 'totp', approval: 'totp' });
  assert.equal(base.roles.get('web')!.requireMfa, null);
  assert.deepEqual(parsePolicy(`mfa: webauthn\n${role('')}`).mfa, { login: 'webauthn', approval: 'webauthn' });
  assert.deepEqual(parsePolicy(`mfa: {approval: webauthn}\n${role('')}`).mfa, { login: 'totp', approval: 'webauthn' });
  assert.deepEqual(parsePolicy(`mfa: {login: webauthn, approval: totp}\n${role('')}`).mfa, { login: 'webauthn', approval: 'totp' });
  assert.equal(parsePolicy(role('    require_mfa: webauthn\n')).roles.get('web')!.requireMfa, 'webauthn');
  assert.equal(parsePolicy(role('    require_mfa: totp\n')).roles.get('web')!.requireMfa, null);
});

test('fail-mfa: an unknown method or key is refused, not taken as totp', () => {
  assert.ok(problems(`mfa: sms\n${role('')}`).some((p) => p.startsWith('mfa:')));
  assert.ok(problems(`mfa: {login: webauthn, approvals: webauthn}\n${role('')}`).some((p) => p.startsWith('mfa')));
  assert.ok(problems(role('    require_mfa: passkey\n')).some((p) => p.startsWith('roles.web.require_mfa')));
});

test('ok-require-key: require_key fido marks the role; any (the default) takes every accepted key', () => {
  assert.equal(parsePolicy(role('')).roles.get('web')!.requireKey, null);
  assert.equal(parsePolicy(role('    require_key: any\n')).roles.get('web')!.requireKey, null);
  const fido = parsePolicy(role('    require_key: fido\n    certificate:\n      extensions: [permit-pty]\n')).roles.get('web')!;
  assert.equal(fido.requireKey, 'fido');
  // The option itself is not a policy field: the role asks for it by requiring the key.
  assert.deepEqual(fido.certificate, { extensions: ['permit-pty'], sourceAddress: [], forceCommand: null });
});

test('fail-require-key: an unknown value, a list, a misplaced key, or no-touch-required on a fido role is refused with its path', () => {
  for (const value of ['FIDO', 'sk', 'yubikey', 'true', '[fido]', '""']) {
    assert.deepEqual(problems(role(`    require_key: ${value}\n`)).map((p) => p.split(':')[0]), ['roles.web.require_key'], value);
  }
  assert.deepEqual(problems(role('    certificate:\n      require_key: fido\n')), ['roles.web.certificate: Unrecognized key: "require_key"']);
  assert.deepEqual(problems(role('    require_key: fido\n    certificate:\n      extensions: [permit-pty, no-touch-required]\n')), [
    'roles.web.certificate.extensions: no-touch-required contradicts require_key: fido (a touch and a PIN at every login)',
  ]);
  // Without require_key the extension stays the operator's choice.
  assert.deepEqual(parsePolicy(role('    certificate:\n      extensions: [no-touch-required]\n')).roles.get('web')!.certificate.extensions, ['no-touch-required']);
});
