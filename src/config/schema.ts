import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/**
 * The config file's shape, written once. Its input is what admins write in
 * YAML; its output is what that means, with defaults applied, durations in
 * milliseconds (`…Ms`) and sizes in bytes; ./types.ts derives the resolved
 * types from that output. Every object is strict: an unknown key is an error,
 * so a typo never silently falls back to a default.
 *
 * What a schema cannot see is left to ./build.ts: names referring to each
 * other, combinations of keys, secret files, paths, and defaults that depend
 * on another key's value (ports, requireTLS, user, from, publicUrl, tenant).
 */

/** Relative to the config file's folder. */
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_LISTEN = '127.0.0.1:8025';
/** Bearer tokens guard the API: long enough that guessing is hopeless even without the lockout. */
export const MIN_TOKEN_CHARS = 24;

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'names use letters, digits, ".", "_" and "-"');
const port = z.number().int().min(1).max(65535);
const email = z.email('invalid email address');
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });
const bearerToken = z.string().min(MIN_TOKEN_CHARS, `must be at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -base64 24), or leave adminToken unset to have one generated`);

/** A string or number read by `parse`, which returns the value or a message in the admin's terms. */
const unit = (parse: (v: string | number) => number | string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const r = parse(v);
    if (typeof r === 'number') return r;
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  });
/** `500ms`, `60s`, `5m`, `1h`, `1d` (a bare number is seconds), in ms. */
const duration = unit(parseDuration);
/** `512KB`, `10MB`, `1GB` (a bare number is bytes), in bytes. */
const size = unit(parseSize);

/** `host:port` or `[v6]:port`. */
export function parseListen(text: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m?.[1] || !m[2]) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { host: m[1], port };
}

const listenAt = (key: string, example: string) =>
  z.string().transform((text, ctx) => {
    const parsed = parseListen(text);
    if (parsed) return parsed;
    // The message names its key itself, so it is reported as it stands (see load.ts).
    const message = `${key} must be host:port (e.g. ${example} or [::1]:${example.split(':')[1] ?? ''}), got "${text}"`;
    ctx.addIssue({ code: 'custom', message, params: { standalone: true } });
    return z.NEVER;
  });
const listen = listenAt('server.listen', DEFAULT_LISTEN).prefault(DEFAULT_LISTEN);

/**
 * The object with every key of its shape present in the output, undefined
 * when not written, so that a resolved object always has the same keys.
 */
function allKeys<T extends z.ZodObject>(schema: T) {
  const blank = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, undefined]));
  return schema.transform((v) => ({ ...blank, ...v }) as AllKeys<z.output<T>>);
}
/** Every key required, optional ones as `T | undefined` (mapping over `keyof Required<T>` drops the `?` and keeps the undefined). */
type AllKeys<T> = { [K in keyof Required<T>]: T[K] };

/** Checked against the method by buildConfig, which also looks up the credential. */
const auth = z.strictObject({
  method: z.enum(['xoauth2', 'oauthbearer', 'password']),
  credential: z.string().optional(),
  password: z.string().optional(),
  passwordFile: z.string().optional(),
});

const mailboxes = z.array(z.string().min(1)).min(1);
const mode = z.enum(['idle', 'poll']);

/** An imap account's incoming side. Key order matters a little: "did you mean" prefers the first of equally close keys. */
const imapObject = z.strictObject({
  protocol: z.literal('imap'),
  host: z.string().min(1),
  /** Default (buildConfig): 993 with tls, else 143; pop3 995 and 110. */
  port: port.optional(),
  /** Implicit TLS; false means STARTTLS. */
  tls: z.boolean().default(true),
  /** The login name; default (buildConfig): the account's email. */
  user: z.string().min(1).optional(),
  auth,
  mailboxes: mailboxes.default(() => ['INBOX']),
  /** With tls: false, refuse to log in unless STARTTLS is offered; default (buildConfig): true for non-loopback hosts. */
  requireTLS: z.boolean().optional(),
  mode: mode.default('idle'),
  pollInterval: duration.prefault('60s'),
  /** Idle mode: a full resync this often, in case IDLE silently died. */
  idleResync: duration.prefault('5m'),
  afterDelivery: z.enum(['seen', 'move', 'delete', 'none']).default('seen'),
  /** Needed by, and allowed only with, afterDelivery: move (buildConfig). */
  moveTo: z.string().min(1).optional(),
  /** A larger message is not downloaded; it is reported as message.failed (reason too_large) and left on the server. */
  maxMessageSize: size.prefault('50MB'),
  /** What a mailbox without a cursor yet gives: default (buildConfig) unseen for imap, all for pop3 (which refuses unseen). */
  initialSync: z.enum(['unseen', 'all', 'new']).optional(),
});

