/**
 * npm run fuzz — mutation fuzzing of the parse path.
 *
 * 20,000 mutants (`mutate(seed, n)`) of the hostile corpus' well-formed
 * seeds go through the same adapter as the corpus test (`parseCase` in
 * test/fixtures/hostile/parse-case.ts). Prints the count of each outcome and
 * the 10 slowest mutants with their seeds; fails (exit code 1) when any
 * mutant ends other than as a valid payload or PARSE_FAILED: another
 * exception, a parse that had not settled by its deadline, or a payload
 * that breaks the contract (payloadInvariants).
 *
 * Environment:
 *   FUZZ_ITERATIONS=20000   how many mutants
 *   FUZZ_SEED=1             first mutation seed (mutant i uses FUZZ_SEED + i)
 *   FUZZ_DEADLINE_MS=10000  a parse still pending after this is 'timeout'
 *   FUZZ_REPRO=gen-digest:1234  run one mutant and print its bytes (JSON string) and result
 *   FUZZ_CORPUS=full|test   instead: run the whole corpus at that scale (full = the sizes of the issue) and report every case against its spec
 *   FUZZ_CASES=html/        with FUZZ_CORPUS: only the cases whose name matches this regular expression
 *   FUZZ_CASE_DEADLINE_MS=120000  with FUZZ_CORPUS: a heavy case runs in its own process, killed after this
 *
 * A parse that blocks the event loop cannot be interrupted in-process, so in
 * the corpus mode every heavy case runs in a child process (this file again,
 * FUZZ_CHILD=1, one case) in its own process group, killed at its deadline.
 *
 * Runs under vitest (see test/fixtures/hostile/fuzz.config.ts for why).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { hostileCorpus } from '../test/fixtures/hostile/corpus.js';
import { payloadInvariants } from '../test/fixtures/hostile/checks.js';
import { judge, type Verdict } from '../test/fixtures/hostile/judge.js';
import { mutate, mutationPlan } from '../test/fixtures/hostile/mutate.js';
import { outcomeOf, parseWithDeadline } from '../test/fixtures/hostile/parse-case.js';
import { wellFormedSeeds } from '../test/fixtures/hostile/seeds.js';
import type { HostileCase, Scale } from '../test/fixtures/hostile/types.js';

const env = process.env;
const ITERATIONS = Number(env.FUZZ_ITERATIONS ?? 20_000);
const FIRST_SEED = Number(env.FUZZ_SEED ?? 1);
const DEADLINE_MS = Number(env.FUZZ_DEADLINE_MS ?? 10_000);
const REPRO = env.FUZZ_REPRO;
const CORPUS = env.FUZZ_CORPUS as Scale | undefined;
const CASE_FILTER = env.FUZZ_CASES ? new RegExp(env.FUZZ_CASES) : undefined;
const CASE_DEADLINE_MS = Number(env.FUZZ_CASE_DEADLINE_MS ?? 120_000);
const CHILD = env.FUZZ_CHILD === '1';
const VERDICT = 'FUZZ_VERDICT ';

const out = (line = '') => process.stdout.write(`${line}\n`);

interface Run {
  seed: string;
  mutationSeed: number;
  outcome: string;
  ms: number;
  bytes: number;
  detail?: string;
}

async function runMutant(seedName: string, raw: Buffer, mutationSeed: number): Promise<Run> {
  const mutant = mutate(raw, mutationSeed);
  const { result, ms } = await parseWithDeadline(mutant, {}, DEADLINE_MS);
  let outcome: string = outcomeOf(result);
  let detail: string | undefined;
  if (result !== 'timeout' && result.kind === 'received') {
    const broken = payloadInvariants(result.payload, mutant);
    if (broken) {
      outcome = 'invalid_payload';
      detail = broken;
    }
  } else if (result !== 'timeout' && outcome !== 'parse_failed') {
    detail = String((result.error as Error)?.message ?? result.error).slice(0, 200);
  }
  return { seed: seedName, mutationSeed, outcome, ms, bytes: mutant.length, ...(detail ? { detail } : {}) };
}

const ok = (outcome: string) => outcome === 'received' || outcome === 'parse_failed';
const pad = (s: string | number, n: number) => String(s).padEnd(n);

it.runIf(REPRO !== undefined)('fuzz: reproduce one mutant', async () => {
  const [name, n] = (REPRO ?? '').split(':');
  const seed = wellFormedSeeds().find((s) => s.name === name);
  if (!seed || n === undefined) throw new Error(`FUZZ_REPRO=<seed>:<mutation seed>; seeds: ${wellFormedSeeds().map((s) => s.name).join(', ')}`);
  const mutationSeed = Number(n);
  const run = await runMutant(seed.name, seed.build(), mutationSeed);
  out(`mutations: ${mutationPlan(mutationSeed).join(', ')}`);
  out(`bytes: ${JSON.stringify(mutate(seed.build(), mutationSeed).toString('latin1'))}`);
  out(`outcome: ${run.outcome} in ${run.ms.toFixed(1)} ms${run.detail ? ` (${run.detail})` : ''}`);
});

it.runIf(REPRO === undefined && CORPUS === undefined)(`fuzz: ${ITERATIONS} mutants of the well-formed seeds`, async () => {
  const seeds = wellFormedSeeds().map((s) => ({ name: s.name, raw: s.build() }));
  const counts = new Map<string, number>();
  const slowest: Run[] = [];
  const bad: Run[] = [];
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = seeds[i % seeds.length]!;
    const run = await runMutant(seed.name, seed.raw, (FIRST_SEED + i) >>> 0);
    counts.set(run.outcome, (counts.get(run.outcome) ?? 0) + 1);
    if (!ok(run.outcome)) bad.push(run);
    slowest.push(run);
    if (slowest.length > 10) {
      slowest.sort((a, b) => b.ms - a.ms);
      slowest.length = 10;
    }
  }
  slowest.sort((a, b) => b.ms - a.ms);
  const seconds = (performance.now() - started) / 1000;
  out(`\nfuzz: ${ITERATIONS} mutants of ${seeds.length} seeds (seeds ${FIRST_SEED}…${FIRST_SEED + ITERATIONS - 1}) in ${seconds.toFixed(1)} s`);
  out('\noutcome            count');
  for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) out(`${pad(k, 18)} ${v}`);
  out('\n10 slowest (reproduce with FUZZ_REPRO=<seed>:<mutation seed>)');
  out(`${pad('ms', 9)}${pad('outcome', 14)}${pad('bytes', 9)}${pad('seed:mutation seed', 34)}mutations`);
  for (const r of slowest) out(`${pad(r.ms.toFixed(1), 9)}${pad(r.outcome, 14)}${pad(r.bytes, 9)}${pad(`${r.seed}:${r.mutationSeed}`, 34)}${mutationPlan(r.mutationSeed).join(',')}`);
  if (bad.length > 0) {
    out(`\n${bad.length} mutants ended other than received / PARSE_FAILED (first 20):`);
    for (const r of bad.slice(0, 20)) out(`  ${r.outcome} ${r.seed}:${r.mutationSeed} ${r.detail ?? ''}`);
  }
  expect(bad.map((r) => `${r.outcome} ${r.seed}:${r.mutationSeed}`)).toEqual([]);
});

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function judgeHere(c: HostileCase): Promise<Verdict> {
  try {
    return await judge(c, { budgetMs: Number.POSITIVE_INFINITY, deadlineMs: CASE_DEADLINE_MS });
  } catch (err) {
    // a bug of the corpus itself (or of a check), not of the parse path: report it, go on
    return { outcome: 'crash:corpus', ms: 0, problems: [`the case itself threw: ${(err as Error).message}`] };
  }
}

/** Runs one case in a child process (its own process group), killed after CASE_DEADLINE_MS. */
function judgeInChild(c: HostileCase, scale: Scale): Promise<Verdict> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [`${ROOT}node_modules/vitest/vitest.mjs`, 'run', '--config', 'test/fixtures/hostile/fuzz.config.ts'], {
      cwd: ROOT,
      env: { ...process.env, FUZZ_CORPUS: scale, FUZZ_CASES: `^${escapeRe(c.name)}$`, FUZZ_CHILD: '1' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.resume();
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      // the whole group: vitest forks a worker, and that worker is the one burning the CPU
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, CASE_DEADLINE_MS);
    child.on('close', () => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(VERDICT));
      if (line) return resolve(JSON.parse(line.slice(VERDICT.length)) as Verdict);
      const ms = performance.now() - started;
      resolve(killed ? { outcome: 'timeout', ms, problems: [`still parsing after ${CASE_DEADLINE_MS} ms: killed`] } : { outcome: 'crash:process', ms, problems: ['the child process died without a verdict (out of memory?)'] });
    });
  });
}

