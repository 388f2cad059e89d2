import { BudgetExceeded, type LineMark, type MarkedLines } from './lines.js';
import { decodeEntities } from './entities.js';

/**
 * Reads an HTML body into text lines, in one forward pass without building
 * a DOM, and marks where the quote containers of mail clients were:
 *
 * - quote (content dropped, text after it kept, as in an interleaved reply):
 *   Gmail `.gmail_quote`, `<blockquote type="cite">` (Apple Mail,
 *   Thunderbird, Roundcube), Thunderbird `.moz-cite-prefix`, Yahoo
 *   `.yahoo_quoted`, Proton `.protonmail_quote`, Zoho `.zmail_extra`;
 * - cut (everything from here on is history): Outlook's `#appendonsend`,
 *   `#divRplyFwdMsg`, `#mail-editor-reference-message-container`,
 *   `.ms-outlook-mobile-reference-message`, `#OLK_SRC_BODY_SECTION`, the
 *   `border-top:solid #E1E1E1` header box of Word-made HTML, Zimbra's
 *   `hr#zwchr`, Hotmail's `hr#stopSpelling`;
 * - signature: Gmail `.gmail_signature`, Thunderbird `.moz-signature`,
 *   Proton `.protonmail_signature_block`, Outlook mobile's
 *   `#ms-outlook-mobile-signature`.
 *
 * Work is linear in the scanned window: every character is visited a
 * bounded number of times, the open-element stack is capped, and the scan
 * stops at a cut.
 */

/** Deeper nesting is refused (mailparser refuses it too); it also caps the close-tag search. */
export const MAX_HTML_DEPTH = 512;
/** How often (in tags) the clock is read. */
const CLOCK_EVERY = 512;

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr']);
const RAW_TEXT = new Set(['script', 'style', 'title', 'textarea', 'xml', 'noscript', 'template']);
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'center', 'dd', 'div', 'dl', 'dt', 'fieldset', 'figure', 'footer', 'form',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table', 'tbody',
  'thead', 'tfoot', 'tr', 'ul', 'body', 'html',
]);

const QUOTE_CLASSES = ['gmail_quote', 'moz-cite-prefix', 'yahoo_quoted', 'protonmail_quote', 'zmail_extra', 'gmail_extra_quote'];
const CUT_IDS = ['appendonsend', 'divrplyfwdmsg', 'mail-editor-reference-message-container', 'olk_src_body_section', 'zwchr', 'stopspelling'];
const CUT_CLASSES = ['ms-outlook-mobile-reference-message', 'outlookmessageheader'];
const SIGNATURE_CLASSES = ['gmail_signature', 'moz-signature', 'protonmail_signature_block'];
const SIGNATURE_IDS = ['ms-outlook-mobile-signature'];

/** The attributes containerRole reads; the others are skipped unread. */
interface Attrs {
  id: string;
  class: string;
  style: string;
  type: string;
}

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
  attrs: Attrs;
  end: number;
}

export interface HtmlReadOptions {
  /** Only this many characters of the HTML are read. */
  maxChars: number;
  overBudget: () => boolean;
}

/** Thrown when the markup is nested deeper than MAX_HTML_DEPTH. */
export class HtmlTooDeep extends Error {
  constructor() {
    super(`HTML nested deeper than ${MAX_HTML_DEPTH} levels`);
  }
}

