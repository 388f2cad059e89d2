import { describe, expect, it } from 'vitest';
import {
  MAX_REFERENCES_SCANNED,
  conversationIdFor,
  conversationIdOfMessageId,
  conversationRootOf,
  messageIdKey,
  msgIdsOf,
  resolveConversation,
  type ConversationLookup,
  type ThreadHeaders,
} from '../../../src/parse/conversation.js';

/** What the store would hold: each message's normalised Message-ID → its conversation. */
class Known {
  readonly map = new Map<string, string>();
  asked: string[] = [];
  readonly lookup: ConversationLookup = async (key) => {
    this.asked.push(key);
    return this.map.get(key) ?? null;
  };
  /** Computes a message's conversation the way ingest will, then remembers it. */
  async add(msg: ThreadHeaders): Promise<string> {
    const id = await conversationIdFor(msg, this.lookup);
    const key = messageIdKey(msg.messageId);
    if (key !== null && !this.map.has(key)) this.map.set(key, id);
    return id;
  }
}

function msg(messageId: string | null, inReplyTo: string | null = null, references: string[] = [], id = `m_${messageId ?? 'none'}`): ThreadHeaders {
  return { messageId, inReplyTo, references, id };
}

describe('conversationId', () => {
  it('is cnv_ and 32 hex characters of SHA-256 over the normalised root, fixed for all time', () => {
    // Pinned: every replica and every past delivery computed this value; changing the hash would split every open thread.
    expect(conversationIdOfMessageId('<CAF=x1+yZ@mail.GMAIL.com>')).toBe('cnv_83c5d5c6b49e969e6286b60f3292c54c');
    expect(conversationIdOfMessageId('CAF=x1+yZ@mail.gmail.com')).toBe('cnv_83c5d5c6b49e969e6286b60f3292c54c');
  });

  it('normalises brackets, whitespace and the case of the domain part, but not of the left part', () => {
    expect(messageIdKey('<ABC.def@Example.COM>')).toBe('ABC.def@example.com');
    expect(messageIdKey('  <ABC.def@example.com>  ')).toBe('ABC.def@example.com');
    expect(messageIdKey('ABC.def@example.com')).toBe('ABC.def@example.com');
    expect(messageIdKey("<abc@example.com> (Ann's message of Tue)")).toBe('abc@example.com');
    expect(messageIdKey('<abc@x>')).not.toBe(messageIdKey('<ABC@x>'));
    // An id without "@" (some generators) is still an id.
    expect(messageIdKey('<1234567.local>')).toBe('1234567.local');
    for (const bad of ['', '<>', '< >', '<a b@c>', '<abc', null, undefined, `<${'a'.repeat(999)}@x>`]) expect(messageIdKey(bad)).toBeNull();
  });

  it('a Gmail thread: every reply names the root first in References', async () => {
    const k = new Known();
    const root = await k.add(msg('<CAHx1=root@mail.gmail.com>'));
    const r1 = await k.add(msg('<CAHx2=r1@mail.gmail.com>', '<CAHx1=root@mail.gmail.com>', ['<CAHx1=root@mail.gmail.com>']));
    const r2 = await k.add(msg('<CAHx3=r2@mail.gmail.com>', '<CAHx2=r1@mail.gmail.com>', ['<CAHx1=root@mail.gmail.com>', '<CAHx2=r1@mail.gmail.com>']));
    expect(new Set([root, r1, r2])).toEqual(new Set([conversationIdOfMessageId('<CAHx1=root@mail.gmail.com>')]));
  });

  it('an Outlook thread with In-Reply-To only joins the root through what mailgate knows', async () => {
    const k = new Known();
    const root = await k.add(msg('<PH0PR11MB1@namprd11.prod.outlook.com>'));
    const r1 = await k.add(msg('<PH0PR11MB2@namprd11.prod.outlook.com>', '<PH0PR11MB1@namprd11.prod.outlook.com>'));
    // A reply to the reply, again In-Reply-To only: the contract's "a reply to a reply joins the root's thread".
    const r2 = await k.add(msg('<PH0PR11MB3@namprd11.prod.outlook.com>', '<PH0PR11MB2@namprd11.prod.outlook.com>'));
    expect(r1).toBe(root);
    expect(r2).toBe(root);
    // Without the lookup the reply to the reply would start its own thread at its parent.
    expect(await conversationIdFor(msg('<PH0PR11MB3@namprd11.prod.outlook.com>', '<PH0PR11MB2@namprd11.prod.outlook.com>'))).toBe(
      conversationIdOfMessageId('<PH0PR11MB2@namprd11.prod.outlook.com>'),
    );
  });

  it('a Gmail or Apple Mail reply to an Outlook reply (References start at the Outlook message) joins the root', async () => {
    const k = new Known();
    const root = await k.add(msg('<root-1@example.com>'));
    const outlook = await k.add(msg('<AM9PR01@eurprd01.prod.outlook.com>', '<root-1@example.com>'));
    // RFC 5322 §3.6.4: References = the parent's In-Reply-To + the parent's Message-ID.
    const apple = await k.add(
      msg('<8F2E1A-APPLE@icloud.com>', '<AM9PR01@eurprd01.prod.outlook.com>', ['<root-1@example.com>', '<AM9PR01@eurprd01.prod.outlook.com>']),
    );
    const outlook2 = await k.add(msg('<AM9PR02@eurprd01.prod.outlook.com>', '<8F2E1A-APPLE@icloud.com>'));
    const gmail = await k.add(msg('<CAJ9@mail.gmail.com>', '<AM9PR02@eurprd01.prod.outlook.com>', ['<8F2E1A-APPLE@icloud.com>', '<AM9PR02@eurprd01.prod.outlook.com>']));
    expect([outlook, apple, outlook2, gmail]).toEqual([root, root, root, root]);
  });

  it('a reply to a message sent through the send API joins the thread that message was sent in', async () => {
    const k = new Known();
    const root = await k.add(msg('<ticket-1@customer.example>'));
    // The outbox records the Message-ID it generated with the conversation computed from the send request.
    const sent = await k.add(msg('<mailgate-out-1@support.example.com>', '<ticket-1@customer.example>', ['<ticket-1@customer.example>']));
    const answer = await k.add(msg('<DB9PR@eurprd.prod.outlook.com>', '<mailgate-out-1@support.example.com>'));
    expect(sent).toBe(root);
    expect(answer).toBe(root);
  });

  it('keeps what it gave a message before (a redelivery, or a copy in a second mailbox) even if its parent became known later', async () => {
    const k = new Known();
    const orphan = await k.add(msg('<late@x.example>', '<unknown-parent@x.example>'));
    k.map.set('unknown-parent@x.example', 'cnv_somethingelse');
    expect(await conversationIdFor(msg('<late@x.example>', '<unknown-parent@x.example>'), k.lookup)).toBe(orphan);
  });

  it('a forward is a new thread unless the client kept the original threading headers (Gmail does, Outlook and Apple Mail do not)', async () => {
    const k = new Known();
    const root = await k.add(msg('<orig@customer.example>'));
    const outlookFwd = await k.add(msg('<fwd-outlook@prod.outlook.com>'));
    const gmailFwd = await k.add(msg('<fwd-gmail@mail.gmail.com>', '<orig@customer.example>', ['<orig@customer.example>']));
    expect(outlookFwd).not.toBe(root);
    expect(gmailFwd).toBe(root);
  });

  it('falls back to In-Reply-To, then the own Message-ID, then the mailgate id', async () => {
    expect(conversationRootOf(msg('<own@x>', '<parent@x>'))).toEqual({ kind: 'in-reply-to', root: 'parent@x' });
    expect(conversationRootOf(msg('<own@X>'))).toEqual({ kind: 'message-id', root: 'own@x' });
    expect(conversationRootOf(msg(null, null, [], 'msg_42'))).toEqual({ kind: 'id', root: 'msg_42' });
    const a = await conversationIdFor(msg(null, null, [], 'msg_42'));
    expect(a).toMatch(/^cnv_[0-9a-f]{32}$/);
    expect(await conversationIdFor(msg(null, null, [], 'msg_42'))).toBe(a);
    expect(await conversationIdFor(msg(null, null, [], 'msg_43'))).not.toBe(a);
    // The mailgate id and a Message-ID with the same text are different roots.
    expect(await conversationIdFor(msg(null, null, [], 'x@y'))).not.toBe(conversationIdOfMessageId('<x@y>'));
    // Unusable header values are skipped, not hashed.
    expect(conversationRootOf(msg('<>', '< >', ['<>', 'not an id'], 'msg_9'))).toEqual({ kind: 'id', root: 'msg_9' });
  });

  it('bounds hostile headers: 10,000 References cost at most four lookups and scan a fixed window', async () => {
    const refs = Array.from({ length: 10_000 }, (_, i) => `<r${i}@flood.example>`);
    const k = new Known();
    const r = await resolveConversation(msg('<own@flood.example>', '<r9999@flood.example>', refs), k.lookup);
    expect(k.asked).toEqual(['own@flood.example', 'r0@flood.example', 'r9999@flood.example']);
    expect(r.source).toEqual({ kind: 'references', root: 'r0@flood.example' });

    // Garbage first: the first usable entry within the window is the root; beyond the window, In-Reply-To.
    const junk = Array.from({ length: 10_000 }, () => '<>');
    expect(conversationRootOf(msg(null, null, [...junk.slice(0, 5), '<real@x>', ...junk])).root).toBe('real@x');
    expect(conversationRootOf(msg(null, '<parent@x>', [...junk.slice(0, MAX_REFERENCES_SCANNED), '<too-late@x>'])).root).toBe('parent@x');
    // One 1 MB "id" is not an id.
    expect(conversationRootOf(msg(`<${'a'.repeat(1 << 20)}@x>`, null, [], 'msg_1')).kind).toBe('id');
  });

  it('a failing lookup fails the call instead of giving the message another thread', async () => {
    await expect(
      conversationIdFor(msg('<a@x>', '<b@x>'), () => {
        throw new Error('database is locked');
      }),
    ).rejects.toThrow('database is locked');
  });

  it('reads msg-ids from raw header values, bounded', () => {
    expect(msgIdsOf(' <a@x>\r\n <b@x> <> <c d@x> <e@x>')).toEqual(['<a@x>', '<b@x>', '<e@x>']);
    expect(msgIdsOf('a@x b@x')).toEqual(['<a@x>', '<b@x>']);
    expect(msgIdsOf('<a@x> (comment)')).toEqual(['<a@x>']);
    expect(msgIdsOf('<a@x> <b@x> <c@x>', 2)).toEqual(['<a@x>', '<b@x>']);
    expect(msgIdsOf(Array.from({ length: 5000 }, (_, i) => `<${i}@x>`).join(' '))).toHaveLength(1000);
  });
});
