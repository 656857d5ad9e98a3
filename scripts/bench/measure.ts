// Timing helpers shared by the benchmarks: throughput and latency
// percentiles of an operation run from N concurrent loops for a while.

export interface Result {
  name: string;
  concurrency: number;
  ops: number;
  perSecond: number;
  p50ms: number;
  p95ms: number;
  p99ms: number;
  errors?: number;
  /** Anything else worth keeping with the row (RSS, rows in the log, ...). */
  extra?: Record<string, number | string>;
}

export function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}

export function summarize(name: string, concurrency: number, latencies: number[], seconds: number, extra?: Result['extra']): Result {
  const lat = [...latencies].sort((a, b) => a - b);
  return { name, concurrency, ops: lat.length, perSecond: lat.length / seconds, p50ms: quantile(lat, 0.5), p95ms: quantile(lat, 0.95), p99ms: quantile(lat, 0.99), ...(extra ? { extra } : {}) };
}

/** Runs `op` from `concurrency` loops for `seconds` (after `warmup` seconds not counted). */
export async function measure(name: string, concurrency: number, op: () => unknown, seconds: number, warmup = 0): Promise<Result> {
  if (warmup > 0) await loops(concurrency, op, warmup);
  const start = performance.now();
  const lat = await loops(concurrency, op, seconds);
  const r = summarize(name, concurrency, lat, (performance.now() - start) / 1000);
  process.stderr.write(`  ${name} c=${concurrency}: ${r.perSecond.toFixed(0)}/s p99 ${r.p99ms.toFixed(2)} ms\n`);
  return r;
}

async function loops(concurrency: number, op: () => unknown, seconds: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op();
        lat.push(performance.now() - t);
      }
    }),
  );
  return lat;
}

/** Times `op` `n` times one after another. */
export async function repeat(name: string, n: number, op: () => unknown): Promise<Result> {
  const lat: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op();
    lat.push(performance.now() - t);
  }
  const r = summarize(name, 1, lat, (performance.now() - start) / 1000);
  process.stderr.write(`  ${name}: p50 ${r.p50ms.toFixed(1)} ms p99 ${r.p99ms.toFixed(1)} ms\n`);
  return r;
}
