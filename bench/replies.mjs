// Accuracy and cost of extractReplyText on the reply corpus (test/fixtures/replies/),
// plus 1 MB messages. Usage: npm run bench:replies [-- iterations]
//
// With `npm install --no-save planer email-reply-parser@1 jsdom@26 linkedom` it
// also scores those libraries on the same corpus (the evaluation in
// src/parse/reply-text.ts); without them it says they were skipped.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { extractReplyText } from '../dist/parse/reply-text.js';
import { loadReplyCorpus } from '../test/fixtures/replies/corpus.mjs';

const iterations = Number(process.argv[2] ?? 10);
const require = createRequire(import.meta.url);
const corpus = loadReplyCorpus();
const out = [];
const say = (line = '') => out.push(line);

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x) => `${x.toFixed(3)} ms`;

/** Line sets, to tell "kept history" from "lost new text" (a miss can be both). */
function nonBlankLines(s) {
  return new Set(s.split('\n').map((l) => l.trim()).filter((l) => l !== ''));
}
/** For libraries whose output differs from ours only in blank lines and line ends. */
function normalize(s) {
  return s.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd()).join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

function score(name, run, { normalized = false } = {}) {
  let exact = 0;
  let keepsQuoted = 0;
  let losesNew = 0;
  let failed = 0;
  const misses = [];
  const times = [];
  for (const c of corpus) {
    let got;
    try {
      const t0 = performance.now();
      got = run(c);
      times.push(performance.now() - t0);
    } catch (err) {
      failed++;
      misses.push(`${c.name} (threw: ${String(err.message ?? err).slice(0, 60)})`);
      continue;
    }
    const want = normalized ? normalize(c.expected) : c.expected;
    const have = normalized ? normalize(got) : got;
    if (have === want) {
      exact++;
      continue;
    }
    const w = nonBlankLines(want);
    const h = nonBlankLines(have);
    const kept = [...h].some((l) => !w.has(l));
    const lost = [...w].some((l) => !h.has(l));
    if (kept) keepsQuoted++;
    if (lost) losesNew++;
    misses.push(`${c.name} (${[kept && 'keeps quoted text', lost && 'loses new text'].filter(Boolean).join(', ') || 'whitespace'})`);
  }
  const n = corpus.length;
  say(`${name}${normalized ? ' (compared after whitespace normalisation)' : ''}`);
  say(`  exactly right      ${exact}/${n} = ${((100 * exact) / n).toFixed(1)} %`);
  say(`  keeps quoted text  ${keepsQuoted}`);
  say(`  loses new text     ${losesNew}`);
  if (failed) say(`  threw              ${failed}`);
  if (times.length) say(`  first-call time    mean ${ms(mean(times))}, p99 ${ms(percentile(times, 99))}`);
  // Warm: the whole corpus a few more times, each call timed.
  const warm = [];
  for (let k = 0; k < iterations; k++) {
    for (const c of corpus) {
      const t0 = performance.now();
      try {
        run(c);
      } catch {
        continue;
      }
      warm.push(performance.now() - t0);
    }
  }
  if (warm.length) say(`  warm time          mean ${ms(mean(warm))}, p99 ${ms(percentile(warm, 99))} (${warm.length} calls)`);
  for (const m of misses) say(`    miss: ${m}`);
  say();
}

// --- mailgate ---------------------------------------------------------------
say(`# bench:replies — ${new Date().toISOString()} — node ${process.version} — ${corpus.length} corpus messages — load average ${loadavg()[0].toFixed(1)}`);
say();
const shapes = {};
for (const c of corpus) shapes[c.shape] = (shapes[c.shape] ?? 0) + 1;
say(`corpus: ${Object.entries(shapes).map(([k, v]) => `${k} ${v}`).join(', ')}; ${corpus.filter((c) => c.text === null).length} HTML-only`);
say();
score('mailgate extractReplyText', (c) => extractReplyText({ text: c.text, html: c.html }).replyText);

