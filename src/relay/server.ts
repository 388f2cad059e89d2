import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { AuthThrottle } from '../runtime/auth-throttle.js';
import { isLoopbackHost } from '../config/hosts.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { messageIdDomain, senderAllowed } from './addresses.js';
import { indexClients, RelayLogin, relayThrottle, type ClientIndex } from './auth.js';
import { assertRelayConfig } from './check.js';
import { DataSlots, readBounded } from './data.js';
import { missingHeaderLines } from './message.js';
import type { RelayClient, RelayConfig, RelayEvents, RelayOutbox } from './types.js';

/** Messages streaming at once; with 25 MB each that is at most ~400 MB of message bytes in memory. */
export const RELAY_MAX_CONCURRENT_MESSAGES = 16;
/** Connections at once (smtp-server answers 421 beyond); idle ones cost a socket and a few KB. */
export const RELAY_MAX_CLIENTS = 100;
/** Recipients per message: the HTTP send API's 100 each for to, cc and bcc. */
export const RELAY_MAX_RECIPIENTS = 300;
/** A silent socket is closed after this (RFC 5321 §4.5.3.2 suggests 5 minutes per command). */
export const RELAY_SOCKET_TIMEOUT_MS = 5 * 60_000;
/** One message's whole DATA phase; a client trickling bytes to hold a slot is cut off here. */
export const RELAY_DATA_TIMEOUT_MS = 10 * 60_000;
/** How long the outbox may take to store a message before the client is told 451 (try again). */
export const RELAY_ENQUEUE_TIMEOUT_MS = 30_000;
/**
 * stop() lets DATA in progress finish this long, then answers 421 (the
 * application tries again; nothing half-received is stored). Short, because
 * the outbox and delivery workers' own grace periods share the daemon's 10 s
 * shutdown budget after it.
 */
export const RELAY_STOP_GRACE_MS = 2_000;

export interface RelayServerOptions {
  config: RelayConfig;
  outbox: RelayOutbox;
  logger: Logger;
  events?: RelayEvents;
  maxConcurrentMessages?: number;
  stopGraceMs?: number;
  socketTimeoutMs?: number;
  dataTimeoutMs?: number;
  enqueueTimeoutMs?: number;
  throttle?: AuthThrottle;
  now?: () => number;
}

interface SessionState {
  /** The clients of the config this session connected under: a reload applies to new sessions. */
  clients: ClientIndex;
  client: RelayClient | null;
  slot: boolean;
  inData: boolean;
}

type Callback = (err?: Error | null) => void;

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

const SHUTTING_DOWN = '4.3.2 mailgate is shutting down; try again in a moment';
const BUSY = '4.3.2 too many messages are being received right now; try again in a moment';

/**
 * The SMTP submission listener for applications that cannot do OAuth2. A
 * client logs in with AUTH PLAIN or LOGIN, sends as one of its allowedFrom
 * addresses, and its message goes into the outbox, which sends it through
 * the client's account with XOAUTH2. The 250 to DATA names the outbox id and
 * is only sent once the outbox has the message.
 */
export class RelayServer {
  readonly name = 'relay';
  readonly #o: Required<Omit<RelayServerOptions, 'events' | 'throttle' | 'config' | 'now'>> & { events: RelayEvents | undefined; now: () => number };
  readonly #log: Logger;
  readonly #login: RelayLogin;
  readonly #slots: DataSlots;
  readonly #sessions = new Map<string, SessionState>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Refused logins whose reply is being held back (the throttle's delay); answered 421 at stop. */
  readonly #heldReplies = new Set<{ timer: NodeJS.Timeout; flush: () => void }>();
  #config: RelayConfig;
  #clients: ClientIndex;
  #server: SMTPServer | null = null;
  #stopping = false;

