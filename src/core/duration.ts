// Durations as people write them: 90s, 15m, 2h, 1h30m, 1d. Whole seconds.

const UNIT: Record<string, number> = { d: 86_400, h: 3_600, m: 60, s: 1 };
const FORM = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * The longest grant, extension or request time to live anyone may ask for or a
 * policy may name: a year and a day. Just-in-time access is counted in hours;
 * the bound keeps every end time one a date (and the database) can hold.
 */
export const LONGEST_GRANT = 366 * 86_400;

/** Parses a duration into seconds; returns null for anything else (including "" and "0s"). */
export function parseDuration(text: string): number | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 32) return null;
  const m = FORM.exec(text);
  if (!m) return null;
  const [, d, h, mi, s] = m;
  const total = Number(d ?? 0) * UNIT['d']! + Number(h ?? 0) * UNIT['h']! + Number(mi ?? 0) * UNIT['m']! + Number(s ?? 0);
  return total > 0 && Number.isSafeInteger(total) ? total : null;
}

/** Formats seconds the same way, largest units first: 5400 → "1h30m". */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  let rest = Math.floor(seconds);
  let out = '';
  for (const [unit, size] of Object.entries(UNIT)) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
