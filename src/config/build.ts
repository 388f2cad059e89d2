import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isCleartextRemote, isLoopbackHost } from './hosts.js';
import { MIN_TOKEN_CHARS, type RawConfig } from './schema.js';
import type { AccountConfig, AuthConfig, Config, CredentialConfig, WebhookConfig } from './types.js';
import { parseDuration, parseSize } from './units.js';

type Path = (string | number)[];

/** Relative to the config file's folder. */
export const DEFAULT_DATA_DIR = './data';

export interface BuildContext {
  configPath: string;
  configDir: string;
  /** Report a problem at the value at path. */
  at: (path: Path, message: string) => void;
  /** Report a problem at the key at path. */
  atKey: (path: Path, message: string) => void;
  /** A setting that works but exposes something (cleartext to another host): reported, not refused. */
  warn: (path: Path, message: string) => void;
  /**
   * A credential name an account uses that the YAML does not define: it may
   * live in the database (`mailgate credentials add`, the admin UI), which
   * the caller checks once dataDir is known.
   */
  unresolvedCredential: (path: Path, name: string) => void;
}

export const DEFAULT_LISTEN = '127.0.0.1:8025';
const DEFAULTS = {
  dataDir: DEFAULT_DATA_DIR,
  webhook: { maxAttempts: 15, initial: "5s", max: "1h", timeout: "30s", maxInline: "10MB", maxBody: '25MB', concurrency: 8 },
  incoming: { pollInterval: '60s', idleResync: '5m', maxMessageSize: '50MB' },
  tokens: { refreshBefore: '10m', refreshConcurrency: 8 },
  retention: { messages: '30d', outbox: '30d' },
} as const;

/** A webhook body must hold a message's headers and a little text. */
const MIN_BODY_BYTES = 64 * 1024;

const sizeOf = (v: string | number | undefined, fallback: string): number => {
  const r = parseSize(v ?? fallback);
  return typeof r === 'number' ? r : 0;
};

const ms = (v: string | number | undefined, fallback: string): number => {
  const r = parseDuration(v ?? fallback);
  return typeof r === 'number' ? r : 0;
};

/**
 * Checks what a schema cannot see (names, references, combinations, files)
 * and applies defaults. Returns null when anything was reported.
 */
