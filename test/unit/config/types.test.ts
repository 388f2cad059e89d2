import { describe, expectTypeOf, it } from 'vitest';
import type * as T from '../../../src/config/types.js';
import type { CertificateCredential } from '../../../src/oauth/client-assertion.js';
import type { ServiceAccountKey } from '../../../src/oauth/service-account-key.js';

/**
 * The resolved types are derived from the schema now; these are the
 * hand-written ones they replaced, kept to prove the derived ones are the
 * same (checked by `npm run typecheck`; at run time these tests do nothing).
 */
// eslint-disable-next-line @typescript-eslint/no-namespace -- one name per old type, as it was spelled
namespace Before {
  export type Provider = 'google' | 'microsoft' | 'microsoft-gcc-high' | 'custom';
  export type Grant = 'authorization_code' | 'client_credentials' | 'service_account';
  export interface ServerConfig {
    listen: { host: string; port: number };
    publicUrl: string;
    adminToken: string | undefined;
    metricsToken: string | undefined;
    allowedHosts: string[];
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
    clientSecretExpiresAt?: number | undefined;
    testingApp?: boolean | undefined;
    serviceAccountKey?: ServiceAccountKey | undefined;
    serviceAccountKeyFile?: string | undefined;
    clientCertificate?: CertificateCredential | undefined;
    clientAssertionAlg?: 'PS256' | 'RS256' | undefined;
  }
  export type AuthConfig = { method: 'xoauth2' | 'oauthbearer'; credential: string } | { method: 'password'; password: string };
  export type AfterDelivery = 'seen' | 'move' | 'delete' | 'none';
  export interface IncomingConfig {
    protocol: 'imap' | 'pop3';
    host: string;
    port: number;
    tls: boolean;
    requireTLS: boolean;
    user: string;
    auth: AuthConfig;
    mailboxes: string[];
    mode: 'idle' | 'poll';
    pollIntervalMs: number;
    idleResyncMs: number;
    afterDelivery: AfterDelivery;
    moveTo: string | undefined;
    maxMessageSizeBytes: number;
    /** Issue 16. */
    initialSync: 'unseen' | 'all' | 'new';
  }
  export interface ImapIncomingConfig extends Omit<IncomingConfig, 'protocol'> {
    protocol: 'imap';
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
  export interface WebhookConfig {
    name: string;
    url: string;
    secret: string;
    maxAttempts: number;
    backoff: { initialMs: number; maxMs: number };
    timeoutMs: number;
    maxInlineAttachmentBytes: number;
    maxBodyBytes: number;
    concurrency: number;
    /** Issue 16. */
    signature: 'mailgate' | 'standard';
    secrets: string[];
    issueKeyPattern: string | null;
  }
  export interface TokensConfig {
    refreshBeforeMs: number;
    refreshConcurrency: number;
  }
  export interface RetentionConfig {
    messagesMs: number;
    outboxMs: number;
  }
}

describe('resolved types', () => {
  it('are the hand-written ones they replaced', () => {
    expectTypeOf<T.Provider>().toEqualTypeOf<Before.Provider>();
    expectTypeOf<T.Grant>().toEqualTypeOf<Before.Grant>();
    expectTypeOf<T.AfterDelivery>().toEqualTypeOf<Before.AfterDelivery>();
    expectTypeOf<T.AuthConfig>().toEqualTypeOf<Before.AuthConfig>();
    expectTypeOf<T.ServerConfig>().toEqualTypeOf<Before.ServerConfig>();
    expectTypeOf<T.CredentialConfig>().toEqualTypeOf<Before.CredentialConfig>();
    expectTypeOf<T.OutgoingConfig>().toEqualTypeOf<Before.OutgoingConfig>();
    expectTypeOf<T.WebhookConfig>().toEqualTypeOf<Before.WebhookConfig>();
    expectTypeOf<T.TokensConfig>().toEqualTypeOf<Before.TokensConfig>();
    expectTypeOf<T.RetentionConfig>().toEqualTypeOf<Before.RetentionConfig>();
    expectTypeOf<T.Config['logLevel']>().toEqualTypeOf<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'>();
    expectTypeOf<keyof T.Config>().toEqualTypeOf<
      'configPath' | 'configDir' | 'server' | 'dataDir' | 'logLevel' | 'credentials' | 'accounts' | 'webhooks' | 'tokens' | 'retention' | 'relay'
    >();
    expectTypeOf<T.AccountConfig>().toEqualTypeOf<{ name: string; email: string; enabled: boolean; incoming: T.IncomingConfig; outgoing: T.OutgoingConfig | undefined; webhook: string }>();
  });

  it('narrow incoming by protocol, with every field the old type had on either branch', () => {
    expectTypeOf<keyof T.ImapIncomingConfig>().toEqualTypeOf<keyof Before.IncomingConfig>();
    expectTypeOf<keyof T.Pop3IncomingConfig>().toEqualTypeOf<keyof Before.IncomingConfig>();
    expectTypeOf<T.IncomingConfig>().toExtend<Before.IncomingConfig>();
    expectTypeOf<T.ImapIncomingConfig>().toEqualTypeOf<Before.ImapIncomingConfig>();
    expectTypeOf<T.Pop3IncomingConfig['mode']>().toEqualTypeOf<'poll'>();
    expectTypeOf<T.Pop3IncomingConfig['moveTo']>().toEqualTypeOf<undefined>();
    expectTypeOf<T.Pop3IncomingConfig['initialSync']>().toEqualTypeOf<'all' | 'new'>();
  });
});
