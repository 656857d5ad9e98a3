// Background jobs outlive outages: a failing run is retried at the next tick,
// runs never overlap, and the log says once that a job fails and once that it
// recovered.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { every } from '../../src/services/periodic.js';
import type { Logger } from '../../src/log.js';

function recordingLogger() {
  const lines: Array<{ level: string; msg: string }> = [];
  const at = (level: string) => (msg: string) => void lines.push({ level, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

async function until(check: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('ok: a job failing for a while is retried each tick and resumes; one warning, one recovery line', async () => {
  const { logger, lines } = recordingLogger();
  let calls = 0;
  let down = true;
  const job = every('sealing', 10, async () => {
    calls++;
    if (down) throw new Error('Connection terminated unexpectedly');
  }, logger);
  try {
    await until(() => calls >= 5, 'five failing runs');
    down = false;
    await until(() => lines.some((l) => l.msg === 'sealing resumed'), 'recovery logged');
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1, 'one warning for the whole outage');
    assert.equal(lines.filter((l) => l.level === 'info' && l.msg === 'sealing resumed').length, 1);
  } finally {
    await job.stop();
  }
});

test('ok: a run that hangs is not queued behind; stop() waits for it', async () => {
  const { logger } = recordingLogger();
  let running = 0;
  let maxRunning = 0;
  let starts = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const job = every('hung', 5, async () => {
    starts++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    await gate;
    running--;
  }, logger);
  await until(() => starts === 1, 'the first run');
  // Many ticks pass while the run hangs.
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(starts, 1, 'no run starts while one hangs');
  let stopped = false;
  const stopping = job.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(stopped, false, 'stop waits for the run in progress');
  release();
  await stopping;
  assert.equal(maxRunning, 1);
});