/**
 * pop3 has one mailbox and always polls. Its branch still takes imap's
 * keys, without imap's defaults, so that buildConfig can tell the imap-only
 * ones (mailboxes, mode, moveTo, afterDelivery: move) were written and refuse
 * them in plain words next to the other semantic checks: a branch without
 * them would only say `unknown key "mode"`, and a refinement here would hold
 * every semantic problem of the file back until it is fixed. idleResync is
 * accepted and unused, as it always was.
 */
const pop3Object = imapObject.extend({
  protocol: z.literal('pop3'),
  mailboxes: mailboxes.optional(),
  mode: mode.optional(),
});

const inMs = <T extends { pollInterval: number; idleResync: number; maxMessageSize: number }>({ pollInterval, idleResync, maxMessageSize, ...rest }: T) => ({
  ...rest,
  pollIntervalMs: pollInterval,
  idleResyncMs: idleResync,
  maxMessageSizeBytes: maxMessageSize,
});

const incoming = z.discriminatedUnion('protocol', [allKeys(imapObject).transform(inMs), allKeys(pop3Object).transform(inMs)]);

const outgoing = z.strictObject({
  host: z.string().min(1),
  /** Default (buildConfig): 465 with tls, else 587. */
  port: port.optional(),
  tls: z.boolean().default(true),
  requireTLS: z.boolean().optional(),
  user: z.string().min(1).optional(),
  /** Default (buildConfig): the account's email. */
  from: email.optional(),
  auth,
});

