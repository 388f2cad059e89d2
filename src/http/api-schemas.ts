/**
 * JSON schemas of the HTTP API, one per route: @fastify/swagger turns them
 * into GET /openapi.json, and fastify validates params and query strings
 * with them. Answers list their fields but keep `additionalProperties: true`,
 * so the serializer never drops a field a route adds. Bodies whose rules
 * live in a zod schema with plain-word errors (the send request) are
 * described here and validated there (see DOCUMENTED_ONLY).
 */

const str = { type: 'string' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const time = { type: ['string', 'null'], format: 'date-time' } as const;
const open = <P extends Record<string, unknown>>(properties: P, required: (keyof P & string)[] = []) =>
  ({ type: 'object', properties, required, additionalProperties: true }) as const;

/** Every error answer: `{ error, code }` (plus details such as `systemCode`, `fields`). */
export const errorAnswer = open(
  {
    error: { type: 'string', description: 'what happened, in plain words' },
    code: { type: 'string', description: 'the catalogue code (docs/architecture.md, "Errors")' },
    systemCode: { type: 'string', description: 'the socket, DNS, TLS or file code behind it, when there is one (ECONNREFUSED, …)' },
  },
  ['error', 'code'],
);

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { description: 'error', ...errorAnswer }]));

const nameParam = { type: 'object', properties: { name: { type: 'string', maxLength: 200, description: 'the account name' } }, required: ['name'] } as const;
const idParam = { type: 'object', properties: { id: { type: 'string', maxLength: 200 } }, required: ['id'] } as const;

const sideResult = open({ ok: { type: 'boolean' }, error: nullableString, code: { ...nullableString, description: 'ECONNREFUSED, AUTH_FAILED, …; null when ok' } }, ['ok', 'error']);

const tokenStatus = open({
  state: { type: 'string', enum: ['ok', 'expiring', 'reauth_required', 'missing'] },
  expiresAt: time,
  lastRefreshAt: time,
  refreshTokenIssuedAt: time,
  lastError: nullableString,
});

const account = open({
  name: str,
  email: str,
  incoming: open({ protocol: { type: 'string', enum: ['imap', 'pop3'] }, state: str, lastSuccessAt: time, lastError: nullableString }),
  outgoing: open({ lastSuccessAt: time, lastError: nullableString }),
  token: tokenStatus,
  owner: nullableString,
});

const delivery = open({
  id: str,
  account: str,
  webhook: str,
  event: str,
  messageId: nullableString,
  status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
  attempts: { type: 'integer' },
  nextAttemptAt: time,
  lastStatus: { type: ['integer', 'null'] },
  lastError: nullableString,
  responseExcerpt: nullableString,
  createdAt: time,
  deliveredAt: time,
});

const outboxMessage = open({
  id: str,
  account: str,
  status: { type: 'string', enum: ['queued', 'sent', 'failed'] },
  attempts: { type: 'integer' },
  lastError: nullableString,
  messageId: nullableString,
  createdAt: time,
  sentAt: time,
});

const addressList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } as const;
const sendBody = {
  type: 'object',
  description: 'validated by the send request rules (src/outgoing/send-request.ts), which name every wrong field',
  properties: {
    to: addressList,
    cc: addressList,
    bcc: addressList,
    from: str,
    replyTo: str,
    subject: str,
    text: str,
    html: str,
    inReplyTo: str,
    references: addressList,
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    attachments: {
      type: 'array',
      items: open({ filename: str, contentType: str, content: { type: 'string', description: 'base64' }, contentId: str }, ['filename', 'content']),
    },
    force: { type: 'boolean', description: 'send although the loop guard would refuse' },
  },
  required: ['to'],
} as const;

