import { describe, expect, it } from 'vitest';
import { loadReplyCorpus } from '../../fixtures/replies/corpus.mjs';
import { extractReplyText } from '../../../src/parse/reply-text.js';

/**
 * Corpus cases the extractor gets wrong, with the reason. Their expectations
 * stay what the customer wrote; `npm run bench:replies` counts them. A case
 * that starts passing fails here until it leaves this list.
 */
const KNOWN_MISSES: Record<string, string> = {
  'en-hard-inline-outlook':
    'answers typed into the unquoted history below an Outlook header block look exactly like that history (loses new text)',
  'html-hard-outlook-inline-answers':
    'the same in HTML: only the font colour marks the answers below the Outlook header box (loses new text)',
  'en-hard-pasted-headers-with-date':
    'a pasted From/Date/To/Subject list is an Outlook header block to us (loses new text)',
  'en-hard-pasted-history':
    'history pasted below the reply without attribution, rule or ">" has nothing to find (keeps quoted text)',
  'en-hard-sent-from-sentence':
    'a last line "Sent from my office PC, …" reads as a mobile sign-off (loses new text)',
  'tr-hard-outlook': 'Turkish Outlook field names (Kimden/Gönderildi/Kime/Konu) are not in our lists (keeps quoted text)',
};

const corpus = loadReplyCorpus();

describe('reply corpus', () => {
  it('has the cases the brief asks for', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(80);
    expect(corpus.filter((c) => c.text === null).length).toBeGreaterThanOrEqual(15);
    for (const shape of ['top-post', 'bottom-post', 'interleaved', 'forward', 'no-quote', 'signature']) {
      expect(corpus.some((c) => c.shape === shape)).toBe(true);
    }
    for (const name of Object.keys(KNOWN_MISSES)) expect(corpus.map((c) => c.name)).toContain(name);
  });

  for (const c of corpus) {
    const reason = KNOWN_MISSES[c.name];
    it(reason === undefined ? c.name : `${c.name} — known miss: ${reason}`, () => {
      const r = extractReplyText({ text: c.text, html: c.html });
      expect(r.ok).toBe(true);
      expect(r.source).toBe(c.text !== null ? 'text' : 'html');
      if (c.text !== null) expect(r.replyText.length).toBeLessThanOrEqual(c.text.length);
      if (reason === undefined) expect(r.replyText).toBe(c.expected);
      else expect(r.replyText).not.toBe(c.expected);
    });
  }

  it('scores at least 95 % exactly right', () => {
    const right = corpus.filter((c) => extractReplyText({ text: c.text, html: c.html }).replyText === c.expected).length;
    expect(right / corpus.length).toBeGreaterThanOrEqual(0.95);
  });
});
