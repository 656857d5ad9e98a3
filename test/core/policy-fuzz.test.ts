// Bad policy files: random text and YAML, the example damaged, principals of
// every kind, and the YAML that attacks parsers (deep nesting, alias bombs).
// parsePolicy answers a Policy or a PolicyError listing problems as
// "path: message", never another error, and a principal sshd could misread
// (comma, wildcard, whitespace, control character, leading - or @, too long,
// empty) is refused with its path.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import YAML from 'yaml';
import { EXAMPLE_POLICY } from '../../src/config.js';
import { validPrincipal } from '../../src/core/cert-options.js';
import { LONGEST_GRANT, parseDuration } from '../../src/core/duration.js';
import { parsePolicy, PolicyError } from '../../src/core/policy.js';
import { check, fc, hostileText } from '../helpers/fuzz.js';
import { ROOT } from '../helpers/process.js';

const EXAMPLE = readFileSync(EXAMPLE_POLICY, 'utf8');

/** The policy, or its problems; anything but a PolicyError fails the test. */
function outcome(text: string): { ok: true } | { ok: false; problems: string[] } {
  try {
    parsePolicy(text);
    return { ok: true };
  } catch (e) {
    assert.ok(e instanceof PolicyError, `not a PolicyError for ${JSON.stringify(text.slice(0, 300))}: ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(e.problems.length > 0);
    for (const p of e.problems) assert.match(p, /^[^\n]+: [^\n]+$/, 'each problem is one line, "path: message"');
    return { ok: false, problems: e.problems };
  }
}

const role = (principals: string[]) => ({
  roles: { web: { principals, requesters: ['group:eng'], approval: { approvers: ['group:leads'], required: 1 } } },
});

test('any text, any YAML document, and the example damaged give a policy or a PolicyError', () => {
  check('random text', fc.oneof(hostileText, fc.string({ unit: 'binary', maxLength: 500 })), (t) => void outcome(t), 600);
  check('random YAML', fc.anything({ maxDepth: 6 }).map((v) => YAML.stringify(v) ?? ''), (t) => void outcome(t), 500);
  check('YAML shaped like a policy', fc.record({ defaults: fc.dictionary(fc.constantFrom('max_duration', 'request_ttl', 'clock_skew', 'min_reason_length', 'x'), fc.anything({ maxDepth: 2 })), roles: fc.dictionary(fc.string({ maxLength: 12 }), fc.dictionary(fc.constantFrom('principals', 'requesters', 'max_duration', 'default_duration', 'approval', 'auto_approve', 'break_glass', 'certificate', 'require_ticket', 'description'), fc.anything({ maxDepth: 3 })), { maxKeys: 3 }) }, { requiredKeys: [] }).map((v) => YAML.stringify(v)), (t) => void outcome(t), 500);
  const edits = fc.array(fc.tuple(fc.nat({ max: EXAMPLE.length }), fc.string({ unit: 'binary', maxLength: 6 }), fc.integer({ min: 0, max: 8 })), { minLength: 1, maxLength: 5 });
  check('damaged example', edits, (es) => void outcome(es.reduce((t, [at, s, drop]) => t.slice(0, at) + s + t.slice(at + drop), EXAMPLE)), 600);
});

test('a principal is accepted exactly when sshd reads it as one plain login name, and refused with its path otherwise', () => {
  const principal = fc.oneof(
    hostileText,
    fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', '.', '-', '@', '+', ',', '*', '?', '!', ' ', '\n', '\0', '\t', '\x7f', 'é', '\u200b'), maxLength: 12 }),
    fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,300}$/),
  );
  check('principal', fc.tuple(principal, fc.nat({ max: 2 })), ([p, at]) => {
    const list = ['deploy', 'ops', 'www'];
    list[at] = p;
    const text = YAML.stringify(role(list));
    if (YAML.parse(text).roles.web.principals[at] !== p) return; // not representable in YAML (a lone surrogate)
    const got = outcome(text);
    const unique = new Set(list).size === list.length;
    if (validPrincipal(p) && unique) assert.deepEqual(got, { ok: true }, JSON.stringify(p));
    if (!validPrincipal(p)) {
      assert.equal(got.ok, false, `accepted the principal ${JSON.stringify(p)}`);
      assert.ok(!got.ok && got.problems.some((x) => x.startsWith(`roles.web.principals[${at}]: principal `)), JSON.stringify(got));
    }
  }, 1500);
});

test('durations in a policy: accepted up to a year and a day, refused beyond with their path', () => {
  const text = (d: string) => YAML.stringify({ defaults: { max_duration: d, request_ttl: d }, roles: role(['deploy']).roles });
  check('duration', fc.oneof(hostileText, fc.stringMatching(/^(\d{1,12}d)?(\d{1,12}h)?(\d{1,12}m)?(\d{1,12}s)?$/)), (d) => {
    const got = outcome(text(d));
    const seconds = parseDuration(d);
    if (seconds !== null && seconds <= LONGEST_GRANT && seconds >= 3600) assert.deepEqual(got, { ok: true }, d);
    if (seconds === null || seconds > LONGEST_GRANT) {
      assert.ok(!got.ok && got.problems.some((p) => p.startsWith('defaults.max_duration: ')) && got.problems.some((p) => p.startsWith('defaults.request_ttl: ')), JSON.stringify([d, got]));
    }
  }, 500);
  assert.deepEqual(outcome(text('366d')), { ok: true });
  assert.deepEqual(outcome(text('367d')), { ok: false, problems: ['defaults.max_duration: must be at most 366d', 'defaults.request_ttl: must be at most 366d'] });
  assert.deepEqual(outcome(text('99999999999d')), { ok: false, problems: ['defaults.max_duration: must be at most 366d', 'defaults.request_ttl: must be at most 366d'] });
});

test('regression: aliases to nothing and alias bombs are PolicyErrors, not ReferenceErrors', () => {
  assert.deepEqual(outcome('roles: *nothing\n'), { ok: false, problems: ['YAML: Unresolved alias (the anchor must be set before the alias): nothing'] });
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`), 'roles: *h'].join('\n');
  const got = outcome(bomb);
  assert.ok(!got.ok && /^YAML: Excessive alias count/.test(got.problems[0]!), JSON.stringify(got));
  // A few aliases, as people write them, still work.
  assert.deepEqual(outcome('x-eng: &eng [group:eng]\nroles:\n  web:\n    principals: [deploy]\n    requesters: *eng\n    approval: {approvers: *eng, required: 1}\n'), { ok: false, problems: ['(top level): Unrecognized key: "x-eng"'] });
});

