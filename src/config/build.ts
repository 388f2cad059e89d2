import { readFile } from 'node:fs/promises';
import { explainSystemError } from '../errors.js';
import { isAbsolute, resolve } from 'node:path';
import { signingConfigProblems } from '../delivery/signing.js';
import { DEFAULT_ISSUE_KEY_PATTERN, issueKeyPatternProblem } from '../parse/issue-keys.js';
import { isCleartextRemote, isLoopbackHost } from './hosts.js';
import { dotted, relayConfigProblems } from '../relay/check.js';
import type { RelayConfig } from '../relay/types.js';
import { MIN_TOKEN_CHARS, type ParsedConfig } from './schema.js';
import { CertificateCredentialError, loadCertificateCredential, type CertificateCredential } from '../oauth/client-assertion.js';
import { parseServiceAccountKey, ServiceAccountKeyError, type ServiceAccountKey } from '../oauth/service-account-key.js';
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
  let reported = 0;
  const at = (p: Path, m: string) => {
    failed = true;
    reported++;
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

  // ---- store ----
  const store = await buildStore(raw, secret, at);

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
    const clientSecret = await secret(c, base, 'clientSecret', false);
    if (c.clientSecretExpiresAt !== undefined && c.clientSecretExpiresAt <= Date.now()) {
      // A warning, never a refusal: the provider decides (and the date may be a typo of a working secret).
      ctx.warn([...base, 'clientSecretExpiresAt'], `clientSecretExpiresAt ${new Date(c.clientSecretExpiresAt).toISOString().slice(0, 10)} is in the past: the provider refuses an expired secret (Microsoft: AADSTS7000222); create a new one and update clientSecret and clientSecretExpiresAt`);
    }
    if (c.testingApp && c.provider !== 'google') at([...base, 'testingApp'], 'testingApp applies to Google credentials only');
    let serviceAccountKey: ServiceAccountKey | undefined;
    if (c.grant === 'service_account') {
      if (c.serviceAccountKeyFile === undefined) at(base, `credential "${c.name}": grant service_account needs serviceAccountKeyFile (the JSON key from Google Cloud)`);
      else serviceAccountKey = await readServiceAccountKey(abs(c.serviceAccountKeyFile), c.serviceAccountKeyFile, [...base, 'serviceAccountKeyFile'], ctx.atKey, () => (failed = true));
      if (clientSecret !== undefined) at([...base, 'clientSecret'], 'a service account signs assertions with its key; it takes no clientSecret');
      if (c.clientAssertion !== undefined) at([...base, 'clientAssertion'], 'a service account signs assertions with its key; it takes no clientAssertion');
      if (c.provider === 'microsoft' || c.provider === 'microsoft-gcc-high') at([...base, 'grant'], 'grant service_account is Google domain-wide delegation; Microsoft app-only is grant client_credentials');
      if (serviceAccountKey && c.clientId !== undefined && c.clientId !== serviceAccountKey.clientId) {
        at([...base, 'clientId'], `clientId ${c.clientId} is not the key's client_id ${serviceAccountKey.clientId}; leave clientId out`);
      }
    } else {
      if (c.serviceAccountKeyFile !== undefined) at([...base, 'serviceAccountKeyFile'], 'serviceAccountKeyFile applies only with grant: service_account');
      if (c.clientId === undefined) at(base, `missing required key "clientId" in credentials.${i}`);
    }
    let clientCertificate: CertificateCredential | undefined;
    if (c.clientAssertion !== undefined && c.grant !== 'service_account') {
      if (clientSecret !== undefined) at([...base, 'clientAssertion'], 'set either clientSecret or clientAssertion, not both');
      const ca = c.clientAssertion;
      const passphrase = await secret(ca, [...base, 'clientAssertion'], 'passphrase', false);
      try {
        const [certificatePem, privateKeyPem] = await Promise.all([readFile(abs(ca.certificateFile)), readFile(abs(ca.privateKeyFile))]);
        clientCertificate = loadCertificateCredential({ certificatePem, privateKeyPem, ...(passphrase !== undefined ? { passphrase } : {}) });
      } catch (err) {
        const field = err instanceof CertificateCredentialError ? (err.field === 'certificate' ? 'certificateFile' : 'privateKeyFile') : null;
        const what = (err as NodeJS.ErrnoException).code ? `cannot read ${(err as NodeJS.ErrnoException).path ?? 'the file'}: ${(err as NodeJS.ErrnoException).code}` : (err as Error).message;
        at([...base, 'clientAssertion', ...(field ? [field] : [])], `clientAssertion: ${what}`);
      }
    }
    credentials.push({
      ...omit(c, 'clientSecretFile', 'clientAssertion', 'serviceAccountKeyFile'),
      clientId: c.clientId ?? serviceAccountKey?.clientId ?? '',
      clientSecret,
      tenant: c.tenant ?? 'common',
      serviceAccountKey,
      serviceAccountKeyFile: c.serviceAccountKeyFile,
      clientCertificate,
      clientAssertionAlg: c.clientAssertion?.alg,
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
    // A secret, a secretFile or secrets (a rotation): delivery/signing.ts says what is wrong with them.
    const before = reported;
    const one = await secret(w, base, 'secret', false);
    // An unreadable secretFile, or secret and secretFile both: said already.
    const problems = reported > before ? [] : signingConfigProblems({ signature: w.signature, ...(one !== undefined || w.secretFile !== undefined ? { secret: one ?? '' } : {}), secrets: w.secrets });
    for (const p of problems) {
      const key = p.key === 'secret' && w.secretFile !== undefined ? 'secretFile' : p.key;
      const path: Path = p.index !== null ? [...base, key, p.index] : w[key as 'secret' | 'secrets'] === undefined && key !== 'secretFile' ? base : [...base, key];
      if (path === base) at(base, 'missing required key "secret" (or secretFile, or secrets: [newest, …] during a rotation)');
      else at(path, `${key}${p.index !== null ? ` (entry ${p.index + 1})` : ''} ${p.message}`);
    }
    const pattern = w.issueKeyPattern === undefined ? DEFAULT_ISSUE_KEY_PATTERN : w.issueKeyPattern;
    const patternProblem = issueKeyPatternProblem(pattern);
    if (patternProblem) {
      const where = patternProblem.offset !== null ? ` (at character ${patternProblem.offset + 1} of the pattern)` : '';
      at([...base, 'issueKeyPattern'], `issueKeyPattern ${patternProblem.message}${where}`);
    }
    const secrets = w.secrets ?? (one !== undefined ? [one] : []);
    webhooks.push({ ...omit(w, 'secretFile'), secret: secrets[0] ?? '', secrets, issueKeyPattern: pattern });
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
    if (inc.protocol === 'pop3' && inc.initialSync === 'unseen') {
      at([...base, 'incoming', 'initialSync'], 'pop3 has no seen flags: initialSync is all (every message on the server) or new (only what arrives later)');
    }
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
      inc.protocol === 'imap'
        ? { ...inc, ...endpoint, initialSync: inc.initialSync ?? 'unseen' }
        : { ...inc, ...endpoint, mailboxes: ['INBOX'], mode: 'poll', moveTo: undefined, initialSync: inc.initialSync === 'new' ? 'new' : 'all' };
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

  if (raw.cluster && raw.store.kind !== 'postgres') {
    failed = true;
    ctx.atKey(['cluster'], 'cluster needs store.kind: postgres (several replicas share one PostgreSQL database; SQLite runs one replica and needs no cluster section)');
  }

  // ---- relay ----
  let relay: RelayConfig | undefined;
  if (raw.relay) {
    const r = raw.relay;
    const file = async (key: 'certFile' | 'keyFile', path: string) => {
      try {
        // Text, not a Buffer: the config is deep-frozen, and PEM is ASCII.
        return await readFile(abs(path), 'utf8');
      } catch (err) {
        at(['relay', 'tls', key], `cannot read relay.tls.${key} ${abs(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return undefined;
      }
    };
    const cert = r.tls && (await file('certFile', r.tls.certFile));
    const key = r.tls && (await file('keyFile', r.tls.keyFile));
    const clients: RelayConfig['clients'][number][] = [];
    for (const [i, c] of r.clients.entries()) {
      const email = accounts.find((a) => a.name === c.account)?.email;
      clients.push({
        name: c.name,
        username: c.username,
        password: (await secret(c, ['relay', 'clients', i], 'password', true)) ?? '',
        account: c.account,
        allowedFrom: (c.allowedFrom ?? (email ? [email] : [])).map((a) => a.toLowerCase()),
      });
    }
    relay = { listen: r.listen, ...(cert && key ? { tls: { cert, key } } : {}), maxMessageSizeBytes: r.maxMessageSizeBytes, clients };
    // Unreadable tls files were reported above; the check would only add "not loopback" on top of them.
    const tlsUnread = r.tls !== undefined && !(cert && key);
    const infos = accounts.map((a) => ({ name: a.name, hasOutgoing: a.outgoing !== undefined }));
    for (const p of relayConfigProblems(relay, infos)) {
      const last = p.path[p.path.length - 1];
      if (tlsUnread && last === 'tls') continue;
      // A missing password was reported by secret() already.
      if (last === 'password' && clients[p.path[2] as number]?.password === '') continue;
      at(p.path, `${dotted(p.path)}: ${p.message}`);
    }
  }

  if (failed) return null;
  const { relay: _rawRelay, ...rest } = raw;
  return {
    configPath: ctx.configPath,
    configDir: ctx.configDir,
    ...rest,
    server,
    dataDir: abs(raw.dataDir),
    secretKeyFile: raw.secretKeyFile === undefined ? undefined : abs(raw.secretKeyFile),
    store,
    credentials,
    accounts,
    webhooks,
    ...(relay ? { relay } : {}),
  };
}

/** `store:` with url read from urlFile; kind postgres needs a postgres:// URL, kind sqlite takes none. */
async function buildStore(
  raw: ParsedConfig,
  secret: (obj: Record<string, unknown>, base: Path, key: string, required: boolean) => Promise<string | undefined>,
  at: (p: Path, m: string) => void,
): Promise<Config['store']> {
  const s = raw.store;
  const url = await secret(s, ['store'], 'url', s.kind === 'postgres');
  const key = s.urlFile !== undefined ? 'urlFile' : 'url';
  if (s.kind === 'sqlite') {
    if (s.url !== undefined || s.urlFile !== undefined) at(['store', key], `store.${key} is only used with kind: postgres (SQLite lives in dataDir)`);
    return { kind: 'sqlite', url: undefined, poolSize: s.poolSize };
  }
  // The URL itself is never echoed: it may hold a password.
  if (url !== undefined && !/^postgres(ql)?:\/\/./i.test(url)) {
    at(['store', key], `store.${key} must be a postgres:// (or postgresql://) URL, e.g. postgres://mailgate:secret@db.internal:5432/mailgate`);
  }
  return { kind: 'postgres', url: url ?? '', poolSize: s.poolSize };
}

/**
 * Reads and checks a service-account key file; every problem is reported at
 * the `serviceAccountKeyFile` key, naming the file and the field. The file's
 * content is never quoted (it is a secret).
 */
async function readServiceAccountKey(path: string, asWritten: string, at: Path, report: (p: Path, m: string) => void, failed: () => void): Promise<ServiceAccountKey | undefined> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    failed();
    report(at, `cannot read serviceAccountKeyFile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return undefined;
  }
  try {
    return parseServiceAccountKey(content, `serviceAccountKeyFile ${asWritten}`);
  } catch (err) {
    if (!(err instanceof ServiceAccountKeyError)) throw err;
    failed();
    for (const p of err.problems) report(at, `serviceAccountKeyFile ${asWritten}: ${p.message}`);
    return undefined;
  }
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