// --- 1 MB messages ------------------------------------------------------------
const MB = 1024 * 1024;
const fill = (unit) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
const reply = 'Thanks, that fixed it.\n\nJane\n\n';
const big = {
  '1 MB top-posted over a quoted thread': {
    text: reply + 'On Tue, Mar 5, 2024 at 9:14 AM Acme Support <support@acme.test> wrote:\n\n' + fill('> an earlier message in a long thread, quoted once more\n'),
    html: null,
  },
  '1 MB top-posted over an Outlook header block': {
    text: reply + 'From: Acme Support <support@acme.test>\nSent: Tuesday, March 5, 2024 9:14 AM\nTo: Jane <jane@example.com>\nSubject: RE: thread\n\n' + fill('an earlier message in a long thread, not quoted\n'),
    html: null,
  },
  '1 MB HTML-only, Gmail quote': {
    text: null,
    html: '<div dir="ltr">Thanks, that fixed it.</div><div class="gmail_quote"><blockquote class="gmail_quote">' + fill('<div>an earlier message in a long thread</div>') + '</blockquote></div>',
  },
  '1 MB HTML-only, new text below 1 MB of markup': {
    text: null,
    html: fill('<div>an earlier message in a long thread</div>') + '<div>new text</div>',
  },
  '1 MB without any marker': { text: fill('a line of the customer\u2019s own text, no history anywhere\n'), html: null },
  '1 MB single line': { text: 'x'.repeat(MB), html: null },
  '5 MB of ">" lines': { text: '> quoted\n'.repeat((5 * MB) / 9), html: null },
};
for (const [name, input] of Object.entries(big)) {
  for (let i = 0; i < 3; i++) extractReplyText(input);
  const times = [];
  let r;
  for (let i = 0; i < Math.max(10, iterations); i++) {
    const t0 = performance.now();
    r = extractReplyText(input);
    times.push(performance.now() - t0);
  }
  say(`${name}: mean ${ms(mean(times))}, median ${ms(percentile(times, 50))}, max ${ms(Math.max(...times))} → ok ${r.ok}${r.reason ? ` (${r.reason})` : ''}, ${r.replyText.length} chars, truncatedAt ${r.truncatedAt}`);
}
say();

// --- the libraries we evaluated -----------------------------------------------
function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}
const planer = optional('planer');
const EmailReplyParser = optional('email-reply-parser');
const jsdom = optional('jsdom');
const linkedom = optional('linkedom');
const htmlToText = optional('html-to-text')?.htmlToText;
// HTML-only messages reach a text-only library as mailparser would give them: html-to-text's rendering.
const asText = (c) => c.text ?? htmlToText(c.html, { limits: { maxDepth: 1000 } });
if (!htmlToText) say('html-to-text missing (it comes with mailparser): library comparison skipped');
else {
  if (planer && jsdom) {
    const { document } = new jsdom.JSDOM('').window;
    score('planer 1.2 + jsdom (text: extractFromPlain; HTML-only: extractFromHtml, then html-to-text)', (c) =>
      c.text !== null ? planer.extractFromPlain(c.text) : htmlToText(planer.extractFromHtml(c.html, document), { limits: { maxDepth: 1000 } }),
      { normalized: true },
    );
  } else say('planer or jsdom not installed: skipped (npm install --no-save planer jsdom@26)');
  if (planer && linkedom) {
    const { document } = linkedom.parseHTML('<html><body></body></html>');
    score('planer 1.2 + linkedom', (c) =>
      c.text !== null ? planer.extractFromPlain(c.text) : htmlToText(planer.extractFromHtml(c.html, document), { limits: { maxDepth: 1000 } }),
      { normalized: true },
    );
  }
  if (planer) score('planer 1.2, text only (HTML-only messages as html-to-text renders them)', (c) => planer.extractFromPlain(asText(c)), { normalized: true });
  if (EmailReplyParser) {
    const parser = new EmailReplyParser();
    score('email-reply-parser 1.x (HTML-only messages as html-to-text renders them)', (c) => parser.parseReply(asText(c)), { normalized: true });
  } else say('email-reply-parser not installed: skipped (npm install --no-save email-reply-parser@1)');
  // One line built to make backtracking patterns slow ("On x,x,x,…", "On a a a …"), 16 KB.
  const nasty = { commas: `On ${'x,'.repeat(8000)}\n`, spaces: `On ${'a '.repeat(8000)}\n` };
  const timeOne = (name, fn) => {
    for (const [kind, t] of Object.entries(nasty)) {
      const t0 = performance.now();
      fn(t);
      say(`pathological 16 KB line (${kind}): ${name} ${ms(performance.now() - t0)}`);
    }
  };
  timeOne('mailgate', (t) => extractReplyText({ text: t, html: null }));
  if (planer) timeOne('planer', (t) => planer.extractFromPlain(t));
  if (EmailReplyParser) timeOne('email-reply-parser 1.x (no re2)', (t) => new EmailReplyParser().parseReply(t));
  say();
  score('mailgate extractReplyText, HTML-only messages as html-to-text renders them', (c) => extractReplyText({ text: asText(c), html: null }).replyText, { normalized: true });
}

const text = out.join('\n');
console.log(text);
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'replies.txt'), text + '\n');
