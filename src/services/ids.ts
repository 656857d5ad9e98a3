import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32
 * (26 characters, e.g. 01JD3M...). Sorts by creation time, unguessable, and
 * needs no coordination between instances.
 */
export function newId(now: Date = new Date()): string {
  let time = BigInt(now.getTime());
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[Number(time % 32n)] + out;
    time /= 32n;
  }
  let rand = BigInt('0x' + randomBytes(10).toString('hex'));
  let tail = '';
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[Number(rand % 32n)] + tail;
    rand /= 32n;
  }
  return out + tail;
}

export const ID_FORM = /^[0-9A-HJKMNP-TV-Z]{26}$/;
