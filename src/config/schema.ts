import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/**
 * The YAML shape, as admins write it (before defaults and unit conversion).
 * Every object is strict: an unknown key is an error, so a typo never
 * silently falls back to a default.
 */

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'names use letters, digits, ".", "_" and "-"');
const duration = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const r = parseDuration(v);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});
const size = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const r = parseSize(v);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});
const port = z.number().int().min(1).max(65535);
const email = z.email('invalid email address');
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });
/** Bearer tokens guard the API: long enough that guessing is hopeless even without the lockout. */
export const MIN_TOKEN_CHARS = 24;
const bearerToken = z.string().min(MIN_TOKEN_CHARS, `must be at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -base64 24), or leave adminToken unset to have one generated`);

const auth = z.strictObject({
  method: z.enum(['xoauth2', 'oauthbearer', 'password']),
  credential: z.string().optional(),
  password: z.string().optional(),
  passwordFile: z.string().optional(),
});

const incoming = z.strictObject({
  protocol: z.enum(['imap', 'pop3']),
  host: z.string().min(1),
  port: port.optional(),
  tls: z.boolean().optional(),
  user: z.string().min(1).optional(),
  auth,
  mailboxes: z.array(z.string().min(1)).min(1).optional(),
  requireTLS: z.boolean().optional(),
  mode: z.enum(['idle', 'poll']).optional(),
  pollInterval: duration.optional(),
  idleResync: duration.optional(),
  afterDelivery: z.enum(['seen', 'move', 'delete', 'none']).optional(),
  moveTo: z.string().min(1).optional(),
});

const outgoing = z.strictObject({
  host: z.string().min(1),
  port: port.optional(),
  tls: z.boolean().optional(),
  requireTLS: z.boolean().optional(),
  user: z.string().min(1).optional(),
  from: email.optional(),
  auth,
});

export const rawConfigSchema = z.strictObject({
  server: z
    .strictObject({
      listen: z.string().optional(),
      publicUrl: httpUrl.optional(),
      adminToken: bearerToken.optional(),
      adminTokenFile: z.string().optional(),
      metricsToken: bearerToken.optional(),
      metricsTokenFile: z.string().optional(),
      allowedHosts: z.array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[^:[\]/\s]+)(:\d{1,5})?$/, 'expected a host name or host:port')).optional(),
      trustProxy: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  dataDir: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).optional(),
  retention: z
    .strictObject({
      messages: duration.optional(),
      outbox: duration.optional(),
    })
    .optional(),
  tokens: z
    .strictObject({
      refreshBefore: duration.optional(),
      refreshConcurrency: z.number().int().min(1).max(256).optional(),
    })
    .optional(),
  credentials: z
    .array(
      z.strictObject({
        name,
        provider: z.enum(['google', 'microsoft', 'microsoft-gcc-high', 'custom']),
        clientId: z.string().min(1),
        clientSecret: z.string().optional(),
        clientSecretFile: z.string().optional(),
        authorizationEndpoint: httpUrl.optional(),
        tokenEndpoint: httpUrl.optional(),
        deviceAuthorizationEndpoint: httpUrl.optional(),
        scopes: z.array(z.string().min(1)).min(1).optional(),
        tenant: z.string().min(1).optional(),
        grant: z.enum(['authorization_code', 'client_credentials']).optional(),
      }),
    )
    .optional(),
  accounts: z
    .array(
      z.strictObject({
        name,
        email,
        incoming,
        outgoing: outgoing.optional(),
        webhook: z.string().min(1),
      }),
    )
    .optional(),
  webhooks: z
    .array(
      z.strictObject({
        name,
        url: httpUrl,
        secret: z.string().min(1).optional(),
        secretFile: z.string().optional(),
        maxAttempts: z.number().int().min(1).max(1000).optional(),
        backoff: z.strictObject({ initial: duration.optional(), max: duration.optional() }).optional(),
        timeout: duration.optional(),
        maxInlineAttachmentBytes: size.optional(),
        concurrency: z.number().int().min(1).max(256).optional(),
      }),
    )
    .optional(),
});

export type RawConfig = z.infer<typeof rawConfigSchema>;

/** Known keys per object, for "did you mean" hints on unknown keys. List items are passed through. */
export function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType = rawConfigSchema;
  for (const seg of path) {
    if (typeof seg !== 'string') continue;
    schema = unwrap(schema);
    if (!(schema instanceof z.ZodObject)) return [];
    const next = (schema.shape as Record<string, z.ZodType>)[seg];
    if (!next) return [];
    schema = next;
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The schema a value is checked against, past optional and list wrappers. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (;;) {
    if (cur instanceof z.ZodOptional) cur = cur.unwrap() as z.ZodType;
    else if (cur instanceof z.ZodArray) cur = cur.element as z.ZodType;
    else return cur;
  }
}
