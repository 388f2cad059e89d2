/**
 * What the SMTP relay needs from the rest of mailgate, and nothing more: its
 * resolved config (the `relay` section once buildConfig has read the secret
 * and certificate files and filled the defaults), a sink for accepted
 * messages, and optional listeners for status and metrics. The relay imports
 * no store, config or outgoing module; the daemon's wiring adapts those to
 * these interfaces.
 */

/** Where the relay listens (`relay.listen`, e.g. `127.0.0.1:2525`). */
export interface RelayListen {
  host: string;
  port: number;
}

/** `relay.tls` with `certFile` and `keyFile` already read: PEM text. */
export interface RelayTls {
  cert: string | Buffer;
  key: string | Buffer;
}

interface RelayClientBase {
  /** `relay.clients[].name`: what logs, metrics and the admin UI call it. */
  name: string;
  /** What the application logs in with (AUTH PLAIN / AUTH LOGIN), compared exactly. */
  username: string;
  /** The account whose outgoing server and token send this client's mail. */
  account: string;
  /** Envelope senders (MAIL FROM) this client may use, lower-cased; buildConfig defaults it to the account's email. */
  allowedFrom: readonly string[];
}

/**
 * One application allowed to relay. A client from the YAML carries its
 * password as written (or read from `passwordFile`); a client kept in the
 * database carries only a slow hash of it (`hashRelayPassword`).
 */
export type RelayClient = RelayClientBase & ({ password: string; passwordHash?: undefined } | { passwordHash: string; password?: undefined });

export interface RelayConfig {
  listen: RelayListen;
  /** STARTTLS certificate; optional on a loopback listener only. */
  tls?: RelayTls | undefined;
  /** `relay.maxMessageSize` in bytes: advertised with SIZE, enforced while DATA streams. */
  maxMessageSizeBytes: number;
  clients: readonly RelayClient[];
}

/** What the relay hands over once a message was received whole and within bounds. */
export interface RelayMessage {
  /** The relay client's name. */
  client: string;
  /** The client's account: the message is sent through its outgoing server. */
  account: string;
  /** The SMTP envelope as the client gave it: Bcc recipients are only here, never in `raw`. */
  envelope: { from: string; to: string[] };
  /** The client's bytes, plus `Message-ID` and `Date` at the top when they were missing. */
  raw: Buffer;
  /** When the relay accepted it (ms since the epoch). */
  now: number;
}

/**
 * Where accepted messages go. The relay answers `250 2.0.0 queued as <id>`
 * only after this resolved, so it must resolve only once the message is
 * durable (the outbox row committed); a rejection answers 451 and the
 * application tries again later.
 */
export interface RelayOutbox {
  enqueueRaw(input: RelayMessage): Promise<{ id: string }>;
}

/**
 * Optional listeners for `mailgate status`, the admin UI and metrics. They
 * are called synchronously and must not throw.
 */
export interface RelayEvents {
  /** A login was refused: a wrong password for `client`, or a username no client has (`null`). */
  loginFailed(address: string, client: string | null): void;
  /** A message of `client` was stored in the outbox. */
  relayed(client: string): void;
  /**
   * A transaction of a logged-in client was refused by mailgate: 550 (sender
   * not allowed), 552 (too big while streaming), 421 (too many messages at
   * once), 451 (the outbox could not take it).
   */
  refused(client: string, code: number): void;
}
