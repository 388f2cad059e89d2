/**
 * The validated, defaulted, frozen configuration. Durations carry an `Ms`
 * suffix, sizes a `Bytes` suffix; `*File` secrets are already read into the
 * plain key, and relative paths are absolute. Consumers never read files or
 * the environment for config.
 */

export type Provider = 'google' | 'microsoft' | 'microsoft-gcc-high' | 'custom';
export type Grant = 'authorization_code' | 'client_credentials';

export interface ServerConfig {
  listen: { host: string; port: number };
  /** No trailing slash. The OAuth2 redirect URL is `${publicUrl}/oauth2/callback`. */
  publicUrl: string;
  adminToken: string | undefined;
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
  /** Extra Host names (or host:port) /v1, /admin and /oauth2 answer to, besides listen and publicUrl. */
  allowedHosts: string[];
  /** Addresses (or CIDRs) of reverse proxies whose X-Forwarded-For is believed (client address for lockouts and logs). */
  trustProxy: string[];
}

export interface CredentialConfig {
  name: string;
  provider: Provider;
  clientId: string;
  clientSecret: string | undefined;
  authorizationEndpoint: string | undefined;
  tokenEndpoint: string | undefined;
  deviceAuthorizationEndpoint: string | undefined;
  scopes: string[] | undefined;
  tenant: string;
  grant: Grant;
}

export type AuthConfig =
  | { method: 'xoauth2' | 'oauthbearer'; credential: string }
  | { method: 'password'; password: string };

export type AfterDelivery = 'seen' | 'move' | 'delete' | 'none';

export interface IncomingConfig {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  tls: boolean;
  /** With tls: false, refuse to log in unless STARTTLS is offered (default: true for non-loopback hosts). */
  requireTLS: boolean;
  user: string;
  auth: AuthConfig;
  mailboxes: string[];
  mode: 'idle' | 'poll';
  pollIntervalMs: number;
  idleResyncMs: number;
  afterDelivery: AfterDelivery;
  moveTo: string | undefined;
  /** A larger message is not downloaded; it is reported as message.failed (reason too_large) and left on the server. */
  maxMessageSizeBytes: number;
}

export interface OutgoingConfig {
  host: string;
  port: number;
  tls: boolean;
  requireTLS: boolean;
  user: string;
  from: string;
  auth: AuthConfig;
}

export interface AccountConfig {
  name: string;
  email: string;
  incoming: IncomingConfig;
  outgoing: OutgoingConfig | undefined;
  webhook: string;
}

export interface WebhookConfig {
  name: string;
  url: string;
  secret: string;
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number };
  timeoutMs: number;
  maxInlineAttachmentBytes: number;
  /** No webhook body is larger: text and html are cut (truncated), attachments over the rest of the budget omitted. */
  maxBodyBytes: number;
  concurrency: number;
}

export interface TokensConfig {
  refreshBeforeMs: number;
  refreshConcurrency: number;
}

export interface Config {
  configPath: string;
  configDir: string;
  server: ServerConfig;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  credentials: CredentialConfig[];
  accounts: AccountConfig[];
  webhooks: WebhookConfig[];
  tokens: TokensConfig;
  retention: RetentionConfig;
}

/**
 * How long finished work is kept. `messagesMs`: the raw body of a message
 * whose webhook was delivered and whose afterDelivery was applied (the row
 * itself stays, for deduplication and the send loop guard). `outboxMs`: sent
 * and failed outgoing messages, with their bodies and idempotency keys.
 */
export interface RetentionConfig {
  messagesMs: number;
  outboxMs: number;
}

export interface ConfigIssue {
  /** The path as given by the caller. */
  file: string;
  line: number;
  col: number;
  message: string;
}
