import type { RelayConfig } from '../relay/types.js';
import type { CertificateCredential } from '../oauth/client-assertion.js';
import type { ServiceAccountKey } from '../oauth/service-account-key.js';
import type { ParsedConfig } from './schema.js';

/**
 * The validated, defaulted, frozen configuration, derived from the schema's
 * output (./schema.ts) plus what buildConfig settles (./build.ts): `*File`
 * secrets read into the plain key, relative paths made absolute, and the
 * defaults that depend on another value (ports by protocol and TLS,
 * requireTLS by host, user and from by the account's email, publicUrl by
 * listen, tenant by provider). Durations carry an `Ms` suffix, sizes a
 * `Bytes` suffix. Consumers never read files or the environment for config.
 */

/** One object type instead of an intersection, for readable hovers and errors. */
type Flat<T> = { [K in keyof T]: T[K] } & {};
/** `key` and `keyFile` as written become `key`, read from the file when it was given. */
type Secret<T, K extends string, V = string | undefined> = Omit<T, K | `${K}File`> & { [P in K]: V };

type Parsed = ParsedConfig;
type ParsedCredential = Parsed['credentials'][number];
type ParsedAccount = Parsed['accounts'][number];
type ParsedIncoming = ParsedAccount['incoming'];
type ParsedOutgoing = NonNullable<ParsedAccount['outgoing']>;

export type Provider = ParsedCredential['provider'];
export type Grant = ParsedCredential['grant'];
export type AfterDelivery = ParsedIncoming['afterDelivery'];
type Method = ParsedIncoming['auth']['method'];

export type AuthConfig = { method: Exclude<Method, 'password'>; credential: string } | { method: Extract<Method, 'password'>; password: string };

export type ServerConfig = Flat<Secret<Secret<Omit<Parsed['server'], 'publicUrl'>, 'adminToken'>, 'metricsToken'> & { publicUrl: string }>;

export type CredentialConfig = Flat<
  Secret<Omit<ParsedCredential, 'tenant' | 'clientId' | 'clientAssertion' | 'serviceAccountKeyFile' | 'clientSecretExpiresAt' | 'testingApp'>, 'clientSecret'> & {
    tenant: string;
    /** Epoch ms: when the client secret (or certificate) expires. */
    clientSecretExpiresAt?: number | undefined;
    /** Google: the admin marked the OAuth app as in "Testing" status. */
    testingApp?: boolean | undefined;
    /** For service_account: the key file's client_id. */
    clientId: string;
    /** grant: service_account: the key, read once (its private key is not an own property: never serialised). */
    serviceAccountKey?: ServiceAccountKey | undefined;
    /** Where the key came from, for messages (never its content). */
    serviceAccountKeyFile?: string | undefined;
    /** Entra certificate credentials (the key is not an own property). */
    clientCertificate?: CertificateCredential | undefined;
    clientAssertionAlg?: 'PS256' | 'RS256' | undefined;
  }
>;

/** What buildConfig settles on either side of an account. */
interface Endpoint {
  port: number;
  requireTLS: boolean;
  user: string;
  auth: AuthConfig;
}
type WithEndpoint<T> = Flat<Omit<T, keyof Endpoint> & Endpoint>;

/** Settled by buildConfig: imap unseen, pop3 all. */
type InitialSync = { initialSync: NonNullable<ParsedIncoming['initialSync']> };
export type ImapIncomingConfig = Flat<Omit<WithEndpoint<Extract<ParsedIncoming, { protocol: 'imap' }>>, 'initialSync'> & InitialSync>;
/** pop3 has one mailbox and always polls; the imap-only keys keep fixed values so any account can be read alike. */
export type Pop3IncomingConfig = Flat<
  Omit<WithEndpoint<Extract<ParsedIncoming, { protocol: 'pop3' }>>, 'mailboxes' | 'mode' | 'moveTo' | 'initialSync'> & {
    initialSync: 'all' | 'new';
    mailboxes: string[];
    mode: 'poll';
    moveTo: undefined;
  }
>;
export type IncomingConfig = ImapIncomingConfig | Pop3IncomingConfig;

export type OutgoingConfig = Flat<WithEndpoint<Omit<ParsedOutgoing, 'from'>> & { from: string }>;

export type AccountConfig = Flat<Omit<ParsedAccount, 'incoming' | 'outgoing'> & { incoming: IncomingConfig; outgoing: OutgoingConfig | undefined }>;

/**
 * `secret` is the newest secret (secrets[0]); `secrets` every one, newest
 * first (`secret: x` reads as `secrets: [x]`); `issueKeyPattern` the pattern
 * in force (the default when absent), null when off.
 */
export type WebhookConfig = Flat<
  Omit<Secret<Parsed['webhooks'][number], 'secret', string>, 'secrets' | 'issueKeyPattern'> & { secrets: string[]; issueKeyPattern: string | null }
>;
export type TokensConfig = Parsed['tokens'];
export type RetentionConfig = Parsed['retention'];

export type Config = Flat<
  Omit<Parsed, 'server' | 'credentials' | 'accounts' | 'webhooks' | 'relay'> & {
    configPath: string;
    configDir: string;
    server: ServerConfig;
    credentials: CredentialConfig[];
    accounts: AccountConfig[];
    webhooks: WebhookConfig[];
    /** The SMTP relay, only when the file has a `relay` section: passwords, certificate and key read, allowedFrom defaulted. */
    relay?: RelayConfig | undefined;
  }
>;

export interface ConfigIssue {
  /** The path as given by the caller. */
  file: string;
  line: number;
  col: number;
  message: string;
}