export function htmlToMarkedLines(body: string, opts: HtmlReadOptions): MarkedLines {
  // Only the window is ever searched, so no indexOf or regex runs past it.
  const html = body.length > opts.maxChars ? body.slice(0, opts.maxChars) : body;
  const limit = html.length;
  const out = new LineBuilder();
  const stack: string[] = [];
  /** Stack depth of the container whose content we skip, or -1. */
  let skipDepth = -1;
  let pre = 0;
  let tags = 0;
  let p = 0;
  let cutReached = false;

  while (p < limit) {
    // Text runs to the next "<" that can open a tag or comment; any other "<" is text.
    let lt = html.indexOf('<', p);
    while (lt !== -1 && !opensMarkup(html.charCodeAt(lt + 1))) lt = html.indexOf('<', lt + 1);
    const textEnd = lt === -1 ? limit : lt;
    if (textEnd > p) {
      if (skipDepth === -1) out.text(decodeEntities(html.slice(p, textEnd)), pre > 0);
      p = textEnd;
      continue;
    }
    // html[p] === '<'
    if (++tags % CLOCK_EVERY === 0 && opts.overBudget()) throw new BudgetExceeded();
    if (html.startsWith('<!--', p)) {
      const close = html.indexOf('-->', p + 4);
      p = close === -1 ? limit : close + 3;
      continue;
    }
    const next = html.charCodeAt(p + 1);
    if (next === 0x21 /* ! */ || next === 0x3f /* ? */) {
      const close = html.indexOf('>', p + 2);
      p = close === -1 ? limit : close + 1;
      continue;
    }
    // Inside a skipped container only the element names matter.
    const tag = readTag(html, p, limit, skipDepth === -1);
    if (tag === 'unterminated') break; // no ">" follows: no later tag can end either
    if (!tag) {
      // A "<" that opens no tag is text.
      if (skipDepth === -1) out.text('<', pre > 0);
      p++;
      continue;
    }
    p = tag.end;
    if (tag.closing) {
      const at = stack.lastIndexOf(tag.name);
      if (at === -1) continue;
      stack.length = at;
      if (skipDepth !== -1 && stack.length < skipDepth) skipDepth = -1;
      if (skipDepth === -1) {
        if (tag.name === 'pre' && pre > 0) pre--;
        if (tag.name === 'p') out.paragraphEnd();
        else if (BLOCK.has(tag.name)) out.blockEdge();
      }
      continue;
    }
    if (RAW_TEXT.has(tag.name) && !tag.selfClosing) {
      p = skipRawText(html, p, limit, tag.name);
      continue;
    }
    if (skipDepth !== -1) {
      if (!VOID.has(tag.name) && !tag.selfClosing) pushOpen(stack, tag.name);
      continue;
    }
    const role = containerRole(tag);
    if (role === 'cut') {
      out.mark('cut');
      cutReached = true;
      break;
    }
    if (VOID.has(tag.name) || tag.selfClosing) {
      if (tag.name === 'br') out.lineBreak();
      else if (tag.name === 'hr') out.blockEdge();
      continue;
    }
    // Unclosed <p> and <li> close when the next one opens (HTML's implied end tags).
    if ((tag.name === 'p' || tag.name === 'li') && stack[stack.length - 1] === tag.name) {
      stack.pop();
      if (tag.name === 'p') out.paragraphEnd();
    }
    pushOpen(stack, tag.name);
    if (role) {
      out.mark(role);
      skipDepth = stack.length;
      continue;
    }
    if (tag.name === 'pre') pre++;
    if (tag.name === 'p') out.paragraphStart(isWordParagraph(tag));
    else if (BLOCK.has(tag.name)) out.blockEdge();
    if (tag.name === 'li') out.text('- ', true);
    else if (tag.name === 'td' || tag.name === 'th') out.cellStart();
  }
  return { ...out.finish(), complete: cutReached || limit === body.length };
}

function pushOpen(stack: string[], name: string): void {
  if (stack.length >= MAX_HTML_DEPTH) throw new HtmlTooDeep();
  stack.push(name);
}

function containerRole(tag: Tag): LineMark | null {
  const id = tag.attrs.id.toLowerCase();
  const cls = tag.attrs.class.toLowerCase();
  const classes = cls === '' ? [] : cls.split(/\s+/);
  if (id !== '' && CUT_IDS.some((c) => id === c || id.endsWith(`_${c}`))) return 'cut';
  if (classes.some((c) => CUT_CLASSES.includes(c))) return 'cut';
  if (tag.name === 'div') {
    const style = tag.attrs.style.toLowerCase().replace(/\s+/g, '');
    // Word-made HTML (Outlook desktop, Outlook for Mac) boxes the header block this way.
    if (style.includes('border-top:solid#e1e1e1') || style.includes('border-top:solid#b5c4df')) return 'cut';
  }
  if (classes.some((c) => SIGNATURE_CLASSES.includes(c)) || SIGNATURE_IDS.includes(id)) return 'signature';
  if (classes.some((c) => QUOTE_CLASSES.includes(c)) || id.startsWith('yahoo_quoted')) return 'quote';
  if (tag.name === 'blockquote') {
    // Gmail's "indent" button also makes a blockquote (margin, no border): that is the sender's text.
    const style = tag.attrs.style.toLowerCase();
    if (tag.attrs.type.toLowerCase() === 'cite' || style.includes('border-left') || classes.length > 0) return 'quote';
  }
  return null;
}

/** Word's paragraphs (class MsoNormal) are lines, not paragraphs: Outlook writes blank lines as empty ones. */
function isWordParagraph(tag: Tag): boolean {
  return /(?:^|\s)msonormal(?:\s|$)/i.test(tag.attrs.class);
}

/** After "<": a letter (tag), "/" (end tag), "!" (comment, doctype) or "?" (processing instruction). */
const opensMarkup = (c: number): boolean => isAsciiLetter(c) || c === 0x2f || c === 0x21 || c === 0x3f;
const isAsciiLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isNameChar = (c: number): boolean =>
  isAsciiLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x3a /* : */ || c === 0x5f /* _ */ || c === 0x2d; /* - */
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;

/**
 * Reads one tag at `start` ("<"): null when it is no tag, 'unterminated' when
 * no ">" ends it within the window. Attribute values may hold ">" inside quotes.
 */
