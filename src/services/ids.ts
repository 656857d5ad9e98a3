import { randomBytes } from 'node:crypto';
import { encodeUlid } from '../core/ulid.js';

export { ID_FORM } from '../core/ulid.js';

/**
 * A new ULID (core/ulid.ts): sorts by creation time, unguessable (80 random
 * bits), and needs no coordination between instances.
 */
export function newId(now: Date = new Date()): string {
  return encodeUlid(now, BigInt('0x' + randomBytes(10).toString('hex')));
}
