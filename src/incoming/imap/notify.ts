import type { ImapFlow } from 'imapflow';
import { parseStatusList, type StatusFieldValue } from 'imapflow/lib/commands/status-fields.js';
import { decodePath, encodePath, normalizePath } from 'imapflow/lib/tools.js';

/**
 * IMAP NOTIFY (RFC 5465): one connection learns of new mail in several
 * mailboxes. IMAP IDLE (RFC 2177) reports only the selected mailbox, so an
 * account with `mailboxes: [INBOX, Support]` would otherwise see mail in
 * Support only at the next idleResync.
 *
 * imapflow 2.10 has no NOTIFY command, so this sends it through imapflow's
 * internal `exec()` (the same queue every command goes through), and catches
 * the unsolicited `* STATUS` responses NOTIFY produces for the other
 * mailboxes with a connection-wide untagged handler (`untaggedHandlers`,
 * internal too; imapflow consults it only when the command in flight has no
 * STATUS handler of its own, which is every command but STATUS itself).
 * Mailbox names are encoded and decoded with imapflow's exported path
 * helpers (`imapflow/lib/tools.js`) so UTF-7 and UTF8=ACCEPT come out as
 * imapflow's own commands write them. For the selected mailbox NOTIFY keeps
 * sending what IDLE would (EXISTS, imapflow's 'exists' event).
 *
 * The command: `NOTIFY SET (selected-delayed (MessageNew MessageExpunge))
 * (mailboxes (A B) (MessageNew MessageExpunge))` (`personal` instead of
 * `mailboxes (A B)` for names Dovecot would not match, see notifySetArguments). Per RFC 5465 §6 the list of
 * several mailboxes is parenthesised (`one-or-more-mailbox`); Dovecot answers
 * `mailboxes A B (…)` with BAD. MessageNew and MessageExpunge go together
 * (§5.2, §5.3). `selected-delayed` (§6.2), not `selected`: with `selected` the
 * server may send EXPUNGE during any command, even FETCH, STORE and SEARCH,
 * which RFC 3501 §7.4.1 otherwise forbids and imapflow's sequence numbers
 * assume; delayed, expunges come only where RFC 3501 allows them.
 *
 * Dovecot 2.3 (measured in test/integration/imap/notify.test.ts): a STATUS
 * for another mailbox arrives about 0.5 s after the APPEND (it bundles
 * changes for 500 ms), also while no IDLE runs. A session with NOTIFY set is
 * never hibernated (imap_hibernate: "NOTIFY not supported currently" in its
 * state export), so each such account keeps a Dovecot imap process; watch
 * with NOTIFY only the accounts that have more than one mailbox.
 */

export interface MailboxChange {
  /** The mailbox as configured (decoded, INBOX normalised). */
  path: string;
  /** What the STATUS carried: Dovecot sends MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ. */
  status: Partial<Record<'messages' | 'uidNext' | 'unseen' | 'recent' | 'size' | 'deleted', number> & Record<'uidValidity' | 'highestModseq', bigint>>;
}

export interface NotifyWatch {
  /** The mailboxes watched, as given. */
  readonly mailboxes: readonly string[];
  /** Sends NOTIFY NONE when the connection is still usable and stops reporting. Not while IDLE runs. */
  stop(): Promise<void>;
}

interface UntaggedResponse {
  attributes?: unknown[];
}
type UntaggedHandler = (untagged: UntaggedResponse) => unknown;

/** The imapflow internals used here, with the shapes imapflow 2.10 gives them. */
interface ImapFlowInternals {
  exec(command: string, attributes: unknown[], options?: object): Promise<{ response: unknown; next: () => void }>;
  untaggedHandlers: Record<string, UntaggedHandler | null | undefined>;
}

export class NotifyRefusedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotifyRefusedError';
  }
}

/** Whether the server offers NOTIFY (its CAPABILITY after login). */
export function supportsNotify(client: ImapFlow): boolean {
  return client.capabilities.has('NOTIFY');
}

