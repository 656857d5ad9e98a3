// Property-based tests of bad input (fast-check): a bounded number of runs so
// the suite stays fast, a seed that is printed on failure and can be replayed,
// and the generators of hostile text the fuzz tests share.
//
//   FUZZ_SEED=1234 node --import tsx --test test/http/fuzz.test.ts   # replay a failure
//   FUZZ_RUNS=10 npm test                                              # ten times the runs

import fc from 'fast-check';

export { fc };

const SCALE = Number(process.env['FUZZ_RUNS'] ?? 1) || 1;
/** One seed per test process: every property in a file replays together. */
export const FUZZ_SEED = process.env['FUZZ_SEED'] !== undefined ? Number(process.env['FUZZ_SEED']) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;

function failure(e: unknown, label: string): Error {
  const report = e instanceof Error ? e.message : String(e);
  return new Error(`${label}: property failed; replay with FUZZ_SEED=${FUZZ_SEED}\n${report}`, { cause: e });
}

/** Checks a synchronous property `runs` times (times FUZZ_RUNS). */
export function check<T>(label: string, arb: fc.Arbitrary<T>, predicate: (value: T) => boolean | void, runs: number): void {
  try {
    fc.assert(fc.property(arb, predicate), { seed: FUZZ_SEED, numRuns: Math.ceil(runs * SCALE) });
  } catch (e) {
    throw failure(e, label);
  }
}

/** Checks an asynchronous property `runs` times (times FUZZ_RUNS, unless `scale` is false). */
export async function checkAsync<T>(label: string, arb: fc.Arbitrary<T>, predicate: (value: T) => Promise<boolean | void>, runs: number, { scale = true } = {}): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arb, predicate), { seed: FUZZ_SEED, numRuns: Math.ceil(runs * (scale ? SCALE : 1)) });
  } catch (e) {
    throw failure(e, label);
  }
}

/** Flips one bit of a copy of `b`. */
export function flipBit(b: Buffer, bit: number): Buffer {
  const out = Buffer.from(b);
  const i = Math.floor(bit / 8) % out.length;
  out[i] = out[i]! ^ (1 << (bit % 8));
  return out;
}

/** A valid buffer cut short, bit-flipped, or with bytes spliced in: what a damaged copy-paste looks like. */
export function damaged(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.nat({ max: valid.length - 1 }).map((n) => valid.subarray(0, n)),
    fc.nat({ max: valid.length * 8 - 1 }).map((bit) => flipBit(valid, bit)),
    fc.tuple(fc.nat({ max: valid.length * 8 - 1 }), fc.nat({ max: valid.length * 8 - 1 })).map(([a, b]) => flipBit(flipBit(valid, a), b)),
    fc.tuple(fc.nat({ max: valid.length }), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([at, bytes]) => Buffer.concat([valid.subarray(0, at), Buffer.from(bytes), valid.subarray(at)])),
    fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 16 })).map(([at, n]) => Buffer.concat([valid.subarray(0, at), valid.subarray(at + n)])),
  );
}

/** Text an attacker would try: control characters and NUL, lone surrogates, RTL overrides, huge, empty, look-alike numbers. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('\0', '\n', '\r', '\t', '\x1b', '\u202e', '\ud800', '\udfff', '\ufeff', ',', '*', '?', '%', '/', '\\', '"', "'", '<', '>', '&', ' ', 'a'), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\0', 'null', 'undefined', 'true', '[]', '{}', 'NaN', '-1', '0', '1e400', '0x10', '9223372036854775807', '9223372036854775808', '18446744073709551616', '99999999999999999999', '-9223372036854775809', '../..', '%00', '%ff', '$(id)', "' or 1=1 --", '<script>alert(1)</script>', '__proto__', 'constructor') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String) },
);

/** Any JSON value, as text, biased to the odd ones: deep nesting, huge numbers, long strings. */
export const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.json(),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.constantFrom('', ' ', '\0', 'null', 'true', '1', '-0', '1e999', '"x"', '[]', '{', '{"a":1', '{"a":1}}', '{"a":1,}', "{'a':1}", '\ufeff{}', '{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"polluted":1}}}'),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

/** A percent-encoded path segment or query value, now and then with raw or broken escapes (%FF, a lone %, %C3%28). */
export const hostileUriComponent: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: hostileText.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%%', '%0', '%zz', '%00', '%FF', '%C3%28', '%E2%82', '%F0%9F%92', '%ED%A0%80', '%C0%AF', '%25', '%2e%2e', '..', '.', '%2F', '%5C', '%u0041') },
);
