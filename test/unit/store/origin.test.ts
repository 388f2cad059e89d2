import { describe, expect, it } from 'vitest';
import { deliveryIdForMessage, messageIdFor, originFields } from '../../../src/store/origin.js';

describe('message origin', () => {
  it('derives the ids every stored message already has (the hashed text never changes)', () => {
    // Computed with the formula of mailgate before MessageOrigin: a change here would give stored messages a second id.
    expect(messageIdFor({ account: 'support', origin: { kind: 'imap', mailbox: 'INBOX', uid: 42, uidValidity: 7 } })).toBe('msg_9e3171a7ed3c522c43727c4b85879796');
    expect(messageIdFor({ account: 'support', origin: { kind: 'pop3', uidl: 'uidl-1' } })).toBe('msg_7f2f69a65d03679516fb7ef80170d056');
    expect(deliveryIdForMessage('msg_9e3171a7ed3c522c43727c4b85879796')).toBe('dlv_9e3171a7ed3c522c43727c4b85879796');
  });

  it('gives the webhook its flat fields: POP3 in INBOX without UID, IMAP without UIDL', () => {
    expect(originFields({ kind: 'imap', mailbox: 'Archive', uid: 3, uidValidity: 9 })).toEqual({ mailbox: 'Archive', uid: 3, uidValidity: 9, uidl: null });
    expect(originFields({ kind: 'pop3', uidl: 'abc' })).toEqual({ mailbox: 'INBOX', uid: null, uidValidity: null, uidl: 'abc' });
  });
});
