import { describe, expect, it } from 'vitest';
import {
  extractReplyText,
  REPLY_HTML_SCAN_CHARS,
  REPLY_TEXT_SCAN_CHARS,
} from '../../../src/parse/reply-text.js';
import { MAX_HTML_DEPTH } from '../../../src/parse/reply/html-lines.js';
import { attributionStrength, isSeparator, isSignOff, MAX_CANDIDATE_CHARS } from '../../../src/parse/reply/patterns.js';

const MB = 1024 * 1024;
// The size bounds are what these tests check, so the clock must not decide
// first on a loaded machine: a generous budget (the time budget has its own test).
const NO_CLOCK = { timeBudgetMs: 60_000 };
const text = (t: string) => extractReplyText({ text: t, html: null }, NO_CLOCK);
const html = (h: string) => extractReplyText({ text: null, html: h }, NO_CLOCK);

describe('extractReplyText', () => {
  it('returns an empty reply for a message without body', () => {
    expect(extractReplyText({ text: null, html: null })).toEqual({ replyText: '', truncatedAt: null, ok: true, source: null });
  });

  it('uses the text part when there is one, the HTML only without it', () => {
    const h = '<div>from html</div><div class="gmail_quote">old</div>';
    expect(extractReplyText({ text: 'from text', html: h })).toMatchObject({ replyText: 'from text', source: 'text' });
    expect(extractReplyText({ text: null, html: h })).toMatchObject({ replyText: 'from html', source: 'html', truncatedAt: 'quote' });
  });

  it('reads the HTML instead of a text that was rendered from it, never returning more than that text', () => {
    const h = '<div>new</div><div id="divRplyFwdMsg"><b>Von:</b> x</div><div>old</div>';
    const rendered = 'new\n\nVon: x\n\nold';
    expect(extractReplyText({ text: rendered, html: h, textFromHtml: true })).toMatchObject({ replyText: 'new', source: 'html', ok: true });
    const short = 'x';
    expect(extractReplyText({ text: short, html: '<div>much longer than the text</div>', textFromHtml: true })).toMatchObject({
      replyText: 'x',
      source: 'text',
    });
    const deep = '<div>'.repeat(MAX_HTML_DEPTH + 1);
    expect(extractReplyText({ text: 'rendered\n\n> q\n> q\n> q', html: deep, textFromHtml: true })).toMatchObject({
      replyText: 'rendered',
      source: 'text',
      ok: true,
    });
  });

  it('says what the new text ended at', () => {
    expect(text('hi').truncatedAt).toBeNull();
    expect(text('hi\n\n-- \nJane\n\nOn Tue, Mar 5, 2024 at 9:14 AM A <a@example.com> wrote:\n> x').truncatedAt).toBe('signature');
    expect(text('hi\n\nOn Tue, Mar 5, 2024 at 9:14 AM A <a@example.com> wrote:\n> x').truncatedAt).toBe('quote');
    expect(text('hi\n\nSent from my iPhone').truncatedAt).toBe('signature');
  });

  it('keeps the lines it keeps as written, drops trailing blanks, joins with \\n', () => {
    expect(text('  indented  \r\nsecond\r\n\r\n\r\n\r\nthird\r\n').replyText).toBe('  indented\nsecond\n\nthird');
  });

  it('ends the text at a bare "--" delimiter too (clients strip the blank of "-- ")', () => {
    expect(text('fix it please\n--\nJane').replyText).toBe('fix it please');
  });

  it('removes a sign-off only as the last line', () => {
    expect(text('Sent from my iPhone\nthe rest of my text').replyText).toBe('Sent from my iPhone\nthe rest of my text');
  });

  it('keeps an attribution that has nothing quoted under it and no date', () => {
    expect(text('Peter wrote:\nall good').replyText).toBe('Peter wrote:\nall good');
  });
});

