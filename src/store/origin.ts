import { createHash } from 'node:crypto';

/**
 * Where a message came from on its mail server: the one identity every layer
 * passes along whole (connector → ingest → store → delivery → the ack back
 * on the server). A new kind of source (another protocol, an API) adds a
 * member here; every `switch (origin.kind)` then fails to compile until it
 * says what the new kind means (`unknownOrigin`).
 */
export type MessageOrigin = ImapOrigin | Pop3Origin;

/** IMAP: a UID means a message only together with its mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1). */
export interface ImapOrigin {
  readonly kind: 'imap';
  readonly mailbox: string;
  readonly uid: number;
  readonly uidValidity: number;
}

/** POP3: one maildrop, messages named by their UIDL (RFC 1939 §7). */
export interface Pop3Origin {
  readonly kind: 'pop3';
  readonly uidl: string;
}

export type OriginKind = MessageOrigin['kind'];

/** POP3 has one maildrop; its messages are announced (and stored) with this mailbox name. */
export const POP3_MAILBOX = 'INBOX';

/** For the compiler: a switch over every kind ends here. */
export function unknownOrigin(origin: never): never {
  throw new Error(`unknown message origin ${JSON.stringify(origin)}`);
}

/** The flat fields the webhook payload carries (contract: `mailbox, uid, uidValidity, uidl`), in its order. */
export interface OriginFields {
  mailbox: string;
  uid: number | null;
  uidValidity: number | null;
  uidl: string | null;
}

export function originFields(origin: MessageOrigin): OriginFields {
  switch (origin.kind) {
    case 'imap':
      return { mailbox: origin.mailbox, uid: origin.uid, uidValidity: origin.uidValidity, uidl: null };
    case 'pop3':
      return { mailbox: POP3_MAILBOX, uid: null, uidValidity: null, uidl: origin.uidl };
    default:
      return unknownOrigin(origin);
  }
}

/**
 * The id of a message, derived from its account and origin, so that a crash
 * after the commit and a re-fetch find the same row, on every backend (and
 * receivers get the same `id`, as the contract promises). The text hashed is
 * fixed: changing it would give every stored message a second id.
 */
export function messageIdFor({ account, origin }: { account: string; origin: MessageOrigin }): string {
  let key: string;
  switch (origin.kind) {
    case 'imap':
      key = `imap\0${account}\0${origin.mailbox}\0${origin.uidValidity}\0${origin.uid}`;
      break;
    case 'pop3':
      key = `pop3\0${account}\0${origin.uidl}`;
      break;
    default:
      return unknownOrigin(origin);
  }
  return 'msg_' + createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/** A message's one delivery of message.received (or message.failed) has an id derived from the message's. */
export function deliveryIdForMessage(messageId: string): string {
  return 'dlv_' + messageId.slice(4);
}
