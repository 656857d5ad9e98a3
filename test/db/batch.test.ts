import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchedLookup, batchedWriter } from '../../src/db/batch.js';

test('ok: lookups made in one turn of the event loop share one call; each gets its own answer', async () => {
  const calls: string[][] = [];
  const find = batchedLookup(async (keys: string[]) => {
    calls.push(keys);
    return new Map(keys.filter((k) => k !== 'missing').map((k) => [k, k.toUpperCase()]));
  });
  const answers = await Promise.all(['a', 'b', 'a', 'missing'].map(find));
  assert.deepEqual(answers, ['A', 'B', 'A', undefined]);
  assert.deepEqual(calls, [['a', 'b', 'missing']]);
  assert.equal(await find('c'), 'C');
  assert.equal(calls.length, 2, 'a later lookup runs a statement of its own: nothing is cached');
});

test('fail: a failed lookup fails every request of its batch, and only those', async () => {
  let fail = true;
  const find = batchedLookup(async (keys: string[]) => {
    if (fail) throw new Error('database down');
    return new Map(keys.map((k) => [k, 1]));
  });
  const results = await Promise.allSettled([find('a'), find('b')]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  fail = false;
  assert.equal(await find('a'), 1);
});

test('ok: writes wait for the statement holding them; a failed group is retried one by one so only the bad item fails', async () => {
  const committed: number[] = [];
  const statements: number[][] = [];
  const write = batchedWriter(async (items: number[]) => {
    statements.push(items);
    await new Promise((r) => setTimeout(r, 5));
    if (items.includes(13)) throw Object.assign(new Error('duplicate key'), { code: '23505' });
    committed.push(...items);
  }, { concurrency: 1 });
  const results = await Promise.allSettled([1, 2, 13, 4].map(write));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.equal((results[2] as PromiseRejectedResult).reason.code, '23505');
  assert.deepEqual(committed.sort(), [1, 2, 4]);
  assert.deepEqual(statements[0], [1, 2, 13, 4], 'the first statement held the whole group');
  // Every resolved write was committed before it resolved.
  let done = false;
  const p = write(7).then(() => (done = committed.includes(7)));
  await p;
  assert.equal(done, true);
});

test('ok: with a statement in flight, later writes group into the next one', async () => {
  const statements: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const write = batchedWriter(async (items: number[]) => {
    statements.push(items);
    if (statements.length === 1) await gate;
  }, { concurrency: 1 });
  const first = write(1);
  await new Promise((r) => setImmediate(r));
  const rest = [2, 3, 4].map(write);
  await new Promise((r) => setTimeout(r, 5));
  release();
  await Promise.all([first, ...rest]);
  assert.deepEqual(statements, [[1], [2, 3, 4]]);
});

test('fail: a group that fails for want of the database fails every item at once, none written alone (its commit is unknown)', async () => {
  const statements: number[][] = [];
  const write = batchedWriter(async (items: number[]) => {
    statements.push(items);
    throw new Error('Connection terminated unexpectedly');
  }, { concurrency: 1 });
  const results = await Promise.allSettled([1, 2, 3].map(write));
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  assert.deepEqual(statements, [[1, 2, 3]], 'no item is retried alone: with the connection lost during its commit, a retry could only confuse');
});
