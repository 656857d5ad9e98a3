import { randomBytes } from 'node:crypto';

// Serials are random so that several CA instances need no coordination; the
// database's primary key makes them unique. The range [2, 2^63) keeps them
// revocable (0 cannot be listed in a KRL by serial), distinct from sshpk's
// default of 1, and exact in PostgreSQL's signed bigint.
export const MIN_SERIAL = 2n;
export const MAX_SERIAL = (1n << 63n) - 1n;

export function randomSerial(): bigint {
  for (;;) {
    const n = randomBytes(8).readBigUInt64BE(0) & MAX_SERIAL;
    if (n >= MIN_SERIAL) return n;
  }
}
