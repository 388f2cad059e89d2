import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { FaultProxy, type Direction } from '../../harness/fault-proxy.js';
import { appendMessages, getHarness, listMessages, makeMessage, oauthAdmin, tmpDataDir, uniqueUser, WebhookSink, type HarnessInfo } from '../../harness/index.js';
import { until } from '../../harness/until.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

/*
 * A daemon (dist/cli.js) with a fault proxy in front of every peer: the
 * incoming server (Dovecot IMAP or POP3), the webhook sink, the OAuth2 token
 * endpoint and, when asked, Dovecot submission. Tests inject faults into one
 * proxy and check what reached the webhook and the mailbox.
 */

/** At least 24 characters (a coming config rule). */
export const ADMIN = 'faults-admin-token-7f3a9c2e41b8';
export const WEBHOOK_SECRET = 'whsec-faults-e2e';

export interface RigOptions {
  protocol: 'imap' | 'pop3';
  afterDelivery?: 'seen' | 'move' | 'delete' | 'none';
  /** Default 1s. */
  pollInterval?: string;
  /** The webhook's per-attempt timeout; default 5s. */
  webhookTimeout?: string;
  /** Adds an outgoing server: Dovecot submission behind its own proxy. */
  outgoing?: boolean;
  /** IMAP idleResync (default: mailgate's, 5m). */
  idleResync?: string;
}

export interface Proxies {
  incoming: FaultProxy;
  webhook: FaultProxy;
  token: FaultProxy;
  submission: FaultProxy | null;
}

/** The config file, written from the options and the proxies' ports. */
export function faultConfigYaml(h: HarnessInfo, o: RigOptions & { user: string; clientId: string; listenPort: number; proxies: Proxies }): string {
  const incoming = `    incoming:
      protocol: ${o.protocol}
      host: 127.0.0.1
      port: ${o.proxies.incoming.port}
      tls: false
      user: ${o.user}
      auth: { method: xoauth2, credential: test-idp }
${o.protocol === 'imap' ? '      mode: idle\n' : ''}${o.idleResync ? `      idleResync: ${o.idleResync}\n` : ''}      pollInterval: ${o.pollInterval ?? '1s'}
      afterDelivery: ${o.afterDelivery ?? (o.protocol === 'imap' ? 'seen' : 'delete')}
`;
  const outgoing = o.proxies.submission
    ? `    outgoing:
      host: 127.0.0.1
      port: ${o.proxies.submission.port}
      tls: false
      user: ${o.user}
      auth: { method: xoauth2, credential: test-idp }
`
    : '';
  return `server:
  listen: 127.0.0.1:${o.listenPort}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: info
credentials:
  - name: test-idp
    provider: custom
    clientId: ${o.clientId}
    clientSecret: secret-${o.clientId}
    authorizationEndpoint: ${h.oauthUrl}/authorize
    tokenEndpoint: ${o.proxies.token.url('/token')}
    scopes: [mail]
accounts:
  - name: support
    email: ${o.user}@example.com
${incoming}${outgoing}    webhook: pipeline
webhooks:
  - name: pipeline
    url: ${o.proxies.webhook.url('/hook')}
    secret: ${WEBHOOK_SECRET}
    backoff: { initial: 100ms, max: 1s }
    timeout: ${o.webhookTimeout ?? '5s'}
`;
}

export interface Payload {
  event: string;
  id: string;
  uid: number | null;
  uidl: string | null;
  messageId: string | null;
  size: number;
  text?: string;
}

export interface AccountView {
  name: string;
  incoming: { state: string; lastSuccessAt: string | null; lastError: string | null };
  outgoing: { lastSuccessAt: string | null; lastError: string | null };
  token: { state: string; lastRefreshAt: string | null; lastError: string | null };
}

/** A server-side acknowledgement seen on the wire: STORE/MOVE/EXPUNGE of UIDs (IMAP), DELE of a UIDL (POP3). */
export interface ServerAck {
  at: number;
  connection: number;
  command: string;
  /** IMAP UIDs or POP3 UIDLs. */
  keys: (number | string)[];
}

function expandUidSet(set: string): number[] {
  const out: number[] = [];
  for (const part of set.split(',')) {
    const [a, b] = part.split(':');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw new Error(`unexpected UID set ${set}`);
    for (let u = Math.min(lo, hi); u <= Math.max(lo, hi); u++) out.push(u);
  }
  return out;
}

/**
 * Reads the client's commands as they pass the incoming proxy and records
 * every command that acts on a message on the server (RFC 3501 UID STORE
 * +FLAGS \Seen/\Deleted, UID MOVE/COPY/EXPUNGE; RFC 1939 DELE, mapped to its
 * UIDL through the session's UIDL answer). Message-level commands it cannot
 * map are recorded with no keys and count as violations.
 */
export class ServerAckWatcher {
  readonly acks: ServerAck[] = [];
  readonly #lines = new Map<string, string>();
  readonly #pop3 = new Map<number, { last: string; uidls: Map<number, string> }>();