/** `2027-06-30` or an ISO date-time, as epoch ms. */
const dateMs = z.union([z.string(), z.date()]).transform((v, ctx) => {
  const s = v instanceof Date ? v.toISOString() : v.trim();
  const t = /^\d{4}-\d{2}-\d{2}$/.test(s) ? Date.parse(`${s}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T/.test(s) ? Date.parse(s) : NaN;
  if (Number.isFinite(t)) return t;
  ctx.addIssue({ code: 'custom', message: `expected a date like 2027-06-30 (or an ISO date-time), got "${s}"` });
  return z.NEVER;
});

/** Entra certificate credentials: a signed client assertion instead of a client secret. */
const clientAssertion = z.strictObject({
  /** PEM certificate as uploaded to the app registration (Certificates & secrets). */
  certificateFile: z.string().min(1),
  /** Its PEM private key (PKCS#8 or PKCS#1). */
  privateKeyFile: z.string().min(1),
  passphrase: z.string().optional(),
  passphraseFile: z.string().optional(),
  /** PS256 is what Microsoft documents now; RS256 for tenants set up against the older page. */
  alg: z.enum(['PS256', 'RS256']).default('PS256'),
});

const credential = allKeys(
  z.strictObject({
    name,
    provider: z.enum(['google', 'microsoft', 'microsoft-gcc-high', 'custom']),
    /** Required (buildConfig) except for service_account, where it comes from the key file. */
    clientId: z.string().min(1).optional(),
    clientSecret: z.string().optional(),
    clientSecretFile: z.string().optional(),
    /** When the client secret (or certificate) expires: warnings 30 and 7 days before. */
    clientSecretExpiresAt: dateMs.optional(),
    clientAssertion: clientAssertion.optional(),
    /** grant: service_account: the Google service-account JSON key (a secret). */
    serviceAccountKeyFile: z.string().min(1).optional(),
    /** Google: the OAuth app is in "Testing" status (refresh tokens die after 7 days). */
    testingApp: z.boolean().default(false),
    authorizationEndpoint: httpUrl.optional(),
    tokenEndpoint: httpUrl.optional(),
    deviceAuthorizationEndpoint: httpUrl.optional(),
    scopes: z.array(z.string().min(1)).min(1).optional(),
    /** Microsoft providers only; default (buildConfig, which refuses it elsewhere): common. */
    tenant: z.string().min(1).optional(),
    grant: z.enum(['authorization_code', 'client_credentials', 'service_account']).default('authorization_code'),
  }),
);

const webhook = z
  .strictObject({
    name,
    url: httpUrl,
    secret: z.string().min(1).optional(),
    secretFile: z.string().optional(),
    /** mailgate (v1 X-Mailgate-Signature) or standard (Standard Webhooks v1); secrets checked by buildConfig (delivery/signing.ts). */
    signature: z.enum(['mailgate', 'standard']).default('mailgate'),
    /** Instead of secret, during a rotation: every secret signs, newest first. */
    secrets: z.array(z.string()).optional(),
    /** Issue keys in the subject; absent: Jira keys, null: off. Checked by buildConfig (parse/issue-keys.ts). */
    issueKeyPattern: z.string().nullable().optional(),
    /** Then the delivery is parked as failed, replayable. */
    maxAttempts: z.number().int().min(1).max(1000).default(15),
    /** Exponential with jitter between these. */
    backoff: z
      .strictObject({ initial: duration.prefault('5s'), max: duration.prefault('1h') })
      .transform((b) => ({ initialMs: b.initial, maxMs: b.max }))
      .prefault({}),
    timeout: duration.prefault('30s'),
    /** Larger attachments are sent with contentOmitted: true. */
    maxInlineAttachmentBytes: size.prefault('10MB'),
    /** No body is larger: text and html are cut (truncated), attachments over the rest of the budget omitted. */
    maxBodyBytes: size.prefault('25MB'),
    concurrency: z.number().int().min(1).max(256).default(8),
  })
  .transform(({ timeout, ...w }) => ({ ...w, timeoutMs: timeout }));

export const DEFAULT_RELAY_LISTEN = '127.0.0.1:2525';

/** SMTP submission for applications that cannot do OAuth2 (product.md, "Legacy applications: SMTP relay"); checked further by buildConfig. */
const relay = z
  .strictObject({
    listen: listenAt('relay.listen', DEFAULT_RELAY_LISTEN).prefault(DEFAULT_RELAY_LISTEN),
    /** STARTTLS; optional on a loopback listener only (buildConfig). */
    tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
    maxMessageSize: size.prefault('25MB'),
    clients: z
      .array(
        z.strictObject({
          name,
          username: z.string().min(1),
          password: z.string().min(1).optional(),
          passwordFile: z.string().optional(),
          /** Relays through this account's outgoing server and token. */
          account: z.string().min(1),
          /** Default (buildConfig): the account's email. */
          allowedFrom: z.array(email).min(1).optional(),
        }),
      )
      .default(() => []),
  })
  .transform(({ maxMessageSize, ...r }) => ({ ...r, maxMessageSizeBytes: maxMessageSize }));

export const rawConfigSchema = z.strictObject({
  server: z
    .strictObject({
      listen,
      /** No trailing slash. The OAuth2 redirect URL is `${publicUrl}/oauth2/callback`; default (buildConfig): http://<listen>. */
      publicUrl: httpUrl.transform((url) => url.replace(/\/+$/, '')).optional(),
      adminToken: bearerToken.optional(),
      adminTokenFile: z.string().optional(),
      /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`. */
      metricsToken: bearerToken.optional(),
      metricsTokenFile: z.string().optional(),
      /** Extra Host names (or host:port) /v1, /admin and /oauth2 answer to, besides listen and publicUrl. */
      allowedHosts: z.array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[^:[\]/\s]+)(:\d{1,5})?$/, 'expected a host name or host:port')).default(() => []),
      /** Addresses (or CIDRs) of reverse proxies whose X-Forwarded-For is believed (client address for lockouts and logs). */
      trustProxy: z.array(z.string().min(1)).default(() => []),
    })
    .prefault({}),
  dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  /** How long finished work is kept. */
  retention: z
    .strictObject({ messages: duration.prefault('30d'), outbox: duration.prefault('30d') })
    .transform((r) => ({
      /** The raw body of a message whose webhook was delivered and whose afterDelivery was applied (the row itself stays, for deduplication and the send loop guard). */
      messagesMs: r.messages,
      /** Sent and failed outgoing messages, with their bodies and idempotency keys. */
      outboxMs: r.outbox,
    }))
    .prefault({}),
  tokens: z
    .strictObject({
      /** Refresh access tokens this long before they expire. */
      refreshBefore: duration.prefault('10m'),
      /** At most this many token requests in flight. */
      refreshConcurrency: z.number().int().min(1).max(256).default(8),
    })
    .transform(({ refreshBefore, ...t }) => ({ refreshBeforeMs: refreshBefore, ...t }))
    .prefault({}),
  credentials: z.array(credential).default(() => []),
  accounts: z
    .array(
      z.strictObject({
        name,
        email,
        /** false: paused (not connected; state and tokens kept). */
        enabled: z.boolean().default(true),
        incoming,
        outgoing: outgoing.optional(),
        webhook: z.string().min(1),
      }),
    )
    .default(() => []),
  webhooks: z.array(webhook).default(() => []),
  relay: relay.optional(),
});

