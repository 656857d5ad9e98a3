// Log lines: one JSON object each, bigints (certificate serials) as decimal text.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bufferedStdout, createLogger } from '../src/log.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

test('ok: buffered lines reach the output together, within moments, at once past 64 KiB, all of them, in order', async () => {
  const writes: string[] = [];
  const line = bufferedStdout((text) => writes.push(text));
  for (let i = 0; i < 100; i++) line(`${i}\n`);
  assert.equal(writes.length, 0, 'nothing written synchronously');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(writes.length, 1, 'one write for the hundred lines');
  assert.equal(writes[0], Array.from({ length: 100 }, (_, i) => `${i}\n`).join(''));
  const big = 'x'.repeat(1023) + '\n';
  for (let i = 0; i < 64; i++) line(big);
  assert.equal(writes.length, 2, 'written as soon as 64 KiB wait');
  assert.equal(writes[1]!.length, 64 * 1024);
});

test('ok: what is buffered when the process exits is written, an exit on an uncaught error too', () => {
  for (const end of ['process.exit(3)', "setImmediate(() => { throw new Error('boom'); })"]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import('./src/log.ts').then(({ createLogger }) => { const log = createLogger('info'); log.info('first'); log.info('last'); ${end}; })`], { cwd: ROOT, encoding: 'utf8' });
    assert.notEqual(r.status, 0, end);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).msg), ['first', 'last'], end);
  }
});
