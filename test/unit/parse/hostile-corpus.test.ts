/**
 * The hostile corpus as a spec for the parse path: every light case must
 * end as a `message.received` payload or a PARSE_FAILED MailgateError
 * (never another exception, never a hang), within a time budget, with what
 * the case expects. Many of these fail on the main-thread parser of today
 * (CR-only line endings, >1,000 parts, unreadable dates …); they describe
 * what the fixed parse path must do.
 *
 * THE FUNCTION UNDER TEST is `parseCase` in test/fixtures/hostile/parse-case.ts
 * (one adapter, shared with `npm run fuzz`): point it at the new parse path
 * there and both this file and the fuzzer follow.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hostileCorpus } from '../../fixtures/hostile/corpus.js';
import { MailgateError } from '../../../src/errors.js';
import { loadFixture } from '../../fixtures/eml/index.js';
import { judge } from '../../fixtures/hostile/judge.js';
import { applyMutation, mutate, mutationPlan, MUTATION_NAMES } from '../../fixtures/hostile/mutate.js';
import { failureReason, outcomeOf, parseCase } from '../../fixtures/hostile/parse-case.js';
import { wellFormedSeeds } from '../../fixtures/hostile/seeds.js';
import type { Category, HostileCase } from '../../fixtures/hostile/types.js';

/**
 * No wall-clock budget in a test (the machine is shared; speed belongs to
 * bench:hostile and npm run fuzz): only a parse that never settles fails.
 */
const CASE_BUDGET_MS = Number.POSITIVE_INFINITY;
/** A parse still pending after this has stalled (no CPU involved: a promise that never settles). */
const CASE_DEADLINE_MS = 4_000;
/** vitest's own bound, for a parse that blocks the event loop past the deadline. */
const CASE_TIMEOUT_MS = 15_000;

const CASES = hostileCorpus({ scale: 'test' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hostile corpus: the generator', () => {
  it('has at least 300 light cases with unique names, in every category', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(300);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    const categories = new Set(CASES.map((c) => c.category));
    for (const c of ['truncation', 'boundaries', 'nesting', 'headers', 'nul', 'transfer-encoding', 'charset', 'parts', 'html', 'large-body', 'line-endings', 'degenerate', 'mutant'] satisfies Category[]) {
      expect(categories).toContain(c);
    }
  });

  it('builds the same bytes every time', () => {
    const again = hostileCorpus({ scale: 'test' });
    for (const [i, c] of CASES.entries()) expect(sha(c.build()), c.name).toBe(sha(again[i]!.build()));
  });

  it('builds what the names say (spot checks)', () => {
    const get = (name: string) => {
      const c = CASES.find((x) => x.name === name);
      if (!c) throw new Error(`no case ${name}`);
      return c.build();
    };
    for (const c of CASES.filter((x) => x.name.endsWith('-cr-only'))) expect(c.build().includes(0x0a), c.name).toBe(false);
    for (const c of CASES.filter((x) => x.name.endsWith('-lf-only'))) expect(c.build().includes(0x0d), c.name).toBe(false);
    for (const c of CASES.filter((x) => x.name.endsWith('-cr-cr-lf'))) expect(c.build().toString('latin1').replace(/\r\r\n/g, ''), c.name).not.toMatch(/[\r\n]/);
    for (const c of CASES.filter((x) => x.category === 'truncation')) expect(c.build().length, c.name).toBe(Number(/-at-(\d+)$/.exec(c.name)?.[1]));
    expect(get('boundaries/trailing-whitespace').toString('latin1')).toContain('\r\n--b  \t \r\n');
    expect(get('parts/digest-1500').toString('latin1').split('Content-Type: message/rfc822').length - 1).toBe(1500);
    expect(get('headers/many-fields').toString('latin1').split('\r\nX-Filler-').length - 1).toBe(2000);
    expect(get('degenerate/empty').length).toBe(0);
  });

  it('lists the same cases at full scale, plus more cut offsets and mutants (names only; nothing is built)', () => {
    const full = hostileCorpus({ scale: 'full' });
    const names = new Set(full.map((c) => c.name));
    for (const c of CASES.filter((x) => x.category !== 'truncation')) expect(names, c.name).toContain(c.name);
    expect(full.length).toBeGreaterThan(CASES.length);
  });
});

describe('hostile corpus: mutate()', () => {
  const seeds = wellFormedSeeds().map((s) => s.build());

  it('is deterministic per seed and differs between seeds', () => {
    for (const [i, raw] of seeds.entries()) {
      const outs = new Set<string>();
      for (let seed = 0; seed < 40; seed++) {
        const a = mutate(raw, seed * 7919 + i);
        expect(sha(a)).toBe(sha(mutate(raw, seed * 7919 + i)));
        outs.add(sha(a));
      }
      expect(outs.size, `40 seeds of seed message ${i} gave ${outs.size} different mutants`).toBeGreaterThan(30);
    }
  });

  it('uses every mutation and keeps the result bounded', () => {
    const used = new Set<string>();
    for (let seed = 0; seed < 500; seed++) mutationPlan(seed).forEach((m) => used.add(m));
    expect([...used].sort()).toEqual([...MUTATION_NAMES].sort());
    for (const name of MUTATION_NAMES) {
      for (const [i, raw] of seeds.entries()) {
        const out = applyMutation(name, raw, i);
        expect(out.length, name).toBeLessThanOrEqual(raw.length * 4 + 64 * 1024);
      }
    }
    const changed = MUTATION_NAMES.filter((name) => seeds.some((raw, i) => !applyMutation(name, raw, i + 1).equals(raw)));
    expect(changed.sort()).toEqual([...MUTATION_NAMES].sort());
  });
});

describe('hostile corpus: the adapter', () => {
  it('tells PARSE_FAILED from any other exception and from a parse that never settles', () => {
    expect(outcomeOf({ kind: 'failed', error: new MailgateError('PARSE_FAILED', 'x') })).toBe('parse_failed');
    expect(outcomeOf({ kind: 'failed', error: new RangeError('Invalid string length') })).toBe('crash:RangeError');
    expect(outcomeOf({ kind: 'failed', error: new MailgateError('INTERNAL', 'x') })).toBe('crash:MailgateError(INTERNAL)');
    expect(outcomeOf({ kind: 'failed', error: 'a string' })).toBe('crash:string');
    expect(outcomeOf('timeout')).toBe('timeout');
    expect(failureReason(new MailgateError('PARSE_FAILED', 'x', { details: { reason: 'too_large' } }))).toBe('too_large');
  });

  it('returns the webhook body as the receiver parses it', async () => {
    const r = await parseCase(loadFixture('plain'));
    expect(r.kind).toBe('received');
    if (r.kind === 'received') expect(r.payload).toMatchObject({ event: 'message.received', subject: 'Printer on fire', from: { address: 'ann@example.com' } });
  });
});

const byCategory = new Map<Category, HostileCase[]>();
for (const c of CASES) byCategory.set(c.category, [...(byCategory.get(c.category) ?? []), c]);

for (const [category, cases] of byCategory) {
  describe(`hostile corpus: ${category}`, () => {
    for (const c of cases) {
      it(
        c.name,
        async () => {
          const { problems } = await judge(c, { budgetMs: CASE_BUDGET_MS, deadlineMs: CASE_DEADLINE_MS });
          // one readable line per problem, then why the case exists
          if (problems.length > 0) expect.fail([...problems, ...(c.note ? [`(case: ${c.note})`] : [])].join('\n'));
        },
        CASE_TIMEOUT_MS,
      );
    }
  });
}