/** The YAML as admins write it. */
export type RawConfig = z.input<typeof rawConfigSchema>;
/** The YAML as the schema reads it: defaults applied, durations in ms, sizes in bytes. */
export type ParsedConfig = z.output<typeof rawConfigSchema>;

/** Known keys of the object at `path` (list indexes skipped), for "did you mean" hints on unknown keys. */
export function knownKeysAt(path: readonly PropertyKey[]): string[] {
  return [...new Set(objectsAt(path).flatMap((o) => Object.keys(o.shape)))];
}

/**
 * The object schemas a value at `path` (list indexes skipped) is checked
 * against, as written: more than one below a union (incoming: imap and pop3).
 */
function objectsAt(path: readonly PropertyKey[]): z.ZodObject[] {
  let objects = objectsIn(rawConfigSchema);
  for (const seg of path) {
    if (typeof seg !== 'string') continue;
    objects = objects.flatMap((o) => {
      const next = (o.shape as Record<string, z.ZodType | undefined>)[seg];
      return next ? objectsIn(next) : [];
    });
  }
  return objects;
}

/** Past optional, default, the input side of transforms, list elements and union branches. */
function objectsIn(s: z.ZodType): z.ZodObject[] {
  if (s instanceof z.ZodObject) return [s];
  if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) return objectsIn(s.unwrap() as z.ZodType);
  if (s instanceof z.ZodPipe) return objectsIn(s.in as z.ZodType);
  if (s instanceof z.ZodArray) return objectsIn(s.element as z.ZodType);
  if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).flatMap(objectsIn);
  return [];
}

/**
 * What the first branch of the union at `path` says about `value` besides
 * its discriminator `key` (the branches take the same keys): a missing or
 * unknown protocol should not hide the object's other problems.
 */
export function issuesBesides(path: readonly PropertyKey[], key: string, value: Record<string, unknown>): z.core.$ZodIssue[] {
  const branch = objectsAt(path)[0];
  const tag = (branch?.shape as Record<string, z.ZodType> | undefined)?.[key];
  if (!branch || !(tag instanceof z.ZodLiteral)) return [];
  const r = branch.safeParse({ ...value, [key]: [...tag.values][0] });
  return (r.error?.issues ?? []).map((issue) => ({ ...issue, path: [...path, ...issue.path] }));
}