export const SCHEMAS = {
  healthz: { tags: ['health'], summary: 'liveness', response: { 200: open({ status: { type: 'string', enum: ['ok'] } }, ['status']) } },
  readyz: {
    tags: ['health'],
    summary: 'readiness: database open and taking writes, config loaded',
    response: { 200: open({ status: str }, ['status']), 503: open({ status: str, reason: nullableString }, ['status']) },
  },
  metrics: { tags: ['health'], summary: 'Prometheus text format (server.metricsToken closes it)', response: { 200: { description: 'text/plain; version=0.0.4', type: 'string' }, ...errors(401, 429) } },
  openapi: { tags: ['health'], summary: 'this document (OpenAPI 3)', response: { 200: { description: 'the OpenAPI document', type: 'object', additionalProperties: true } } },
  root: { tags: ['admin UI'], summary: 'redirects to /admin', response: { 302: { description: 'to /admin' } } },
  accounts: { tags: ['accounts'], summary: 'accounts, their connections and tokens', response: { 200: open({ accounts: { type: 'array', items: account }, total: { type: 'integer' }, nextOffset: { type: ['integer', 'null'] } }, ['accounts']), ...errors(400, 401) } },
  cluster: {
    tags: ['accounts'],
    summary: 'the live replicas and the accounts each holds (several replicas on PostgreSQL)',
    response: {
      200: open(
        { nodes: { type: 'array', items: open({ name: str, startedAt: time, lastSeenAt: time, accounts: { type: 'array', items: str } }) } },
        ['nodes'],
      ),
      ...errors(401),
    },
  },
  testAccount: {
    tags: ['accounts'],
    summary: 'log in to the incoming and outgoing servers once',
    params: nameParam,
    response: { 200: open({ incoming: sideResult, outgoing: sideResult }, ['incoming', 'outgoing']), ...errors(401, 404) },
  },
  authorize: {
    tags: ['accounts'],
    summary: 'start an authorization: the URL to open in a browser',
    params: nameParam,
    response: { 200: open({ authorizationUrl: str, expiresAt: time }, ['authorizationUrl']), ...errors(400, 401, 404, 409) },
  },
  send: {
    tags: ['outbox'],
    summary: 'queue a message (Idempotency-Key header: a repeat answers 200 with the same id)',
    params: nameParam,
    body: sendBody,
    response: {
      202: open({ id: str, status: str, messageId: nullableString }, ['id', 'status']),
      200: open({ id: str, status: str, messageId: nullableString }, ['id', 'status']),
      ...errors(400, 401, 404, 409, 413),
    },
  },
  outboxGet: { tags: ['outbox'], summary: 'an outgoing message', params: idParam, response: { 200: outboxMessage, ...errors(401, 404) } },
  outboxRetry: { tags: ['outbox'], summary: 'queue a failed outgoing message again', params: idParam, response: { 200: outboxMessage, ...errors(401, 404, 409) } },
  deliveries: {
    tags: ['deliveries'],
    summary: 'webhook deliveries, newest first',
    querystring: {
      type: 'object',
      properties: { status: { type: 'string', description: 'pending, delivered or failed' }, limit: { type: 'string', description: '1 to 1000, default 100' } },
    },
    response: { 200: open({ deliveries: { type: 'array', items: delivery } }, ['deliveries']), ...errors(400, 401) },
  },
  deliveryRetry: { tags: ['deliveries'], summary: 'replay one delivery', params: idParam, response: { 200: delivery, ...errors(401, 404, 409) } },
  retryFailed: { tags: ['deliveries'], summary: 'replay every parked delivery', response: { 200: open({ retried: { type: 'integer' } }, ['retried']), ...errors(401) } },
  raw: {
    tags: ['deliveries'],
    summary: 'the raw RFC 822 message as received',
    params: idParam,
    response: { 200: { description: 'message/rfc822', type: 'string' }, ...errors(401, 404, 410) },
  },
  reload: {
    tags: ['operations'],
    summary: 're-read the config file (as SIGHUP does)',
    response: {
      200: open({ status: { type: 'string', enum: ['reloaded'] } }, ['status']),
      400: open({ error: str, errors: { type: 'array', items: str } }, ['error']),
      ...errors(401),
    },
  },
} as const;

/**
 * Routes whose body schema documents but does not validate: their own rules
 * answer with every wrong field named (fastify's validator would answer
 * first, in its words, and coerce types).
 */
export const DOCUMENTED_ONLY = { validatorCompiler: () => () => true } as const;