const atom = (value: string) => ({ type: 'ATOM', value });
const string = (value: string) => ({ type: 'STRING', value });
const EVENTS = () => [atom('MessageNew'), atom('MessageExpunge')];

/** Dovecot takes at most this many names in one filter (NO [NOTIFICATIONOVERFLOW] past it). */
export const MAX_NOTIFY_NAMES = 100;

/**
 * The NOTIFY SET arguments for `mailboxes` (wire names), see the module
 * comment. Names that are not plain ASCII, or more than MAX_NOTIFY_NAMES,
 * are asked for with the `personal` filter (every mailbox of the user,
 * RFC 5465 §6.4) and picked out by name here: Dovecot 2.3 compares the
 * names of a `mailboxes` filter as sent, in modified UTF-7, with its UTF-8
 * names (cmd-notify.c), so `Anfragen-&ANw-` never matches `Anfragen-Ü`.
 */
export function notifySetArguments(wireNames: string[]): unknown[] {
  const ascii = wireNames.every((n) => /^[\x20-\x7e]*$/.test(n) && !n.includes('&'));
  const others = ascii && wireNames.length <= MAX_NOTIFY_NAMES ? [atom('mailboxes'), wireNames.map(string), EVENTS()] : [atom('personal'), EVENTS()];
  return [atom('SET'), [atom('selected-delayed'), EVENTS()], others];
}

/**
 * Asks the server to report new and expunged mail in `mailboxes` (the
 * selected one as EXISTS, the others as STATUS, which call `onChange`).
 * Returns null when the server does not offer NOTIFY (fall back: one
 * connection per mailbox, or polling); throws NotifyRefusedError when it
 * offers it but refuses the command. Call it while no IDLE runs (before
 * `idle()`): NOTIFY waits behind an IDLE that nothing breaks.
 */
export async function watchMailboxes(client: ImapFlow, mailboxes: string[], onChange: (change: MailboxChange) => void): Promise<NotifyWatch | null> {
  if (!supportsNotify(client)) return null;
  if (mailboxes.length === 0) throw new RangeError('watchMailboxes needs at least one mailbox');
  if (client.idling) throw new Error('watchMailboxes: IDLE is running; set NOTIFY before idle()');
  const internals = client as unknown as ImapFlowInternals;
  const byName = new Map(mailboxes.map((m) => [normalizePath(client, m), m]));
  const previous = internals.untaggedHandlers.STATUS;
  let active = true;
  const handler: UntaggedHandler = (untagged) => {
    if (!active) return previous?.(untagged);
    const [name, list] = untagged.attributes ?? [];
    const raw = (name as { value?: unknown } | undefined)?.value;
    if (!Array.isArray(list) || (typeof raw !== 'string' && !Buffer.isBuffer(raw))) return;
    const path = byName.get(normalizePath(client, decodePath(client, raw.toString())));
    if (!path) return;
    const status: Record<string, StatusFieldValue> = {};
    parseStatusList(list, (key, value) => {
      status[key] = value;
    });
    onChange({ path, status: status as MailboxChange['status'] });
  };
  internals.untaggedHandlers.STATUS = handler;
  const restore = () => {
    active = false;
    if (internals.untaggedHandlers.STATUS === handler) internals.untaggedHandlers.STATUS = previous;
  };
  try {
    const wire = [...byName.keys()].map((p) => encodePath(client, p));
    const r = await internals.exec('NOTIFY', notifySetArguments(wire));
    r.next();
  } catch (err) {
    restore();
    const e = err as { responseText?: string; message?: string };
    throw new NotifyRefusedError(`the server refused NOTIFY: ${e.responseText ?? e.message ?? String(err)}`, { cause: err });
  }
  return {
    mailboxes: [...mailboxes],
    async stop() {
      restore();
      if (!client.usable || client.idling) return;
      const r = await internals.exec('NOTIFY', [atom('NONE')]);
      r.next();
    },
  };
}
