import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { TEST_PASSWORD } from './dovecot.js';
import type { HarnessInfo } from './types.js';

const run = promisify(execFile);

/** An imapflow client logged in with the static test password (not OAuth). */
export async function passwordClient(h: HarnessInfo, user: string): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: h.imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass: TEST_PASSWORD },
    logger: false,
  });
  await client.connect();
  return client;
}

/** Puts messages into a user's mailbox with IMAP APPEND (password login). */
export async function appendMessages(h: HarnessInfo, user: string, raws: (Buffer | string)[], opts: { mailbox?: string } = {}): Promise<void> {
  const mailbox = opts.mailbox ?? 'INBOX';
  const client = await passwordClient(h, user);
  try {
    if (mailbox !== 'INBOX') await client.mailboxCreate(mailbox).catch(() => undefined);
    for (const raw of raws) await client.append(mailbox, raw);
  } finally {
    await client.logout();
  }
}

export interface ListedMessage {
  uid: number;
  flags: string[];
  size: number;
  messageId: string | undefined;
}

export async function listMessages(h: HarnessInfo, user: string, mailbox = 'INBOX'): Promise<ListedMessage[]> {
  const client = await passwordClient(h, user);
  try {
    const lock = await client.getMailboxLock(mailbox);
    try {
      const out: ListedMessage[] = [];
      const status = client.mailbox;
      if (status && status.exists === 0) return out;
      for await (const m of client.fetch('1:*', { uid: true, flags: true, size: true, envelope: true })) {
        out.push({ uid: m.uid, flags: [...(m.flags ?? [])], size: m.size ?? 0, messageId: m.envelope?.messageId });
      }
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

export async function mailboxExists(h: HarnessInfo, user: string, mailbox: string): Promise<boolean> {
  const client = await passwordClient(h, user);
  try {
    const list = await client.list();
    return list.some((m) => m.path === mailbox);
  } finally {
    await client.logout();
  }
}

/**
 * Delivers raw messages with `doveadm save` (bytes as given: NULs, bare CR
 * or LF, 8-bit headers), as a mail server's local delivery would; IMAP
 * APPEND refuses some of what hostile senders get through SMTP.
 */
export async function saveMessages(h: HarnessInfo, user: string, raws: Buffer[]): Promise<void> {
  const { spawn } = await import('node:child_process');
  for (const raw of raws) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/usr/bin/doveadm', ['-c', h.dovecotConfig, 'save', '-u', user], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`doveadm save exited with ${code}: ${err}`))));
      child.stdin.end(raw);
    });
  }
}

/** Changes a mailbox's UIDVALIDITY (doveadm mailbox update), as a server migration would. */
export async function setUidValidity(h: HarnessInfo, user: string, mailbox: string, uidValidity: number): Promise<void> {
  await run('/usr/bin/doveadm', ['-c', h.dovecotConfig, 'mailbox', 'update', '-u', user, '--uid-validity', String(uidValidity), mailbox]);
}

/** A plain test message. */
export function makeMessage(i: number, opts: { to?: string; subject?: string; body?: string; messageId?: string } = {}): string {
  return [
    `From: Sender ${i} <sender${i}@example.com>`,
    `To: ${opts.to ?? 'support@example.com'}`,
    `Subject: ${opts.subject ?? `Test message ${i}`}`,
    `Message-ID: ${opts.messageId ?? `<test-${i}-${Date.now()}@example.com>`}`,
    'Date: Sun, 22 Nov 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? `Body of message ${i}.`,
    '',
  ].join('\r\n');
}
