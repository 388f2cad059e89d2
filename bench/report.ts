import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Prints a benchmark report and keeps a copy under bench/results/ (git-ignored). */
export function report(name: string, lines: string[]): void {
  const text = [`# ${name} — ${new Date().toISOString()} — node ${process.version}`, ...lines].join('\n');
  console.log(`\n${text}\n`);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.txt`), text + '\n');
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

export function peakRssMb(pid: number): number {
  // VmHWM: the process's peak resident set size.
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}
