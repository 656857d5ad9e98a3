import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeUlid, ID_FORM, ulidFloor } from '../../src/core/ulid.js';
import { newId } from '../../src/services/ids.js';

test('ok: a ULID is its time in 10 Crockford base32 characters, then 16 of randomness', () => {
  // The time part of the specification's example (ulid/spec: 01ARYZ6S41...).
  assert.equal(encodeUlid(new Date(1469918176385), 0n), '01ARYZ6S41' + '0'.repeat(16));
  assert.equal(encodeUlid(new Date(0), (1n << 80n) - 1n), '0'.repeat(10) + 'Z'.repeat(16));
  assert.equal(ulidFloor(new Date(1469918176385)), '01ARYZ6S410000000000000000');
});

test('ok: new ids have the ULID form, sort by time, and a time bound is a range of ids', () => {
  const at = new Date('2026-11-22T15:40:01.123Z');
  const ids = [newId(new Date(at.getTime() - 1)), newId(at), newId(new Date(at.getTime() + 1))];
  for (const id of ids) assert.match(id, ID_FORM);
  assert.deepEqual([...ids].sort(), ids);
  assert.ok(ids[0]! < ulidFloor(at) && ulidFloor(at) <= ids[1]! && ids[1]! < ulidFloor(new Date(at.getTime() + 1)));
  assert.notEqual(newId(at), newId(at), 'the random part differs');
});
