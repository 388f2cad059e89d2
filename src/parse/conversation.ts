/**
 * `conversationId`: the same value for every message of one thread
 * (product.md, "What the issue pipeline receives").
 *
 * The contract derives it from the thread's root: the first entry of
 * `References`; else `In-Reply-To`, resolved through messages mailgate
 * already knows (so a reply to a reply joins the root's thread); else the
 * message's own `Message-ID`; else its mailgate `id`. The id is a hash of
 * that root, so it is the same on every replica and after every restart,
 * and anyone can compute it from the root's Message-ID
 * (`conversationIdOfMessageId`).
 *
 * Lookups. RFC 5322 §3.6.4 tells clients to build `References` from the
 * parent's `References` (or its single `In-Reply-To`) plus the parent's
 * Message-ID, so for well-behaved clients the first entry is the root.
 * Outlook often sends `In-Reply-To` alone, and a client replying to such a
 * message starts its `References` at the Outlook message, not at the root.
 * So before hashing, mailgate asks what it already knows, in this order,
 * first answer wins: the message's own Message-ID (a redelivery, a copy in
 * a second mailbox, a Bcc of a message sent through the send API keep their
 * conversation), the first `References` entry, `In-Reply-To`, and the last
 * `References` entry (the parent, when a list server trimmed the middle).
 * At most four lookups per message, whatever the headers hold.
 *
 * Normalisation (RFC 5322 §3.6.4): the angle brackets are not part of the
 * msg-id. Nothing in the RFC makes the left part case-insensitive, and
 * generators use mixed-case base64 in it (Gmail's `CA+…@mail.gmail.com`),
 * so it is compared exactly; the right part is usually a domain, which DNS
 * compares without case, and some gateways rewrite its case, so it is
 * lower-cased. Whitespace around the id (folding) is dropped; an id with
 * whitespace, angle brackets inside, nothing in it, or longer than
 * MAX_MESSAGE_ID_CHARS is not an id and is skipped.
 *
 * Security: headers are written by the sender. Anyone who knows a thread's
 * root Message-ID can join that thread; pipelines must treat the id as a
 * grouping hint, never as proof of who may comment on an issue.
 */
import { createHash } from 'node:crypto';

/** RFC 5322 §2.1.1: a line is at most 998 characters; no real msg-id is longer. */
export const MAX_MESSAGE_ID_CHARS = 998;
/** A hostile `References` with thousands of entries: only this many leading entries are looked at for the root. */
export const MAX_REFERENCES_SCANNED = 64;
/** `msgIdsOf` stops after this many ids (a header value is bounded by mailparser's header limits, this bounds the work on it). */
export const MAX_MESSAGE_IDS_PARSED = 1000;
/** Hex characters of the SHA-256 digest kept in the id (128 bits). */
const ID_HEX_CHARS = 32;

/** The threading fields of a `message.received` payload (or of an outbox message). */
export interface ThreadHeaders {
  /** `Message-ID`, with or without angle brackets; null when absent. */
  messageId: string | null;
  inReplyTo: string | null;
  /** `References`, in header order (the payload's `references`). */
  references: readonly string[];
  /** mailgate's stable id of the message: the root of last resort. */
  id: string;
}

/**
 * What mailgate knows: the `conversationId` it gave a stored message (a
 * received one, or one sent through the send API), by that message's
 * normalised Message-ID (`messageIdKey`); null when it knows none.
 */
export type ConversationLookup = (messageIdKey: string) => string | null | Promise<string | null>;

/** A thread's root read from the headers alone: which field gave it, and its normalised value (or the mailgate id). */
export interface HeaderRoot {
  kind: 'references' | 'in-reply-to' | 'message-id' | 'id';
  root: string;
}

/** Where a conversation id came from (tests, logs, the admin UI). */
export type ConversationSource = HeaderRoot | { kind: 'known'; via: 'message-id' | 'references' | 'in-reply-to'; messageIdKey: string };

/**
 * The normalised form of one msg-id: no angle brackets or surrounding
 * whitespace, the part after the last `@` lower-cased. Null when the value is
 * not a usable id. Accepts `<a@b>`, `a@b`, and a value with a trailing
 * comment as some clients write In-Reply-To (`<a@b> (Ann's message)`).
 */
export function messageIdKey(value: string | null | undefined): string | null {
  if (typeof value !== 'string') return null;
  // Never scan more than a header line could hold.
  const v = value.length > MAX_MESSAGE_ID_CHARS + 2 ? value.slice(0, MAX_MESSAGE_ID_CHARS + 2) : value;
  let id: string;
  const open = v.indexOf('<');
  if (open >= 0) {
    const close = v.indexOf('>', open + 1);
    if (close < 0) return null;
    id = v.slice(open + 1, close).trim();
  } else {
    id = v.trim();
  }
  if (id.length === 0 || id.length > MAX_MESSAGE_ID_CHARS) return null;
  if (/[\s<>]/.test(id)) return null;
  const at = id.lastIndexOf('@');
  if (at < 0) return id;
  return id.slice(0, at + 1) + id.slice(at + 1).toLowerCase();
}

