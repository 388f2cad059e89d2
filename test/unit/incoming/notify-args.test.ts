import { describe, expect, it } from 'vitest';
import { MAX_NOTIFY_NAMES, notifySetArguments } from '../../../src/incoming/imap/notify.js';

/** The arguments as they go on the wire (imapflow quotes STRING values). */
function wire(args: unknown[]): string {
  const one = (a: unknown): string =>
    Array.isArray(a) ? `(${a.map(one).join(' ')})` : (a as { type: string; value: string }).type === 'STRING' ? JSON.stringify((a as { value: string }).value) : (a as { value: string }).value;
  return args.map(one).join(' ');
}

describe('notifySetArguments', () => {
  it('names several mailboxes as a parenthesised list (RFC 5465 one-or-more-mailbox), with MessageNew and MessageExpunge together', () => {
    expect(wire(notifySetArguments(['INBOX', 'Support', 'Sales Team']))).toBe(
      'SET (selected-delayed (MessageNew MessageExpunge)) (mailboxes ("INBOX" "Support" "Sales Team") (MessageNew MessageExpunge))',
    );
  });

  it('asks for every personal mailbox when a name is in modified UTF-7 or there are too many names', () => {
    expect(wire(notifySetArguments(['INBOX', 'Anfragen-&ANw-']))).toBe('SET (selected-delayed (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))');
    const many = Array.from({ length: MAX_NOTIFY_NAMES + 1 }, (_, i) => `box${i}`);
    expect(wire(notifySetArguments(many))).toMatch(/\(personal /);
  });
});