  constructor(
    proxy: FaultProxy,
    readonly protocol: 'imap' | 'pop3',
  ) {
    proxy.tap((connection, direction, bytes) => this.#feed(connection, direction, bytes));
  }

  #feed(connection: number, direction: Direction, bytes: Buffer): void {
    const key = `${connection}:${direction}`;
    const text = (this.#lines.get(key) ?? '') + bytes.toString('latin1');
    const lines = text.split('\r\n');
    const rest = lines.pop() ?? '';
    // Keep only a bounded tail: literals (message bodies) can be megabytes without a line break.
    this.#lines.set(key, rest.length > 4096 ? rest.slice(-4096) : rest);
    for (const line of lines) this.#line(connection, direction, line);
  }

  #line(connection: number, direction: Direction, line: string): void {
    const at = Date.now();
    if (this.protocol === 'imap') {
      if (direction !== 'toServer') return;
      const m = /^\S+ (UID )?(STORE|MOVE|COPY|EXPUNGE)\b ?(\S*)(.*)$/i.exec(line);
      if (!m) return;
      const command = `${m[1] ?? ''}${(m[2] ?? '').toUpperCase()}`;
      if (/STORE/i.test(command) && !/\+FLAGS(\.SILENT)? \(.*\\(Seen|Deleted)/i.test(m[4] ?? '')) return;
      const keys = m[1] && m[3] ? expandUidSet(m[3]) : [];
      this.acks.push({ at, connection, command, keys });
      return;
    }
    let s = this.#pop3.get(connection);
    if (!s) {
      s = { last: '', uidls: new Map() };
      this.#pop3.set(connection, s);
    }
    if (direction === 'toServer') {
      s.last = line.split(' ')[0]?.toUpperCase() ?? '';
      const dele = /^DELE (\d+)$/i.exec(line);
      if (dele) {
        const uidl = s.uidls.get(Number(dele[1]));
        this.acks.push({ at, connection, command: 'DELE', keys: uidl === undefined ? [] : [uidl] });
      }
      return;
    }
    const entry = s.last === 'UIDL' ? /^(\d+) (\S+)$/.exec(line) : null;
    if (entry) s.uidls.set(Number(entry[1]), entry[2] as string);
  }

  /** Acks on the server that came before the webhook sink acknowledged the message. */
  violations(sink: WebhookSink): string[] {
    const out: string[] = [];
    for (const a of this.acks) {
      if (a.command === 'UID EXPUNGE' || a.command === 'EXPUNGE') continue; // follows a STORE \Deleted, checked there
      if (a.keys.length === 0) out.push(`${a.command} on connection ${a.connection} names no message we can map`);
      for (const k of a.keys) {
        const acked = sink.acknowledged.some((r) => {
          const p = r.json as Payload;
          return r.receivedAt <= a.at && (this.protocol === 'imap' ? p.uid === k : p.uidl === k);
        });
        if (!acked) out.push(`${a.command} of ${k} at ${a.at} before the webhook acknowledged it`);
      }
    }
    return out;
  }

  /** How many server acks named this key (a UID or UIDL). */
  count(key: number | string): number {
    return this.acks.filter((a) => a.keys.includes(key)).length;
  }
}

export interface Rig {
  h: HarnessInfo;
  user: string;
  sink: WebhookSink;
  daemon: Daemon;
  proxies: Proxies;
  watcher: ServerAckWatcher;
  api: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; json: Record<string, unknown> }>;
}

/** message.received payloads the sink acknowledged. */
export function received(sink: WebhookSink): Payload[] {
  return sink.acknowledged.map((r) => r.json as Payload).filter((p) => p?.event === 'message.received');
}

/** Message-ID → the mailgate ids it was delivered under. */
export function idsByMessageId(sink: WebhookSink): Map<string, Set<string>> {
  const ids = new Map<string, Set<string>>();
  for (const p of received(sink)) ids.set(p.messageId ?? '', (ids.get(p.messageId ?? '') ?? new Set()).add(p.id));
  return ids;
}

export async function waitDelivered(sink: WebhookSink, messageIds: string[], timeoutMs = 30_000): Promise<void> {
  await sink.waitFor((s) => {
    const ids = idsByMessageId(s);
    return messageIds.every((m) => ids.has(m));
  }, timeoutMs);
}

/** Nothing lost: every message reached the webhook, each under one mailgate id. */
export function expectNothingLost(sink: WebhookSink, messageIds: string[]): void {
  const ids = idsByMessageId(sink);
  for (const m of messageIds) {
    expect(ids.get(m)?.size, `${m} delivered under exactly one id`).toBe(1);
  }
}

export async function accountView(rig: Rig): Promise<AccountView> {
  const { json } = await rig.api('GET', '/v1/accounts');
  const account = (json.accounts as AccountView[])[0];
  if (!account) throw new Error('no account in /v1/accounts');
  return account;
}

