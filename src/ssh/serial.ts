import { randomBytes } from 'node:crypto';

// Serials are random so that several CA instances need no coordination; the
// database's primary key makes them unique. The range [2, 2^63) keeps them
// revocable (0 cannot be listed in a KRL by serial), distinct from sshpk's
// default of 1, and exact in PostgreSQL's signed bigint.
export const MIN_SERIAL = 2n;
export const MAX_SERIAL = (1n << 63n) - 1n;

const UINT64_MAX = (1n << 64n) - 1n;

/**
 * A serial as a user writes it (decimal, unsigned 64-bit, as sshd logs it):
 * `stored` when it can be one of ours, `never` when it is a valid serial this
 * CA cannot have issued (2^63 and above: no bigint column holds it, so it must
 * not reach a query), `null` when it is no serial at all.
 */
export function parseSerial(text: string): { kind: 'stored'; value: string } | { kind: 'never' } | null {
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > UINT64_MAX) return null;
  const n = BigInt(text);
  return n <= MAX_SERIAL ? { kind: 'stored', value: n.toString() } : { kind: 'never' };
}

export function randomSerial(): bigint {
  for (;;) {
    const n = randomBytes(8).readBigUInt64BE(0) & MAX_SERIAL;
    if (n >= MIN_SERIAL) return n;
  }
}
