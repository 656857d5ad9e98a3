import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

test('ok: durations in the documented forms (90s, 15m, 2h, 1h30m) parse to seconds and format back', () => {
  const cases: Array<[string, number]> = [['90s', 90], ['15m', 900], ['2h', 7200], ['1h30m', 5400], ['1d', 86400], ['1d2h3m4s', 93784]];
  for (const [text, secs] of cases) {
    assert.equal(parseDuration(text), secs, text);
    assert.equal(parseDuration(formatDuration(secs)), secs);
  }
  assert.equal(formatDuration(5400), '1h30m');
});

test('fail: anything else is not a duration', () => {
  for (const bad of ['', '0s', '0h0m', '2', 'h', '1.5h', '-1h', '30m1h', '1 h', '2H', '1h1h', '9'.repeat(40) + 's', ' 1h']) {
    assert.equal(parseDuration(bad), null, JSON.stringify(bad));
  }
});