describe('extractReplyText bounds (each must return promptly; the assertions are on what it returns)', () => {
  it('gives up with ok:false and the text unchanged when the time budget is spent', () => {
    const t = 'hello\n\nOn Tue, Mar 5, 2024 at 9:14 AM A <a@example.com> wrote:\n> x';
    expect(extractReplyText({ text: t, html: null }, { timeBudgetMs: 0 })).toMatchObject({
      replyText: t,
      ok: false,
      reason: 'time_budget',
      truncatedAt: null,
    });
  });

  it('5 MB of ">" lines: over the size bound, text unchanged', () => {
    const t = '> quoted line\n'.repeat((5 * MB) / 14);
    const r = text(t);
    expect(r).toMatchObject({ ok: false, reason: 'too_large' });
    expect(r.replyText).toBe(t);
  });

  it('a 1 MB single line: over the size bound', () => {
    const t = 'x'.repeat(MB);
    expect(text(t)).toMatchObject({ ok: false, reason: 'too_large', replyText: t });
  });

  it('100,000 "On" lines: over the size bound; fewer within the window are plain text', () => {
    expect(text('On\n'.repeat(100_000))).toMatchObject({ ok: false, reason: 'too_large' });
    const within = 'On\n'.repeat(5_000);
    expect(within.length).toBeLessThan(REPLY_TEXT_SCAN_CHARS);
    expect(text(within)).toMatchObject({ ok: true, replyText: within.trimEnd() });
  });

  it('100,000 lines that each open an attribution and never close one', () => {
    const t = 'On Tue, Mar 5, 2024 at 9:14 AM Someone <someone@example.com>\n'.repeat(100_000);
    expect(text(t)).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('a top-posted reply above history longer than the window still ends where the history starts', () => {
    const history = '> an old message, quoted\n'.repeat((2 * MB) / 25);
    const r = text(`My answer.\n\nOn Tue, Mar 5, 2024 at 9:14 AM A <a@example.com> wrote:\n${history}`);
    expect(r).toMatchObject({ ok: true, replyText: 'My answer.', truncatedAt: 'quote' });
    const outlook = 'old text\n'.repeat(MB / 9);
    expect(text(`Yes.\n\nFrom: A <a@example.com>\nSent: Tuesday\nTo: B\nSubject: x\n\n${outlook}`)).toMatchObject({ ok: true, replyText: 'Yes.' });
  });

  it('new text that runs past the window without any marker: over the size bound', () => {
    expect(text('my own words\n'.repeat(MB / 13))).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('never treats a line longer than MAX_CANDIDATE_CHARS as an attribution, separator or sign-off', () => {
    const long = `On Tue, Mar 5, 2024 ${'a'.repeat(MAX_CANDIDATE_CHARS)} wrote:`;
    expect(attributionStrength(long)).toBeNull();
    expect(isSeparator(`-----Original Message${'-'.repeat(MAX_CANDIDATE_CHARS)}`)).toBe(false);
    expect(isSignOff(`Sent from my ${'x'.repeat(300)}`)).toBe(false);
    expect(text(`reply\n${long}\n> q\n> q\n> q`).replyText).toBe(`reply\n${long}`);
  });

  it('inputs built to make backtracking regexes explode come back with the right answer', () => {
    // Shapes that are exponential or quadratic for the patterns of other extractors
    // (".*,.*wrote", "(.*\n){0,2}", "\s.+\s.+\n?wrote", "[\s\S]+?写道").
    const cases: [string, string][] = [
      [`On ${', '.repeat(250)}x`, `On ${', '.repeat(250)}x`.trimEnd()],
      [`On ${'1 '.repeat(280)}wrote`, `On ${'1 '.repeat(280)}wrote`.trimEnd()],
      [`${'On 1\n'.repeat(2000)}`, `${'On 1\n'.repeat(2000)}`.trimEnd()],
      [`在${' 2024'.repeat(100)}写`, `在${' 2024'.repeat(100)}写`],
      [`From: ${'x '.repeat(280)}\n`.repeat(200), `From: ${'x '.repeat(280)}\n`.repeat(200).replace(/ +\n/g, '\n').trimEnd()],
      ['-'.repeat(100_000), '-'.repeat(100_000)],
      [' '.repeat(100_000) + 'x', ' '.repeat(100_000) + 'x'],
      [`${'> '.repeat(20_000)}\n`.repeat(3) + 'reply', 'reply'],
    ];
    for (const [input, expected] of cases) expect(text(input)).toMatchObject({ ok: true, replyText: expected });
  });

  it('HTML: over the window without a cut → ok:false; with a cut inside the window → ok', () => {
    const filler = '<div>old message</div>'.repeat(Math.ceil(REPLY_HTML_SCAN_CHARS / 22) + 10);
    expect(html(`${filler}<div>new</div>`)).toMatchObject({ ok: false, reason: 'too_large', replyText: '' });
    expect(html(`<div>new</div><div id="divRplyFwdMsg">From: x</div>${filler}`)).toMatchObject({ ok: true, replyText: 'new' });
    expect(html(`<div>new</div><blockquote type="cite">${filler}</blockquote>`)).toMatchObject({ ok: true, replyText: 'new' });
  });

  it('HTML: deeper nesting than MAX_HTML_DEPTH is refused', () => {
    expect(html('<div>'.repeat(MAX_HTML_DEPTH + 1) + 'x')).toMatchObject({ ok: false, reason: 'too_deep' });
    expect(html('<div>'.repeat(MAX_HTML_DEPTH - 1) + 'x')).toMatchObject({ ok: true, replyText: 'x' });
  });

  it('HTML: malformed markup of every kind', () => {
    expect(html('<'.repeat(MB))).toMatchObject({ ok: false, reason: 'too_large' });
    expect(html('<'.repeat(1000) + ' x')).toMatchObject({ ok: true, replyText: `${'<'.repeat(1000)} x` });
    expect(html(`hello<a title="${'x'.repeat(MB)}`)).toMatchObject({ ok: false, reason: 'too_large' });
    expect(html(`hello<a title="${'x'.repeat(1000)}`)).toMatchObject({ ok: true, replyText: 'hello' });
    expect(html(`hello<!--${'x'.repeat(1000)}`)).toMatchObject({ ok: true, replyText: 'hello' });
    expect(html(`hello<style>${'x{}'.repeat(1000)}`)).toMatchObject({ ok: true, replyText: 'hello' });
    expect(html('hello<blockquote type="cite">never closed<div>x')).toMatchObject({ ok: true, replyText: 'hello' });
    expect(html('a</div></div></p>b')).toMatchObject({ ok: true, replyText: 'ab' });
    expect(html('&#0;&#xD800;&#99999999;&bogus;&amp')).toMatchObject({ ok: true, replyText: '\ufffd\ufffd\ufffd&bogus;&' });
  });

  it('never throws and never grows the text, whatever the mix of markers', () => {
    const pieces = [
      '>', '> ', 'On Tue, Mar 5, 2024 at 9:14 AM A <a@example.com>', 'wrote:', '\n', '\n\n', '-- ', '--', 'From: A', 'Sent: Tue',
      'To: B', 'Subject: x', '-----Original Message-----', 'Sent from my iPhone', 'text', ':', '<div class="gmail_quote">',
      '</div>', '<blockquote type="cite">', '</blockquote>', '<br>', '<p class=MsoNormal>', '&nbsp;', '<', '"', 'schrieb', '写道：',
    ];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let k = 0; k < 500; k++) {
      let s = '';
      for (let j = rand(60); j > 0; j--) s += pieces[rand(pieces.length)];
      const asText = text(s);
      expect(asText.ok).toBe(true);
      expect(asText.replyText.length).toBeLessThanOrEqual(s.length);
      expect(html(s).ok).toBe(true);
    }
  });
});