  constructor(opts: RelayServerOptions) {
    this.#o = {
      outbox: opts.outbox,
      logger: opts.logger,
      events: opts.events,
      maxConcurrentMessages: opts.maxConcurrentMessages ?? RELAY_MAX_CONCURRENT_MESSAGES,
      stopGraceMs: opts.stopGraceMs ?? RELAY_STOP_GRACE_MS,
      socketTimeoutMs: opts.socketTimeoutMs ?? RELAY_SOCKET_TIMEOUT_MS,
      dataTimeoutMs: opts.dataTimeoutMs ?? RELAY_DATA_TIMEOUT_MS,
      enqueueTimeoutMs: opts.enqueueTimeoutMs ?? RELAY_ENQUEUE_TIMEOUT_MS,
      now: opts.now ?? Date.now,
    };
    this.#log = opts.logger.child({ component: 'relay' });
    this.#login = new RelayLogin({ throttle: opts.throttle ?? relayThrottle(opts.now), logger: this.#log, events: opts.events });
    this.#slots = new DataSlots(this.#o.maxConcurrentMessages);
    this.#config = opts.config;
    this.#clients = indexClients(opts.config.clients);
  }

  /** Where it listens (the real port when the config said 0), or null when stopped. */
  address(): { host: string; port: number } | null {
    const a = this.#server?.server.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : null;
  }

  /** Messages streaming right now (slots taken). */
  get activeMessages(): number {
    return this.#slots.used;
  }

  /** Refuses a config it cannot run safely (RelayConfigError naming the key, e.g. relay.tls), else listens. */
  async start(): Promise<void> {
    if (this.#server) return;
    assertRelayConfig(this.#config);
    const server = new SMTPServer(this.#smtpOptions(this.#config));
    const { host, port } = this.#config.listen;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Connection-level trouble (a reset, a failed TLS handshake) is the client's; without a listener it would crash the daemon.
    server.on('error', (err: Error & { code?: string }) => this.#log.debug({ err: { message: err.message, code: err.code } }, 'relay connection error'));
    this.#server = server;
    this.#log.info({ listen: this.address(), tls: Boolean(this.#config.tls), clients: this.#config.clients.length }, 'SMTP relay listening');
  }

  /**
   * Stops listening at once; sessions not in DATA get 421 now, DATA in
   * progress may finish (its 250 or refusal is sent) for stopGraceMs, then
   * whatever is left gets 421.
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#stopping = true;
    try {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const held of [...this.#heldReplies]) held.flush();
      this.#closeSessions(server, (state) => !state?.inData);
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((r) => (grace = setTimeout(r, this.#o.stopGraceMs)))]);
      clearTimeout(grace);
      this.#closeSessions(server, () => true);
      await closed;
      this.#log.info('SMTP relay stopped');
    } finally {
      this.#server = null;
      this.#stopping = false;
    }
  }

  /**
   * A reloaded config: new clients and passwords apply to sessions that
   * connect from now on; a new certificate to new STARTTLS handshakes; a new
   * size limit to the next MAIL FROM. A new listen address, or TLS turned on
   * or off, restarts the listener. An invalid config throws and changes nothing.
   */
  async reconfigure(config: RelayConfig): Promise<void> {
    assertRelayConfig(config);
    const old = this.#config;
    const server = this.#server;
    if (server && config.tls && (config.tls.cert !== old.tls?.cert || config.tls.key !== old.tls?.key)) {
      server.updateSecureContext({ key: config.tls.key, cert: config.tls.cert });
    }
    this.#config = config;
    this.#clients = indexClients(config.clients);
    if (!server) return;
    if (old.listen.host !== config.listen.host || old.listen.port !== config.listen.port || Boolean(old.tls) !== Boolean(config.tls)) {
      // A listener that cannot come up on the new address stays down; the error says why (e.g. EADDRINUSE).
      await this.stop();
      await this.start();
      return;
    }
    server.options.size = config.maxMessageSizeBytes;
  }

  #smtpOptions(config: RelayConfig): SMTPServerOptions {
    return {
      secure: false,
      ...(config.tls ? { key: config.tls.key, cert: config.tls.cert } : {}),
      // Without a certificate there is no STARTTLS (smtp-server would otherwise offer its built-in test certificate).
      disabledCommands: config.tls ? [] : ['STARTTLS'],
      // AUTH in clear only where traffic never leaves the machine; elsewhere smtp-server answers 538 until STARTTLS.
      allowInsecureAuth: isLoopbackHost(config.listen.host),
      authMethods: ['PLAIN', 'LOGIN'],
      authRequiredMessage: '5.7.0 authentication required: log in with the relay username and password (AUTH PLAIN or LOGIN)',
      banner: 'mailgate relay',
      size: config.maxMessageSizeBytes,
      hideSize: false,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      disableReverseLookup: true,
      logger: false,
      maxClients: RELAY_MAX_CLIENTS,
      maxRecipients: RELAY_MAX_RECIPIENTS,
      socketTimeout: this.#o.socketTimeoutMs,
      // stop() closes sessions itself; smtp-server's own deadline is only the backstop.
      closeTimeout: this.#o.stopGraceMs + 1_000,
      onConnect: (session, cb) => this.#onConnect(session, cb),
      onAuth: (auth, session, cb) => void this.#onAuth(auth, session, cb),
      onMailFrom: (address, session, cb) => this.#onMailFrom(address, session, cb),
      onData: (stream, session, cb) => this.#onData(stream, session, cb),
      onClose: (session) => this.#onClose(session),
    };
  }

  #onConnect(session: SMTPServerSession, cb: Callback): void {
    if (this.#stopping) return cb(smtpError(421, SHUTTING_DOWN));
    this.#sessions.set(session.id, { clients: this.#clients, client: null, slot: false, inData: false });
    cb();
  }

  #onClose(session: SMTPServerSession): void {
    const state = this.#sessions.get(session.id);
    if (state?.slot) {
      state.slot = false;
      this.#slots.release();
    }
    this.#sessions.delete(session.id);
  }

  async #onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): Promise<void> {
    const state = this.#sessions.get(session.id);
    if (!state || this.#stopping) return cb(smtpError(421, SHUTTING_DOWN));
    const address = session.remoteAddress;
    let result;
    try {
      result = await this.#login.attempt(address, state.clients, {
        username: auth.username ?? '',
        password: auth.password ?? '',
        authzid: auth.method === 'PLAIN' && auth.authcid ? (auth.authzid ?? '') : '',
      });
    } catch (err) {
      this.#log.error({ err }, 'relay login check failed');
      return cb(smtpError(454, '4.7.0 temporary authentication failure; try again later'));
    }
    if (result.ok) {
      state.client = result.client;
      return cb(null, { user: result.client.name });
    }
    const reply = smtpError(result.code, result.message);
    if (result.delayMs <= 0) return cb(reply);
    const held = {
      timer: setTimeout(() => held.flush(), result.delayMs),
      flush: () => {
        clearTimeout(held.timer);
        if (!this.#heldReplies.delete(held)) return;
        cb(this.#stopping ? smtpError(421, SHUTTING_DOWN) : reply);
      },
    };
    this.#heldReplies.add(held);
  }

  #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
    const state = this.#sessions.get(session.id);
    const client = state?.client;
    // smtp-server already answers 530 before AUTH; this is the second lock on the door.
    if (!state || !client) return cb(smtpError(530, '5.7.0 authentication required'));
    if (!senderAllowed(client, address.address)) {
      this.#refused(client, 550);
      this.#log.info({ client: client.name, from: address.address }, 'relay sender outside the client’s allowedFrom refused');
      return cb(smtpError(550, `5.7.1 relay client ${client.name} may not send as <${address.address}>; see relay.clients[].allowedFrom`));
    }
    if (!state.slot) {
      if (!this.#slots.tryTake()) {
        this.#refused(client, 421);
        this.#log.warn({ client: client.name, max: this.#slots.max }, 'relay refused a message: too many streaming at once');
        return cb(smtpError(421, BUSY));
      }
      state.slot = true;
    }
    cb();
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    const state = this.#sessions.get(session.id);
    const client = state?.client;
    if (!state || !client) return cb(smtpError(530, '5.7.0 authentication required'));
    if (!state.slot) {
      // Not reachable through MAIL FROM; kept so the bound holds whatever smtp-server does.
      if (!this.#slots.tryTake()) return cb(smtpError(421, BUSY));
      state.slot = true;
    }
    state.inData = true;
    const work = this.#receive(stream, session, state, client)
      .then(
        (reply) => cb(null, reply),
        (err: Error) => cb(err),
      )
      .finally(() => {
        state.inData = false;
        if (state.slot) {
          state.slot = false;
          this.#slots.release();
        }
        this.#inFlight.delete(work);
      });
    this.#inFlight.add(work);
  }

  /** Reads, bounds, stores; resolves with the 250 text or throws the SMTP error to answer. */
  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession, state: SessionState, client: RelayClient): Promise<string> {
    const limit = this.#config.maxMessageSizeBytes;
    const tooSlow = () => this.#closeSessions(this.#server, (s) => s === state, '4.4.2 the message took too long to arrive');
    const deadline = setTimeout(tooSlow, this.#o.dataTimeoutMs);
    let outcome;
    try {
      outcome = await readBounded(stream, limit);
    } finally {
      clearTimeout(deadline);
    }
    if (outcome.kind === 'aborted') {
      this.#log.info({ client: client.name }, 'relay session ended during DATA; nothing stored');
      throw smtpError(421, SHUTTING_DOWN);
    }
    if (outcome.kind === 'oversize') {
      this.#refused(client, 552);
      this.#log.info({ client: client.name, bytes: outcome.bytes, limit }, 'relay message over relay.maxMessageSize refused');
      throw smtpError(552, `5.3.4 the message is larger than ${limit} bytes (relay.maxMessageSize)`);
    }
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const to = session.envelope.rcptTo.map((r) => r.address);
    const now = this.#o.now();
    const { lines, added } = missingHeaderLines(outcome.message.body, { domain: messageIdDomain(from), now });
    const raw = outcome.message.withPrefix(lines);
    let id: string;
    try {
      id = await this.#enqueue({ client: client.name, account: client.account, envelope: { from, to }, raw, now });
    } catch (err) {
      this.#refused(client, 451);
      this.#log.warn({ client: client.name, error: describeError(err) }, 'the outbox did not take a relayed message; the client was told to try again');
      throw smtpError(451, '4.3.0 the message could not be stored right now; try again later');
    }
    try {
      this.#o.events?.relayed(client.name);
    } catch (err) {
      this.#log.error({ err }, 'relay event listener failed');
    }
    this.#log.info({ client: client.name, account: client.account, outbox: id, bytes: raw.length, recipients: to.length, added }, 'relayed message queued');
    return `2.0.0 queued as ${id}`;
  }

  async #enqueue(input: Parameters<RelayOutbox['enqueueRaw']>[0]): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the outbox did not answer within ${this.#o.enqueueTimeoutMs} ms`)), this.#o.enqueueTimeoutMs);
    });
    try {
      return (await Promise.race([this.#o.outbox.enqueueRaw(input), timeout])).id;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Answers 421 (which closes the connection) to every session `which` picks. */
  #closeSessions(server: SMTPServer | null, which: (state: SessionState | undefined) => boolean, message = SHUTTING_DOWN): void {
    if (!server) return;
    for (const connection of [...server.connections]) {
      if (which(this.#sessions.get(connection.id))) connection.send(421, message);
    }
  }

  #refused(client: RelayClient, code: number): void {
    try {
      this.#o.events?.refused(client.name, code);
    } catch (err) {
      this.#log.error({ err }, 'relay event listener failed');
    }
  }
}
