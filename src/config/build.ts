import { readFile } from 'node:fs/promises';
import { explainSystemError } from '../errors.js';
import { isAbsolute, resolve } from 'node:path';
import { isCleartextRemote, isLoopbackHost } from './hosts.js';
import { MIN_TOKEN_CHARS, type ParsedConfig } from './schema.js';
import type { AccountConfig, AuthConfig, Config, CredentialConfig, IncomingConfig, WebhookConfig } from './types.js';

type Path = (string | number)[];
type ParsedAuth = ParsedConfig['accounts'][number]['incoming']['auth'];

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

/** A webhook body must hold a message's headers and a little text. */
const MIN_BODY_BYTES = 64 * 1024;

/** Implicit TLS and plain (STARTTLS) ports. */
const PORTS = { imap: { tls: 993, plain: 143 }, pop3: { tls: 995, plain: 110 }, smtp: { tls: 465, plain: 587 } } as const;

/**
 * What the schema cannot see, on top of its output: names and references,
 * combinations of keys, secret files, paths, and the defaults that depend on
 * another value. Returns null when anything was reported.
 */
export async function buildConfig(raw: ParsedConfig, ctx: BuildContext): Promise<Config | null> {
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
        at([...base, fileKey], unreadableFile(fileKey, abs(file), err));
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
  const { listen } = raw.server;
  const hostForUrl = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const token = async (key: 'adminToken' | 'metricsToken') => {
    const value = await secret(raw.server, ['server'], key, false);
    // The schema checks a token written in the file; one read from a file is checked here.
    const file = raw.server[`${key}File`];
    if (value !== undefined && value.length < MIN_TOKEN_CHARS && file !== undefined) {
      at(['server', `${key}File`], `the ${key} in ${file} must be at least ${MIN_TOKEN_CHARS} characters (e.g. openssl rand -base64 24)`);
    }
    return value;
  };
  const server: Config['server'] = {
    ...omit(raw.server, 'adminTokenFile', 'metricsTokenFile'),
    publicUrl: raw.server.publicUrl ?? `http://${hostForUrl}:${listen.port}`,
    adminToken: await token('adminToken'),
    metricsToken: await token('metricsToken'),
  };

  // ---- credentials ----
  duplicates(raw.credentials, 'credentials');
  const credentials: CredentialConfig[] = [];
  for (const [i, c] of raw.credentials.entries()) {
    const base: Path = ['credentials', i];
    if (c.provider === 'custom') {
      if (!c.tokenEndpoint) at(base, `credential "${c.name}": provider custom needs tokenEndpoint`);
      if (!c.authorizationEndpoint && c.grant === 'authorization_code') at(base, `credential "${c.name}": provider custom needs authorizationEndpoint`);
      if (!c.scopes) at(base, `credential "${c.name}": provider custom needs scopes`);
    }
    if (c.tenant !== undefined && !c.provider.startsWith('microsoft')) at([...base, 'tenant'], 'tenant only applies to microsoft providers');
    for (const key of ['tokenEndpoint', 'deviceAuthorizationEndpoint'] as const) {
      const url = c[key];
      if (url && isCleartextRemote(url)) ctx.warn([...base, key], `${key} is http:// to another host: the client secret and tokens would cross the network unencrypted; use https`);
    }
    credentials.push({
      ...omit(c, 'clientSecretFile'),
      clientSecret: await secret(c, base, 'clientSecret', false),
      tenant: c.tenant ?? 'common',
    });
  }

  // ---- webhooks ----
  duplicates(raw.webhooks, 'webhooks');
  const webhooks: WebhookConfig[] = [];
  for (const [i, w] of raw.webhooks.entries()) {
    const base: Path = ['webhooks', i];
    if (w.backoff.initialMs > w.backoff.maxMs) at([...base, 'backoff'], 'backoff.initial must not exceed backoff.max');
    if (w.maxBodyBytes < MIN_BODY_BYTES) at([...base, 'maxBodyBytes'], `maxBodyBytes must be at least ${MIN_BODY_BYTES / 1024} KB`);
    if (isCleartextRemote(w.url)) ctx.warn([...base, 'url'], 'webhook url is http:// to another host: mail content would cross the network unencrypted; use https');
    webhooks.push({ ...omit(w, 'secretFile'), secret: (await secret(w, base, 'secret', true)) ?? '' });
  }

  // ---- accounts ----
  duplicates(raw.accounts, 'accounts');
  const credNames = new Set(credentials.map((c) => c.name));
  const hookNames = new Set(webhooks.map((w) => w.name));
  const accounts: AccountConfig[] = [];
  const buildAuth = async (src: ParsedAuth, p: Path): Promise<AuthConfig> => {
    if (src.method === 'password') {
      if (src.credential !== undefined) at([...p, 'credential'], 'method password takes password or passwordFile, not credential');
      const password = await secret(src, p, 'password', true);
      return { method: 'password', password: password ?? '' };
    }
    if (src.password !== undefined || src.passwordFile !== undefined) at(p, `method ${src.method} takes a credential, not a password`);
    if (src.credential === undefined) {
      at(p, `missing required key "credential" for method ${src.method}`);
    } else if (!credNames.has(src.credential)) {
      ctx.unresolvedCredential([...p, 'credential'], src.credential);
    }
    return { method: src.method, credential: src.credential ?? '' };
  };
  for (const [i, a] of raw.accounts.entries()) {
    const base: Path = ['accounts', i];
    const { incoming: inc, outgoing: out } = a;
    if (!hookNames.has(a.webhook)) at([...base, 'webhook'], `webhook "${a.webhook}" is not defined in webhooks`);
    // The pop3 branch of the schema takes imap's keys so that these read better than "unknown key".
    if (inc.protocol === 'pop3' && inc.mode !== undefined) at([...base, 'incoming', 'mode'], 'mode applies to imap only (pop3 always polls)');
    if (inc.protocol === 'pop3' && inc.mailboxes !== undefined) at([...base, 'incoming', 'mailboxes'], 'mailboxes apply to imap only');
    const after = inc.afterDelivery;
    if (after === 'move' && !inc.moveTo) at([...base, 'incoming', 'afterDelivery'], 'afterDelivery: move needs moveTo');
    if (after !== 'move' && inc.moveTo !== undefined) at([...base, 'incoming', 'moveTo'], 'moveTo applies only with afterDelivery: move');
    if (inc.protocol === 'pop3' && after === 'move') at([...base, 'incoming', 'afterDelivery'], 'pop3 cannot move messages (use delete, seen or none)');
    const requireTLS = inc.requireTLS ?? !isLoopbackHost(inc.host);
    const outRequireTLS = out ? (out.requireTLS ?? !isLoopbackHost(out.host)) : false;
    const cleartext = (side: 'incoming' | 'outgoing', host: string, tlsOn: boolean, required: boolean, method: string) => {
      if (tlsOn || required || isLoopbackHost(host)) return;
      const what = method === 'password' ? 'the password' : 'the access token';
      ctx.warn([...base, side, 'tls'], `tls: false with requireTLS: false: if ${host} does not offer STARTTLS, ${what} is sent unencrypted`);
    };
    cleartext('incoming', inc.host, inc.tls, requireTLS, inc.auth.method);
    if (out) cleartext('outgoing', out.host, out.tls, outRequireTLS, out.auth.method);
    const endpoint = {
      port: inc.port ?? PORTS[inc.protocol][inc.tls ? 'tls' : 'plain'],
      requireTLS: !inc.tls && requireTLS,
      user: inc.user ?? a.email,
      auth: await buildAuth(inc.auth, [...base, 'incoming', 'auth']),
    };
    const incoming: IncomingConfig =
      inc.protocol === 'imap' ? { ...inc, ...endpoint } : { ...inc, ...endpoint, mailboxes: ['INBOX'], mode: 'poll', moveTo: undefined };
    accounts.push({
      ...a,
      incoming,
      outgoing: out && {
        ...out,
        port: out.port ?? PORTS.smtp[out.tls ? 'tls' : 'plain'],
        requireTLS: !out.tls && outRequireTLS,
        user: out.user ?? a.email,
        from: out.from ?? a.email,
        auth: await buildAuth(out.auth, [...base, 'outgoing', 'auth']),
      },
    });
  }

  if (failed) return null;
  return { configPath: ctx.configPath, configDir: ctx.configDir, ...raw, server, dataDir: abs(raw.dataDir), credentials, accounts, webhooks };
}

/** A `*File` key whose file cannot be read, in plain words (what happened, to what, what to check). */
export function unreadableFile(key: string, path: string, err: unknown): string {
  const plain = explainSystemError(err, `the file ${path}`);
  return `cannot read ${key}: ${plain?.message ?? `${path}: ${(err as Error).message}`}`;
}

/** `obj` without `keys` (the `*File` keys, once their secret is read). */
function omit<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Omit<T, K> {
  const out = { ...obj };
  for (const k of keys) delete out[k];
  return out;
}