it.runIf(REPRO === undefined && CORPUS !== undefined && CHILD)('fuzz: one corpus case (child)', async () => {
  for (const c of hostileCorpus({ scale: CORPUS ?? 'full' }).filter((x) => !CASE_FILTER || CASE_FILTER.test(x.name))) out(`${VERDICT}${JSON.stringify(await judgeHere(c))}`);
});

it.runIf(REPRO === undefined && CORPUS !== undefined && !CHILD)(`fuzz: the ${CORPUS ?? 'full'} corpus against its spec`, async () => {
  const scale = CORPUS ?? 'full';
  const cases = hostileCorpus({ scale }).filter((c) => !CASE_FILTER || CASE_FILTER.test(c.name));
  const counts = new Map<string, number>();
  const failing: string[] = [];
  const timings: { name: string; ms: number; outcome: string }[] = [];
  out(`\ncorpus: ${cases.length} cases at scale ${scale}; heavy ones in a child process, killed after ${CASE_DEADLINE_MS} ms`);
  for (const c of cases) {
    const v = c.heavy && scale === 'full' ? await judgeInChild(c, scale) : await judgeHere(c);
    counts.set(v.outcome, (counts.get(v.outcome) ?? 0) + 1);
    timings.push({ name: c.name, ms: v.ms, outcome: v.outcome });
    if (c.heavy) out(`${pad(c.name, 50)} ${pad(v.outcome, 22)} ${v.ms.toFixed(0).padStart(7)} ms ${v.problems.length ? `✗ ${v.problems.join(' | ').slice(0, 240)}` : '✓'}`);
    if (v.problems.length > 0) failing.push(`${c.name}: ${v.problems.join(' | ')}`);
  }
  out('\noutcome            count');
  for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) out(`${pad(k, 18)} ${v}`);
  out('\n10 slowest');
  for (const t of timings.sort((a, b) => b.ms - a.ms).slice(0, 10)) out(`${t.ms.toFixed(0).padStart(7)} ms  ${pad(t.outcome, 22)} ${t.name}`);
  out(`\n${failing.length} of ${cases.length} cases do not meet their spec${failing.length ? ':' : ''}`);
  for (const f of failing) out(`  ${f.slice(0, 300)}`);
  // Only hard failures fail the run here; spec mismatches are the corpus test's job.
  const hard = timings.filter((t) => !ok(t.outcome)).map((t) => `${t.outcome} ${t.name}`);
  expect(hard).toEqual([]);
});
