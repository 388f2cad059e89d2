import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { silentLogger } from '../../../src/log.js';
import { RelayServer, type RelayServerOptions } from '../../../src/relay/server.js';
import type { RelayClient, RelayConfig, RelayEvents, RelayMessage, RelayOutbox } from '../../../src/relay/types.js';
import { tmpDataDir } from '../../harness/index.js';

/**
 * What the relay tests share: a RelayServer on loopback with one client, an
 * in-test outbox that records what it was given (a stand-in for the real
 * outbox, which the lead wires later), recorded events, a line-level SMTP
 * client for exact reply codes, nodemailer as the legacy application, and a
 * throwaway certificate made with the openssl binary.
 */

export const ACCOUNT = 'support';
export const SENDER = 'support@example.com';

export interface Recorded {
  client: string;
  account: string;
  envelope: { from: string; to: string[] };
  /** The raw bytes, unless the outbox was told to keep only their size and hash. */
  raw: Buffer | null;
  bytes: number;
  sha256: string;
}

/** Records every enqueueRaw; can be made to fail or to wait for the test. */
export class RecordingOutbox implements RelayOutbox {
  readonly messages: Recorded[] = [];
  keepRaw = true;
  failWith: Error | null = null;
  /** When set, enqueueRaw waits for it before resolving (the "commit" takes that long). */
  hold: Promise<void> | null = null;
  calls = 0;
  #next = 1;

  async enqueueRaw(input: RelayMessage): Promise<{ id: string }> {
    this.calls++;
    if (this.hold) await this.hold;
    if (this.failWith) throw this.failWith;
    this.messages.push({
      client: input.client,
      account: input.account,
      envelope: input.envelope,
      raw: this.keepRaw ? Buffer.from(input.raw) : null,
      bytes: input.raw.length,
      sha256: createHash('sha256').update(input.raw).digest('hex'),
    });
    return { id: `out_test${String(this.#next++).padStart(4, '0')}` };
  }
}

export class RecordingEvents implements RelayEvents {
  readonly loginFailures: { address: string; client: string | null }[] = [];
  readonly relayedBy: string[] = [];
  readonly refusals: { client: string; code: number }[] = [];
  loginFailed(address: string, client: string | null): void {
    this.loginFailures.push({ address, client });
  }
  relayed(client: string): void {
    this.relayedBy.push(client);
  }
  refused(client: string, code: number): void {
    this.refusals.push({ client, code });
  }
}

/** A client from the YAML: its password in plain text. */
export type PlainClient = Extract<RelayClient, { password: string }>;

export function scannerClient(over: Partial<PlainClient> = {}): PlainClient {
  return {
    name: 'scanner',
    username: 'scanner',
    password: `pw-${randomBytes(6).toString('hex')}`,
    account: ACCOUNT,
    allowedFrom: [SENDER],
    ...over,
  };
}

export function relayConfig(over: Partial<RelayConfig> = {}): RelayConfig {
  return { listen: { host: '127.0.0.1', port: 0 }, maxMessageSizeBytes: 1024 * 1024, clients: [scannerClient()], ...over };
}

export interface Rig {
  relay: RelayServer;
  port: number;
  outbox: RecordingOutbox;
  events: RecordingEvents;
  config: RelayConfig;
  client: PlainClient;
}

export async function startRig(config: RelayConfig = relayConfig(), opts: Partial<RelayServerOptions> = {}): Promise<Rig> {
  const outbox = new RecordingOutbox();
  const events = new RecordingEvents();
  const relay = new RelayServer({ config, outbox, events, logger: silentLogger(), stopGraceMs: 2_000, ...opts });
  await relay.start();
  const port = relay.address()?.port ?? 0;
  return { relay, port, outbox, events, config, client: config.clients[0] as PlainClient };
}

/** nodemailer as the legacy application: plain SMTP submission with a password. */
export function legacyApp(port: number, auth: { user: string; pass: string; method?: 'PLAIN' | 'LOGIN' }, extra: Partial<SMTPTransport.Options> = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user: auth.user, pass: auth.pass },
    ...(auth.method ? { authMethod: auth.method } : {}),
    logger: false,
    ...extra,
  });
}

/** A self-signed certificate for 127.0.0.1 and localhost, made by the openssl binary. */
export function makeTestCertificate(): { cert: string; key: string } {
  const dir = tmpDataDir('mg-relay-tls-');
  const [certPath, keyPath] = [join(dir, 'relay.crt'), join(dir, 'relay.key')];
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyPath, '-out', certPath,
  ], { stdio: 'ignore' }); // prettier-ignore
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

export interface Reply {
  code: number;
  lines: string[];
  /** The text after the code on the last line. */
  text: string;
}

/**
 * A line-level SMTP client: send a command, read its reply. For the exact
 * codes and the orders nodemailer never produces (MAIL before AUTH, SIZE=,
 * a session held in DATA while the relay stops).
 */
export class SmtpTalk {
  #socket: Socket;
  #buffer = '';
  #waiting: ((r: Reply) => void)[] = [];
  #replies: Reply[] = [];
  #partial: string[] = [];
  #closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    this.#attach(socket);
  }

  static async open(port: number, host = '127.0.0.1'): Promise<{ talk: SmtpTalk; greeting: Reply }> {
    const socket = netConnect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const talk = new SmtpTalk(socket);
    return { talk, greeting: await talk.reply() };
  }

  get closed(): boolean {
    return this.#closed;
  }

  #attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('utf8');
      this.#parse();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiting.splice(0)) w({ code: 0, lines: [], text: 'connection closed' });
    });
  }

  #parse(): void {
    for (;;) {
      const nl = this.#buffer.indexOf('\r\n');
      if (nl === -1) return;
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 2);
      this.#partial.push(line);
      if (line[3] === '-') continue;
      const reply = { code: Number(line.slice(0, 3)), lines: this.#partial, text: line.slice(4) };
      this.#partial = [];
      const w = this.#waiting.shift();
      if (w) w(reply);
      else this.#replies.push(reply);
    }
  }

  /** Whether a reply arrived that nobody has read yet. */
  get hasReply(): boolean {
    return this.#replies.length > 0;
  }

  reply(): Promise<Reply> {
    const r = this.#replies.shift();
    if (r) return Promise.resolve(r);
    if (this.#closed) return Promise.resolve({ code: 0, lines: [], text: 'connection closed' });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  async login(username: string, password: string): Promise<Reply> {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`);
  }

  /** STARTTLS, then the handshake with `ca` trusted; the next reply comes over TLS. */
  async startTls(ca: string): Promise<Reply> {
    const r = await this.command('STARTTLS');
    if (r.code !== 220) return r;
    const plain = this.#socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#attach(secure);
    return r;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A message as an old application writes it: no Message-ID, no Date. */
export function bareMessage(subject: string, body = 'scanned page attached\r\n'): Buffer {
  return Buffer.from(`From: Scanner <${SENDER}>\r\nTo: desk@example.org\r\nSubject: ${subject}\r\n\r\n${body}`, 'utf8');
}