/** The conversation id of a thread whose root has this Message-ID (null when it is not a usable id). */
export function conversationIdOfMessageId(messageId: string): string | null {
  const key = messageIdKey(messageId);
  return key === null ? null : hashRoot(`mid:${key}`);
}

function hashRoot(root: string): string {
  return `cnv_${createHash('sha256').update(root, 'utf8').digest('hex').slice(0, ID_HEX_CHARS)}`;
}

/** The first usable entry among the first MAX_REFERENCES_SCANNED of `references`. */
function firstReference(references: readonly string[]): string | null {
  const n = Math.min(references.length, MAX_REFERENCES_SCANNED);
  for (let i = 0; i < n; i++) {
    const key = messageIdKey(references[i]);
    if (key !== null) return key;
  }
  return null;
}

/** The last usable entry among the last MAX_REFERENCES_SCANNED of `references`. */
function lastReference(references: readonly string[]): string | null {
  const stop = Math.max(0, references.length - MAX_REFERENCES_SCANNED);
  for (let i = references.length - 1; i >= stop; i--) {
    const key = messageIdKey(references[i]);
    if (key !== null) return key;
  }
  return null;
}

/** The thread's root from the headers alone, without lookups (the contract's order). */
export function conversationRootOf(msg: ThreadHeaders): HeaderRoot {
  const ref = firstReference(msg.references);
  if (ref !== null) return { kind: 'references', root: ref };
  const parent = messageIdKey(msg.inReplyTo);
  if (parent !== null) return { kind: 'in-reply-to', root: parent };
  const own = messageIdKey(msg.messageId);
  if (own !== null) return { kind: 'message-id', root: own };
  return { kind: 'id', root: msg.id };
}

/** The id of a root found from the headers. */
export function conversationIdOfRoot(source: HeaderRoot): string {
  return source.kind === 'id' ? hashRoot(`id:${source.root}`) : hashRoot(`mid:${source.root}`);
}

/**
 * The message's `conversationId` and where it came from. `lookup` is asked
 * at most four times (see the module comment); a lookup that throws fails
 * the call (the caller retries the message, it must not get a different
 * thread because the database hiccupped).
 */
export async function resolveConversation(
  msg: ThreadHeaders,
  lookup: ConversationLookup | null = null,
): Promise<{ conversationId: string; source: ConversationSource }> {
  if (lookup !== null) {
    const asked = new Set<string>();
    const candidates: [Extract<ConversationSource, { kind: 'known' }>['via'], string | null][] = [
      ['message-id', messageIdKey(msg.messageId)],
      ['references', firstReference(msg.references)],
      ['in-reply-to', messageIdKey(msg.inReplyTo)],
      ['references', lastReference(msg.references)],
    ];
    for (const [via, key] of candidates) {
      if (key === null || asked.has(key)) continue;
      asked.add(key);
      const known = await lookup(key);
      if (typeof known === 'string' && known.length > 0) return { conversationId: known, source: { kind: 'known', via, messageIdKey: key } };
    }
  }
  const root = conversationRootOf(msg);
  return { conversationId: conversationIdOfRoot(root), source: root };
}

/** `conversationId` of a message (see resolveConversation). */
export async function conversationIdFor(msg: ThreadHeaders, lookup: ConversationLookup | null = null): Promise<string> {
  return (await resolveConversation(msg, lookup)).conversationId;
}

/**
 * The msg-ids in a raw `References` / `In-Reply-To` header value, in order,
 * at most `max` of them: for callers that read headers themselves (ingest
 * reads the header block before the full parse). Ids without angle brackets
 * (some broken clients) are taken as whitespace-separated tokens when the
 * value has no bracketed id at all.
 */
export function msgIdsOf(headerValue: string, max: number = MAX_MESSAGE_IDS_PARSED): string[] {
  const out: string[] = [];
  const bracketed = /<([^<>]*)>/g;
  let m: RegExpExecArray | null;
  let sawBracket = false;
  while (out.length < max && (m = bracketed.exec(headerValue)) !== null) {
    sawBracket = true;
    const key = messageIdKey(`<${m[1] ?? ''}>`);
    if (key !== null) out.push(`<${m[1]?.trim()}>`);
  }
  if (sawBracket) return out;
  const tokens = /\S+/g;
  while (out.length < max && (m = tokens.exec(headerValue)) !== null) {
    if (messageIdKey(m[0]) !== null) out.push(`<${m[0]}>`);
  }
  return out;
}