test('regression: deeply nested YAML is refused before the parser recurses; a second parse after it still works', () => {
  // yaml's composer recurses per level: a few thousand levels overflowed the stack, and the next
  // parse in the same process then aborted V8 ("RegExpCompiler Allocation failed"): a policy reload
  // could kill the server. Run in a child process, so a regression fails this test and not the runner.
  const script = `
    import { parsePolicy } from './src/core/policy.ts';
    const out = [];
    for (const text of ['['.repeat(5000), '['.repeat(5000) + ']'.repeat(5000), '{a: '.repeat(3000) + '1' + '}'.repeat(3000), '- '.repeat(5000) + 'x', Array.from({ length: 100 }, (_, i) => ' '.repeat(i) + 'k:').join('\\n')]) {
      try { parsePolicy(text); out.push('accepted'); } catch (e) { out.push(e.name + ': ' + e.message); }
    }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr.slice(0, 2000));
  assert.deepEqual(JSON.parse(r.stdout), Array(5).fill('PolicyError: YAML: nested more than 32 levels deep'));
  assert.deepEqual(outcome(`roles:\n  web:\n    principals: ${'['.repeat(30)}deploy${']'.repeat(30)}\n`).ok, false, 'nesting within the bound is parsed and judged');
  assert.ok(outcome('x'.repeat(1024 * 1024 + 1)).ok === false);
});
