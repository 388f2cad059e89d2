/** Durations and sizes as admins write them in YAML. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Binary units: the contract says 10MB means 10 × 1,048,576 bytes. */
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** `500ms`, `60s`, `5m`, `1h`, `1d`; a bare number means seconds. Returns ms or an error message. */
export function parseDuration(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : 'expected a non-negative duration';
  }
  if (typeof value !== 'string') return `expected a duration like 60s or 5m, got ${typeOf(value)}`;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(value);
  if (!m?.[1] || !m[2]) return `invalid duration "${value}" (use e.g. 500ms, 60s, 5m, 1h, 1d)`;
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2].toLowerCase()] ?? 1));
}

/** `512KB`, `10MB`, `1GB`, `100B`; a bare number means bytes. Returns bytes or an error message. */
export function parseSize(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 ? value : 'expected a whole number of bytes';
  }
  if (typeof value !== 'string') return `expected a size like 10MB, got ${typeOf(value)}`;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(value);
  if (!m?.[1]) return `invalid size "${value}" (use e.g. 512KB, 10MB, 1GB)`;
  const unit = (m[2] ?? 'b').toLowerCase().replace('ib', 'b');
  return Math.floor(Number(m[1]) * (SIZE_UNITS[unit] ?? 1));
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}
