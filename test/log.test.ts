// Log lines: one JSON object each, bigints (certificate serials) as decimal text.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';

test('ok: a line is one JSON object with time, level, message and the fields; bigints are decimal text, nested too', () => {
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));
  log.info('http', { status: 200, path: '/healthz' });
  log.warn('issued', { serial: 18446744073709551615n, nested: { serials: [2n, 3n] } });
  log.debug('not at info');
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  const [a, b] = lines.map((l) => JSON.parse(l));
  assert.deepEqual({ level: a.level, msg: a.msg, status: a.status, path: a.path }, { level: 'info', msg: 'http', status: 200, path: '/healthz' });
  assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual({ level: b.level, serial: b.serial, nested: b.nested }, { level: 'warn', serial: '18446744073709551615', nested: { serials: ['2', '3'] } });
});
