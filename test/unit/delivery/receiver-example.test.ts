import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner, signatureHeaders, type SignatureMode } from '../../../src/delivery/signing.js';
import { titleOf } from '../../../examples/receiver/tracker.mjs';

const RECEIVER = join(import.meta.dirname, '../../../examples/receiver/receiver.mjs');

/** The example receiver as a real process on a free loopback port, its stdout and stderr read as JSON lines. */
class Receiver {
  readonly out: Record<string, unknown>[] = [];
  readonly err: Record<string, unknown>[] = [];
  url = '';
  #child: ChildProcess | null = null;
  #waiters: (() => void)[] = [];

  async start(mode: SignatureMode, secrets: string[]): Promise<void> {
    const child = spawn(process.execPath, [RECEIVER], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MAILGATE_SIGNATURE: mode, MAILGATE_WEBHOOK_SECRETS: JSON.stringify(secrets) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    const read = (stream: NodeJS.ReadableStream, into: Record<string, unknown>[]) =>
      createInterface({ input: stream }).on('line', (line) => {
        into.push(JSON.parse(line) as Record<string, unknown>);
        for (const w of this.#waiters.splice(0)) w();
      });
    read(child.stdout as NodeJS.ReadableStream, this.out);
    read(child.stderr as NodeJS.ReadableStream, this.err);
    const first = await this.next(this.out, 0);
    this.url = String(first.listening);
  }

  /** The line at `index` of `lines`, once the receiver printed it. */
  async next(lines: Record<string, unknown>[], index: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 10_000;
    while (lines.length <= index) {
      if (Date.now() > deadline) throw new Error(`receiver printed nothing; stderr: ${JSON.stringify(this.err)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return lines[index] as Record<string, unknown>;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

let n = 0;
function payload(fields: Record<string, unknown>): Record<string, unknown> {
  n++;
  return {
    event: 'message.received',
    id: `msg_${n}`,
    account: 'support',
    subject: 'Printer on fire',
    from: { name: 'Ann', address: 'ann@customer.example' },
    text: `text ${n}\n> quoted`,
    replyText: `reply ${n}`,
    conversationId: `cnv_${String(n).padStart(32, '0')}`,
    issueKeys: [],
    autoType: null,
    bounce: null,
    ...fields,
  };
}

async function post(url: string, mode: SignatureMode, secrets: string[], body: Record<string, unknown>, opts: { nowSeconds?: number; delivery?: string } = {}) {
  const raw = Buffer.from(JSON.stringify(body), 'utf8');
  const delivery = opts.delivery ?? `dlv_${String(body.id)}`;
  const headers = {
    'Content-Type': 'application/json',
    'X-Mailgate-Event': String(body.event),
    'X-Mailgate-Delivery': delivery,
    ...signatureHeaders(createSigner(mode, secrets), delivery, raw, opts.nowSeconds),
  };
  const res = await fetch(url, { method: 'POST', headers, body: raw });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const now = () => Math.floor(Date.now() / 1000);

describe('examples/receiver with signature: mailgate', () => {
  const r = new Receiver();
  // The receiver still has only the old secret; mailgate signs with the new one and the old one during the rotation.
  const mailgate = ['new-secret', 'old-secret'];
  beforeAll(() => r.start('mailgate', ['old-secret']));
  afterAll(() => r.stop());

  it('accepts a delivery signed with both secrets, creates an issue, and comments on the replies in its thread', async () => {
    const first = payload({ subject: 'Re: AW: Printer on fire' });
    expect(await post(r.url, 'mailgate', mailgate, first)).toEqual({ status: 200, body: { ok: true } });
    const created = await r.next(r.out, 1);
    expect(created).toMatchObject({ id: first.id, tracker: { action: 'create', issue: 'SUP-1', title: 'Printer on fire', body: first.replyText, thread: first.conversationId } });

    const reply = payload({ subject: 'RE: Printer on fire', conversationId: first.conversationId });
    expect((await post(r.url, 'mailgate', mailgate, reply)).status).toBe(200);
    expect(await r.next(r.out, 2)).toMatchObject({ tracker: { action: 'comment', issue: 'SUP-1', body: reply.replyText } });
  });

  it('drops a repeat of the same payload id (acknowledged, printed as a duplicate, no second issue)', async () => {
    const p = payload({});
    expect((await post(r.url, 'mailgate', mailgate, p)).status).toBe(200);
    const at = r.out.length;
    expect(await post(r.url, 'mailgate', mailgate, p, { delivery: 'dlv_retry' })).toEqual({ status: 200, body: { ok: true, duplicate: true } });
    expect(await r.next(r.out, at)).toEqual({ duplicate: p.id, delivery: 'dlv_retry' });
  });

  it('refuses a wrong secret and a timestamp more than 5 minutes off, either way', async () => {
    const errs = r.err.length;
    expect((await post(r.url, 'mailgate', ['someone-else'], payload({}))).status).toBe(401);
    expect(await r.next(r.err, errs)).toMatchObject({ refused: 'no signature matches our secrets' });
    expect((await post(r.url, 'mailgate', mailgate, payload({}), { nowSeconds: now() - 301 })).status).toBe(401);
    expect(await r.next(r.err, errs + 1)).toMatchObject({ refused: 'timestamp more than 5 minutes off' });
    expect((await post(r.url, 'mailgate', mailgate, payload({}), { nowSeconds: now() + 301 })).status).toBe(401);
    const res = await fetch(r.url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(401);
  });
});

describe('examples/receiver with signature: standard (the standardwebhooks package verifies)', () => {
  const r = new Receiver();
  const fresh = `whsec_${randomBytes(32).toString('base64')}`;
  const mailgate = [fresh, 'old plain secret'];
  beforeAll(() => r.start('standard', [fresh]));
  afterAll(() => r.stop());

  it('accepts what mailgate signs, uses the issue key of the subject, and skips automatic mail', async () => {
    const keyed = payload({ subject: 'Re: [OPS-7] Printer on fire', issueKeys: ['OPS-7'] });
    expect((await post(r.url, 'standard', mailgate, keyed)).status).toBe(200);
    expect(await r.next(r.out, 1)).toMatchObject({ delivery: `dlv_${keyed.id}`, tracker: { action: 'comment', issue: 'OPS-7', body: keyed.replyText } });
    // A later reply in that thread without the key still lands on OPS-7.
    const later = payload({ subject: 'Re: Printer on fire', conversationId: keyed.conversationId });
    expect((await post(r.url, 'standard', mailgate, later)).status).toBe(200);
    expect(await r.next(r.out, 2)).toMatchObject({ tracker: { action: 'comment', issue: 'OPS-7' } });

    const bounce = { originalMessageId: '<reply-77@support.example.com>', recipient: 'nobody@example.org', status: '5.1.1', action: 'failed' };
    for (const [autoType, extra] of [
      ['auto_reply', {}],
      ['bounce', { bounce }],
      ['bulk', {}],
    ] as const) {
      const p = payload({ subject: 'Automatic reply: Printer on fire', autoType, ...extra });
      const at = r.out.length;
      expect((await post(r.url, 'standard', mailgate, p)).status).toBe(200);
      const line = await r.next(r.out, at);
      expect(line).toMatchObject({ id: p.id, tracker: { action: 'skip', reason: autoType, bounce: autoType === 'bounce' ? bounce : null } });
    }
  });

  it('refuses a wrong key, another delivery id than the one signed, and stale or future timestamps', async () => {
    const errs = r.err.length;
    expect((await post(r.url, 'standard', [`whsec_${randomBytes(32).toString('base64')}`], payload({}))).status).toBe(401);
    expect(await r.next(r.err, errs)).toMatchObject({ refused: 'no signature matches our secrets' });
    expect((await post(r.url, 'standard', mailgate, payload({}), { nowSeconds: now() - 301 })).status).toBe(401);
    expect(await r.next(r.err, errs + 1)).toMatchObject({ refused: 'timestamp more than 5 minutes off' });
    expect((await post(r.url, 'standard', mailgate, payload({}), { nowSeconds: now() + 301 })).status).toBe(401);
    // Signed for one delivery id, sent with another.
    const p = payload({});
    const raw = Buffer.from(JSON.stringify(p));
    const headers = { ...signatureHeaders(createSigner('standard', mailgate), 'dlv_a', raw), 'webhook-id': 'dlv_b' };
    expect((await fetch(r.url, { method: 'POST', headers, body: raw })).status).toBe(401);
  });

  it('accepts a receiver that holds a plain (not whsec_) secret, non-ASCII included', async () => {
    const plain = new Receiver();
    await plain.start('standard', ['pässwörd 🔑']);
    try {
      expect((await post(plain.url, 'standard', [fresh, 'pässwörd 🔑'], payload({}))).status).toBe(200);
    } finally {
      await plain.stop();
    }
  });
});

describe('the title an issue gets', () => {
  it('drops reply and forward prefixes in many languages, repeated and counted', () => {
    const t = titleOf;
    expect(t('Re: AW: SV: Fwd: WG: Printer on fire')).toBe('Printer on fire');
    expect(t('RE[2]: Re^3: TR : RV: Printer')).toBe('Printer');
    expect(t('回复：打印机着火了')).toBe('打印机着火了');
    expect(t('Antw: Odp: VS: Printer')).toBe('Printer');
    expect(t('Reply needed: Printer')).toBe('Reply needed: Printer');
    expect(t('Re:')).toBe('(no subject)');
    expect(t(undefined)).toBe('(no subject)');
  });
});