function readTag(html: string, start: number, limit: number, wantAttrs: boolean): Tag | 'unterminated' | null {
  let i = start + 1;
  let closing = false;
  if (html.charCodeAt(i) === 0x2f /* / */) {
    closing = true;
    i++;
  }
  const nameStart = i;
  if (!isAsciiLetter(html.charCodeAt(i))) return null;
  while (i < limit && isNameChar(html.charCodeAt(i))) i++;
  const name = html.slice(nameStart, i).toLowerCase();
  const attrs: Attrs = { id: '', class: '', style: '', type: '' };
  let selfClosing = false;
  while (i < limit) {
    const c = html.charCodeAt(i);
    if (c === 0x3e /* > */) return { name, closing, selfClosing, attrs, end: i + 1 };
    if (c === 0x2f /* / */) {
      selfClosing = html.charCodeAt(i + 1) === 0x3e;
      i++;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    // An attribute: name, optional = and value.
    const an = i;
    for (let d = c; i < limit && !isSpace(d) && d !== 0x3d /* = */ && d !== 0x3e && d !== 0x2f; d = html.charCodeAt(++i));
    const attrName = html.slice(an, i).toLowerCase();
    while (i < limit && isSpace(html.charCodeAt(i))) i++;
    let value = '';
    if (html.charCodeAt(i) === 0x3d) {
      i++;
      while (i < limit && isSpace(html.charCodeAt(i))) i++;
      const q = html.charCodeAt(i);
      if (q === 0x22 /* " */ || q === 0x27 /* ' */) {
        const close = html.indexOf(q === 0x22 ? '"' : "'", i + 1);
        const end = close === -1 || close >= limit ? limit : close;
        value = html.slice(i + 1, end);
        i = end + 1;
      } else {
        const vs = i;
        while (i < limit && !isSpace(html.charCodeAt(i)) && html.charCodeAt(i) !== 0x3e) i++;
        value = html.slice(vs, i);
      }
    }
    // Only the attributes containerRole reads are kept (and decoded).
    // The first of duplicate attributes wins, as in browsers.
    if (wantAttrs && isWanted(attrName) && attrs[attrName] === '') attrs[attrName] = decodeEntities(value);
    if (i === an) i++; // no progress: skip the character
  }
  return 'unterminated';
}

const isWanted = (name: string): name is keyof Attrs => name === 'id' || name === 'class' || name === 'style' || name === 'type';

/** Skips the content of <script>, <style> and the like, to their end tag. */
function skipRawText(html: string, from: number, limit: number, name: string): number {
  const re = new RegExp(`</${name}\\s*>`, 'gi');
  re.lastIndex = from;
  const m = re.exec(html);
  return m === null || m.index >= limit ? limit : m.index + m[0].length;
}

/** Collects text into lines with HTML's whitespace rules, and the marks. */
class LineBuilder {
  readonly lines: string[] = [];
  readonly marks: (LineMark | undefined)[] = [];
  #cur = '';
  #pendingBlank = false;
  #wordLineStart = -1;

  text(t: string, preformatted: boolean): void {
    if (preformatted) {
      const parts = t.replace(/\r\n?/g, '\n').split('\n');
      parts.forEach((part, k) => {
        if (k > 0) this.lineBreak();
        this.#append(part.replace(/\u00a0/g, ' '));
      });
      return;
    }
    let s = t.replace(/[ \t\n\r\f]+/g, ' ').replace(/\u00a0/g, ' ');
    if (this.#cur === '' || this.#cur.endsWith(' ')) s = s.replace(/^ /, '');
    if (s === '') return;
    this.#append(s);
  }

  #append(s: string): void {
    if (this.#cur === '' && this.#pendingBlank && s.trim() !== '') {
      this.#blankSeparator();
      this.#pendingBlank = false;
    }
    this.#cur += s;
  }

  lineBreak(): void {
    this.lines.push(this.#cur.trim());
    this.#cur = '';
  }

  /** The edge of a block element: end the current line, if any. */
  blockEdge(): void {
    if (this.#cur.trim() !== '') this.lineBreak();
    else this.#cur = '';
  }

  cellStart(): void {
    if (this.#cur !== '' && !this.#cur.endsWith(' ')) this.#cur += ' ';
  }

  paragraphStart(wordLine: boolean): void {
    this.blockEdge();
    this.#wordLineStart = wordLine ? this.lines.length : -1;
    if (!wordLine) this.#pendingBlank = true;
  }

  paragraphEnd(): void {
    this.blockEdge();
    if (this.#wordLineStart === -1) this.#pendingBlank = true;
    // An empty Word paragraph (<o:p>&nbsp;</o:p>) is Outlook's blank line.
    else if (this.lines.length === this.#wordLineStart) this.lines.push('');
    this.#wordLineStart = -1;
  }

  mark(mark: LineMark): void {
    this.blockEdge();
    this.#pendingBlank = false;
    this.lines.push('');
    this.marks[this.lines.length - 1] = mark;
  }

  #blankSeparator(): void {
    const last = this.lines[this.lines.length - 1];
    if (last !== undefined && last !== '') this.lines.push('');
  }

  finish(): { lines: string[]; marks: (LineMark | undefined)[] } {
    this.blockEdge();
    return { lines: this.lines, marks: this.marks };
  }
}