/** Healthy in /v1/accounts: connected or between polls, no error, token ok. */
export async function waitHealthy(rig: Rig, timeoutMs = 20_000): Promise<AccountView> {
  let last: AccountView | null = null;
  try {
    await until(
      async () => {
        last = await accountView(rig);
        return ['idle', 'polling'].includes(last.incoming.state) && last.incoming.lastError === null && last.token.state === 'ok';
      },
      timeoutMs,
      'the account to be healthy',
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`, { cause: err });
  }
  return last as unknown as AccountView;
}

/**
 * The account recovered without a restart: a new message flows all the way
 * (webhook, then afterDelivery on the server) and the account is healthy.
 */
export async function expectRecovers(rig: Rig, label: string): Promise<void> {
  const messageId = `<recover-${label}-${randomBytes(3).toString('hex')}@example.com>`;
  await appendMessages(rig.h, rig.user, [makeMessage(900, { messageId, subject: `after ${label}` })]);
  await waitDelivered(rig.sink, [messageId]);
  await until(
    async () => {
      const m = (await listMessages(rig.h, rig.user)).find((x) => x.messageId === messageId);
      return rig.watcher.protocol === 'pop3' ? m === undefined : m?.flags.includes('\\Seen') === true;
    },
    15_000,
    `afterDelivery of the message appended after the ${label}`,
  );
  await waitHealthy(rig);
}

/** A text/plain message of about `bytes` bytes (CRLF lines of base64-ish text), and its exact size. */
export function largeMessage(i: number, bytes: number, messageId: string): { raw: string; size: number } {
  const line = randomBytes(57).toString('base64'); // 76 characters
  const lines = Array.from({ length: Math.ceil(bytes / 78) }, (_, n) => (n % 1000 === 0 ? `line ${n} ${line}`.slice(0, 76) : line));
  const raw = makeMessage(i, { messageId, subject: `large ${i}`, body: lines.join('\r\n') });
  return { raw, size: Buffer.byteLength(raw) };
}

/** Per test file: registers the OAuth2 client; after each test stops what the test started. */
export function faultLifecycle(clientId: string) {
  const h = getHarness();
  const stops: (() => Promise<unknown>)[] = [];
  let daemons: Daemon[] = [];
  beforeAll(async () => {
    await oauthAdmin(h).registerClient(clientId, `secret-${clientId}`);
  });
  beforeEach((ctx) => {
    const mine: Daemon[] = [];
    daemons = mine;
    // The daemon's log is the first thing to read when a fault test fails.
    ctx.onTestFailed(() => {
      for (const d of mine) console.error(`--- daemon log (${ctx.task.name}) ---\n${d.output().split('\n').slice(-120).join('\n')}`);
    });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  return {
    h,
    async rig(o: RigOptions): Promise<Rig> {
      const user = uniqueUser(`flt-${o.protocol}`);
      const sink = await WebhookSink.start();
      stops.push(() => sink.close());
      const start = async (port: number) => {
        const p = await FaultProxy.start({ port });
        stops.push(() => p.close());
        return p;
      };
      const proxies: Proxies = {
        incoming: await start(o.protocol === 'imap' ? h.imapPort : h.pop3Port),
        webhook: await start(sink.port),
        token: await start(Number(new URL(h.oauthUrl).port)),
        submission: o.outgoing ? await start(h.submissionPort) : null,
      };
      const watcher = new ServerAckWatcher(proxies.incoming, o.protocol);
      const dir = tmpDataDir('mg-faults-');
      const listenPort = await freePort();
      const path = join(dir, 'mailgate.yaml');
      writeFileSync(path, faultConfigYaml(h, { ...o, user, clientId, listenPort, proxies }));
      const daemon = await startDaemon(path, listenPort);
      daemons.push(daemon);
      stops.push(() => daemon.stop('SIGKILL'));
      const api: Rig['api'] = async (method, path, body, headers = {}) => {
        const r = await fetch(`${daemon.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          body: body === undefined ? null : JSON.stringify(body),
        });
        const text = await r.text();
        return { status: r.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
      };
      return { h, user, sink, daemon, proxies, watcher, api };
    },
  };
}

/** The browser-less consent through the daemon (as e2e-helpers' authorizeThroughDaemon, with this file's admin token). */
export async function authorize(rig: Rig): Promise<void> {
  const { status, json } = await rig.api('POST', '/v1/accounts/support/authorize');
  if (status !== 200) throw new Error(`authorize: HTTP ${status} ${JSON.stringify(json)}`);
  const idp = await fetch(json.authorizationUrl as string, { redirect: 'manual' });
  const callback = idp.headers.get('location');
  if (idp.status !== 302 || !callback) throw new Error(`IdP answered ${idp.status}`);
  const cb = await fetch(callback);
  if (cb.status !== 200) throw new Error(`callback: HTTP ${cb.status} ${await cb.text()}`);
}