export async function buildConfig(raw: RawConfig, ctx: BuildContext): Promise<Config | null> {
  let failed = false;
  const at = (p: Path, m: string) => {
    failed = true;
    ctx.at(p, m);
  };
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.configDir, p));

  /** The value of `key`, or of `keyFile` read from disk (one trailing newline trimmed). */
  const secret = async (obj: Record<string, unknown>, base: Path, key: string, required: boolean): Promise<string | undefined> => {
    const fileKey = `${key}File`;
    const direct = obj[key] as string | undefined;
    const file = obj[fileKey] as string | undefined;
    if (direct !== undefined && file !== undefined) {
      at([...base, fileKey], `set either ${key} or ${fileKey}, not both`);
      return undefined;
    }
    if (file !== undefined) {
      try {
        return (await readFile(abs(file), 'utf8')).replace(/\r?\n$/, '');
      } catch (err) {
        at([...base, fileKey], `cannot read ${fileKey} ${abs(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return undefined;
      }
    }
    if (direct === undefined && required) at(base, `missing required key "${key}" (or ${fileKey})`);
    return direct;
  };

  const duplicates = (list: { name: string }[], section: string) => {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (seen.has(item.name)) at([section, i, 'name'], `duplicate ${section.replace(/s$/, '')} name "${item.name}"`);
      seen.add(item.name);
    });
  };

  // ---- server ----
  const listenText = raw.server?.listen ?? DEFAULT_LISTEN;
  const listen = parseListen(listenText);
  if (!listen) at(['server', 'listen'], `server.listen must be host:port (e.g. 127.0.0.1:8025 or [::1]:8025), got "${listenText}"`);
  const hostForUrl = listen ? (listen.host.includes(':') ? `[${listen.host}]` : listen.host) : '127.0.0.1';
  const publicUrl = (raw.server?.publicUrl ?? `http://${hostForUrl}:${listen?.port ?? 8025}`).replace(/\/+$/, '');
  const token = async (key: 'adminToken' | 'metricsToken') => {
    const value = raw.server ? await secret(raw.server, ['server'], key, false) : undefined;
    // The schema checks a token written in the file; one read from a file is checked here.
    if (value !== undefined && value.length < MIN_TOKEN_CHARS && raw.server?.[`${key}File`] !== undefined) {
      at(['server', `${key}File`], `the ${key} in ${raw.server[`${key}File`]} must be at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -base64 24)`);
    }
    return value;
  };
  const adminToken = await token('adminToken');
  const metricsToken = await token('metricsToken');

  // ---- credentials ----
  const rawCreds = raw.credentials ?? [];
  duplicates(rawCreds, 'credentials');
  const credentials: CredentialConfig[] = [];
  for (const [i, c] of rawCreds.entries()) {
    const base: Path = ['credentials', i];
    const grant = c.grant ?? 'authorization_code';
    if (c.provider === 'custom') {
      if (!c.tokenEndpoint) at(base, `credential "${c.name}": provider custom needs tokenEndpoint`);
      if (!c.authorizationEndpoint && grant === 'authorization_code') at(base, `credential "${c.name}": provider custom needs authorizationEndpoint`);
      if (!c.scopes) at(base, `credential "${c.name}": provider custom needs scopes`);
    }
    if (c.tenant !== undefined && !c.provider.startsWith('microsoft')) at([...base, 'tenant'], 'tenant only applies to microsoft providers');
    for (const key of ['tokenEndpoint', 'deviceAuthorizationEndpoint'] as const) {
      const url = c[key];
      if (url && isCleartextRemote(url)) ctx.warn([...base, key], `${key} is http:// to another host: the client secret and tokens would cross the network unencrypted; use https`);
    }
    credentials.push({
      name: c.name,
      provider: c.provider,
      clientId: c.clientId,
      clientSecret: await secret(c, base, 'clientSecret', false),
      authorizationEndpoint: c.authorizationEndpoint,
      tokenEndpoint: c.tokenEndpoint,
      deviceAuthorizationEndpoint: c.deviceAuthorizationEndpoint,
      scopes: c.scopes,
      tenant: c.tenant ?? 'common',
      grant,
    });
  }

  // ---- webhooks ----
  const rawHooks = raw.webhooks ?? [];
  duplicates(rawHooks, 'webhooks');
  const webhooks: WebhookConfig[] = [];
  for (const [i, w] of rawHooks.entries()) {
    const base: Path = ['webhooks', i];
    const initialMs = ms(w.backoff?.initial, DEFAULTS.webhook.initial);
    const maxMs = ms(w.backoff?.max, DEFAULTS.webhook.max);
    if (initialMs > maxMs) at([...base, 'backoff'], 'backoff.initial must not exceed backoff.max');
    const maxInline = parseSize(w.maxInlineAttachmentBytes ?? DEFAULTS.webhook.maxInline);
    const maxBody = parseSize(w.maxBodyBytes ?? DEFAULTS.webhook.maxBody);
    if (typeof maxBody === 'number' && maxBody < MIN_BODY_BYTES) at([...base, 'maxBodyBytes'], `maxBodyBytes must be at least ${MIN_BODY_BYTES / 1024} KB`);
    if (isCleartextRemote(w.url)) ctx.warn([...base, 'url'], 'webhook url is http:// to another host: mail content would cross the network unencrypted; use https');
    webhooks.push({
      name: w.name,
      url: w.url,
      secret: (await secret(w, base, 'secret', true)) ?? '',
      maxAttempts: w.maxAttempts ?? DEFAULTS.webhook.maxAttempts,
      backoff: { initialMs, maxMs },
      timeoutMs: ms(w.timeout, DEFAULTS.webhook.timeout),
      maxInlineAttachmentBytes: typeof maxInline === 'number' ? maxInline : 0,
      maxBodyBytes: typeof maxBody === 'number' ? maxBody : 0,
      concurrency: w.concurrency ?? DEFAULTS.webhook.concurrency,
    });
  }

  // ---- accounts ----
  const rawAccounts = raw.accounts ?? [];
  duplicates(rawAccounts, 'accounts');
  const credNames = new Set(credentials.map((c) => c.name));
  const hookNames = new Set(webhooks.map((w) => w.name));
  const accounts: AccountConfig[] = [];
  const buildAuth = async (a: RawConfig['accounts'] extends (infer A)[] | undefined ? A : never, side: 'incoming' | 'outgoing', base: Path) => {
    const src = side === 'incoming' ? a.incoming.auth : a.outgoing?.auth;
    if (!src) return undefined;
    const p: Path = [...base, side, 'auth'];
    if (src.method === 'password') {
      if (src.credential !== undefined) at([...p, 'credential'], 'method password takes password or passwordFile, not credential');
      const password = await secret(src, p, 'password', true);
      return { method: 'password', password: password ?? '' } satisfies AuthConfig;
    }
    if (src.password !== undefined || src.passwordFile !== undefined) at(p, `method ${src.method} takes a credential, not a password`);
    if (src.credential === undefined) {
      at(p, `missing required key "credential" for method ${src.method}`);
    } else if (!credNames.has(src.credential)) {
      ctx.unresolvedCredential([...p, 'credential'], src.credential);
    }
    return { method: src.method, credential: src.credential ?? '' } satisfies AuthConfig;
  };
  for (const [i, a] of rawAccounts.entries()) {
    const base: Path = ['accounts', i];
    const inc = a.incoming;
    const imap = inc.protocol === 'imap';
    if (!hookNames.has(a.webhook)) at([...base, 'webhook'], `webhook "${a.webhook}" is not defined in webhooks`);
    if (!imap && inc.mode !== undefined) at([...base, 'incoming', 'mode'], 'mode applies to imap only (pop3 always polls)');
    if (!imap && inc.mailboxes !== undefined) at([...base, 'incoming', 'mailboxes'], 'mailboxes apply to imap only');
    const after = inc.afterDelivery ?? 'seen';
    if (after === 'move' && !inc.moveTo) at([...base, 'incoming', 'afterDelivery'], 'afterDelivery: move needs moveTo');
    if (after !== 'move' && inc.moveTo !== undefined) at([...base, 'incoming', 'moveTo'], 'moveTo applies only with afterDelivery: move');
    if (!imap && after === 'move') at([...base, 'incoming', 'afterDelivery'], 'pop3 cannot move messages (use delete, seen or none)');
    const tls = inc.tls ?? true;
    const requireTLS = inc.requireTLS ?? !isLoopbackHost(inc.host);
    const outTls = a.outgoing?.tls ?? true;
    const outRequireTLS = a.outgoing ? (a.outgoing.requireTLS ?? !isLoopbackHost(a.outgoing.host)) : false;
    const cleartext = (side: 'incoming' | 'outgoing', host: string, tlsOn: boolean, required: boolean, method: string) => {
      if (tlsOn || required || isLoopbackHost(host)) return;
      const what = method === 'password' ? 'the password' : 'the access token';
      ctx.warn([...base, side, 'tls'], `tls: false with requireTLS: false: if ${host} does not offer STARTTLS, ${what} is sent unencrypted`);
    };
    cleartext('incoming', inc.host, tls, requireTLS, inc.auth.method);
    if (a.outgoing) cleartext('outgoing', a.outgoing.host, outTls, outRequireTLS, a.outgoing.auth.method);
    const incomingAuth = (await buildAuth(a, 'incoming', base)) as AuthConfig;
    const outgoingAuth = a.outgoing ? ((await buildAuth(a, 'outgoing', base)) as AuthConfig) : undefined;
    accounts.push({
      name: a.name,
      email: a.email,
      webhook: a.webhook,
      incoming: {
        protocol: inc.protocol,
        host: inc.host,
        port: inc.port ?? (imap ? (tls ? 993 : 143) : tls ? 995 : 110),
        tls,
        requireTLS: !tls && requireTLS,
        user: inc.user ?? a.email,
        auth: incomingAuth,
        mailboxes: inc.mailboxes ?? ['INBOX'],
        mode: imap ? (inc.mode ?? 'idle') : 'poll',
        pollIntervalMs: ms(inc.pollInterval, DEFAULTS.incoming.pollInterval),
        idleResyncMs: ms(inc.idleResync, DEFAULTS.incoming.idleResync),
        afterDelivery: after,
        moveTo: inc.moveTo,
        maxMessageSizeBytes: sizeOf(inc.maxMessageSize, DEFAULTS.incoming.maxMessageSize),
      },
      outgoing:
        a.outgoing && outgoingAuth
          ? {
              host: a.outgoing.host,
              port: a.outgoing.port ?? (outTls ? 465 : 587),
              tls: outTls,
              requireTLS: !outTls && outRequireTLS,
              user: a.outgoing.user ?? a.email,
              from: a.outgoing.from ?? a.email,
              auth: outgoingAuth,
            }
          : undefined,
    });
  }

  if (failed) return null;
  return {
    configPath: ctx.configPath,
    configDir: ctx.configDir,
    server: {
      listen: listen ?? { host: '127.0.0.1', port: 8025 },
      publicUrl,
      adminToken,
      metricsToken,
      allowedHosts: raw.server?.allowedHosts ?? [],
      trustProxy: raw.server?.trustProxy ?? [],
    },
    dataDir: abs(raw.dataDir ?? DEFAULTS.dataDir),
    logLevel: raw.logLevel ?? 'info',
    credentials,
    accounts,
    webhooks,
    retention: {
      messagesMs: ms(raw.retention?.messages, DEFAULTS.retention.messages),
      outboxMs: ms(raw.retention?.outbox, DEFAULTS.retention.outbox),
    },
    tokens: {
      refreshBeforeMs: ms(raw.tokens?.refreshBefore, DEFAULTS.tokens.refreshBefore),
      refreshConcurrency: raw.tokens?.refreshConcurrency ?? DEFAULTS.tokens.refreshConcurrency,
    },
  };
}

/** `host:port` or `[v6]:port`. */
export function parseListen(text: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m?.[1] || !m[2]) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { host: m[1], port };
}
