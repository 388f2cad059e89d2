import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per daemon instance (not prom-client's global one), so tests
 * can run several daemons in one process. Components register their metrics
 * here by name through `metrics()`.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailgate_' });
  return {
    registry,
    messagesIngested: new Counter({
      name: 'mailgate_messages_ingested_total',
      help: 'Messages taken from a mail server and stored',
      labelNames: ['account', 'protocol'],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'mailgate_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, failed)',
      labelNames: ['webhook', 'event', 'outcome'],
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'mailgate_delivery_latency_seconds',
      help: 'Time from a message being stored to its webhook acknowledging it',
      labelNames: ['webhook'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'mailgate_delivery_queue_depth',
      help: 'Deliveries waiting by status',
      labelNames: ['status'],
      registers: [registry],
    }),
    connectorState: new Gauge({
      name: 'mailgate_connector_state',
      help: 'Incoming connector state per account (1 for the current state)',
      labelNames: ['account', 'state'],
      registers: [registry],
    }),
    tokenRefreshes: new Counter({
      name: 'mailgate_token_refreshes_total',
      help: 'Token endpoint calls by outcome (ok, transient, permanent)',
      labelNames: ['account', 'outcome'],
      registers: [registry],
    }),
    reauthRequired: new Gauge({
      name: 'mailgate_account_reauth_required',
      help: '1 when the account needs to be authorized again',
      labelNames: ['account'],
      registers: [registry],
    }),
    clientSecretExpires: new Gauge({
      name: 'mailgate_client_secret_expires_timestamp_seconds',
      help: 'When a credential\'s client secret or certificate expires (clientSecretExpiresAt, or the certificate\'s notAfter), Unix seconds',
      labelNames: ['credential'],
      registers: [registry],
    }),
    refreshTokenAge: new Gauge({
      name: 'mailgate_refresh_token_age_seconds',
      help: 'Age of the refresh token in use (providers expire idle ones)',
      labelNames: ['account'],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'mailgate_auth_failures_total',
      help: 'Requests refused for a missing or wrong token, by where (api, admin sign-in, metrics)',
      labelNames: ['surface'],
      registers: [registry],
    }),
    authLockouts: new Counter({
      name: 'mailgate_auth_lockouts_total',
      help: 'Lockouts of a client address after repeated wrong tokens',
      labelNames: ['surface'],
      registers: [registry],
    }),
    storageFull: new Gauge({
      name: 'mailgate_storage_full',
      help: '1 while the database disk is full and no new mail is taken',
      registers: [registry],
    }),
    outbox: new Counter({
      name: 'mailgate_outbox_total',
      help: 'Outgoing messages by outcome (sent, retry, failed)',
      labelNames: ['account', 'outcome'],
      registers: [registry],
    }),
    relayLoginFailures: new Counter({
      name: 'mailgate_relay_login_failures_total',
      help: 'Refused SMTP relay logins, by relay client ("(unknown)" for a username no client has)',
      labelNames: ['client'],
      registers: [registry],
    }),
    relayMessages: new Counter({
      name: 'mailgate_relay_messages_total',
      help: 'SMTP relay transactions by client and outcome (relayed, or the refusal code: 550, 552, 421, 451)',
      labelNames: ['client', 'outcome'],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
