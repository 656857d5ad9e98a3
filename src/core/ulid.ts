// ULIDs (ulid/spec): 48 bits of milliseconds then 80 random bits, written in
// Crockford base32, 26 characters that sort by time. The encoding is pure;
// the random part is the caller's (services/ids.ts draws it).

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID's shape: 26 Crockford base32 characters. */
export const ID_FORM = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** `value` as `length` Crockford base32 characters, most significant first (higher bits dropped). */
function base32(value: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[Number(value % 32n)] + out;
    value /= 32n;
  }
  return out;
}

/** The ULID of time `at` with the random part `random` (80 bits; higher bits are dropped). */
export function encodeUlid(at: Date, random: bigint): string {
  return base32(BigInt(Math.max(0, Math.floor(at.getTime()))), 10) + base32(random, 16);
}

/** The smallest ULID of time `at`: every id made at or after `at` sorts at or above it. */
export function ulidFloor(at: Date): string {
  return encodeUlid(at, 0n);
}
