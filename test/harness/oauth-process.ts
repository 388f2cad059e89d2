import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const SERVER_SCRIPT = join(import.meta.dirname, 'oauth-server.mjs');
const START_TIMEOUT_MS = 10_000;

export interface OAuthServerProcess {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Spawns the test OAuth2 server as a real process and waits for its
 * "listening" line. Its stdin is a pipe only we hold: when this process
 * ends, even by SIGKILL, the server reads EOF and exits (--exit-with-stdin).
 */
export async function startOAuthServer(): Promise<OAuthServerProcess> {
  const child: ChildProcess = spawn(process.execPath, [SERVER_SCRIPT, '--port', '0', '--exit-with-stdin'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('oauth server did not start')), START_TIMEOUT_MS);
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    child.once('exit', (code) => reject(new Error(`oauth server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Client for the test server's /admin endpoints. */
export class OAuthAdmin {
  constructor(readonly url: string) {}

  async #post<T = unknown>(path: string, body: unknown): Promise<T> {
    const r = await fetch(`${this.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  registerClient(clientId: string, clientSecret: string | null, appUser?: string) {
    return this.#post('/admin/clients', { client_id: clientId, client_secret: clientSecret, app_user: appUser });
  }

  /**
   * An app registration as Entra has it: a secret (optionally expiring, then
   * refused with AADSTS7000222) and/or a certificate for client assertions,
   * and the mailboxes its app-only token may open.
   */
  registerApp(clientId: string, opts: { secret?: string | null; certificatePem?: string; mailboxes?: string[]; secretExpiresAt?: Date }) {
    return this.#post('/admin/clients', {
      client_id: clientId,
      client_secret: opts.secret ?? null,
      certificate: opts.certificatePem,
      mailboxes: opts.mailboxes,
      secret_expires_at: opts.secretExpiresAt ? Math.floor(opts.secretExpiresAt.getTime() / 1000) : undefined,
    });
  }

  /** Replaces the mailboxes an app's token may open (Add-/Remove-MailboxPermission). */
  grantMailboxes(clientId: string, mailboxes: string[]) {
    return this.#post<{ client_id: string; mailboxes: string[] }>('/admin/app-grants', { client_id: clientId, mailboxes });
  }

  /**
   * A Google service account with domain-wide delegation for `scopes`
   * (default the Gmail scope; `delegation: false` for none yet). `users`
   * limits which subjects exist in the "domain".
   */
  registerServiceAccount(sa: { clientEmail: string; clientId: string; publicKeyPem: string; privateKeyId?: string; scopes?: string[]; delegation?: boolean; users?: string[] }) {
    return this.#post('/admin/service-accounts', {
      client_email: sa.clientEmail,
      client_id: sa.clientId,
      public_key: sa.publicKeyPem,
      private_key_id: sa.privateKeyId,
      scopes: sa.scopes,
      delegation: sa.delegation,
      users: sa.users,
    });
  }

  /** Sets the delegated scopes, or removes the delegation (`null`): the grant then answers unauthorized_client. */
  setDelegation(clientEmail: string, scopes: string[] | null) {
    return this.#post('/admin/service-accounts/delegation', scopes === null ? { client_email: clientEmail, missing: true } : { client_email: clientEmail, scopes });
  }

  /** Mints tokens for `username` without a flow. */
  issue(clientId: string, username: string, scope = 'mail') {
    return this.#post<{ access_token: string; refresh_token: string; expires_in: number }>('/admin/issue', { client_id: clientId, username, scope });
  }

  configure(settings: { accessTokenTtl?: number; deviceInterval?: number; tokenDelayMs?: number }) {
    return this.#post('/admin/config', settings);
  }

  revoke(username: string) {
    return this.#post('/admin/revoke', { username });
  }

  revokeAccess(username: string) {
    return this.#post('/admin/revoke-access', { username });
  }

  faults(count: number, status: number, retryAfter?: number, body?: unknown) {
    return this.#post('/admin/faults', { count, status, retryAfter, body });
  }

  introspectDown(down: boolean) {
    return this.#post('/admin/introspect-down', { down });
  }

  approveDevice(userCode: string, username: string) {
    return this.#post('/device/approve', { user_code: userCode, username });
  }

  async stats(): Promise<{
    tokenRequests: number;
    byGrant: Record<string, number>;
    inFlight: number;
    peakInFlight: number;
    introspections: number;
    passdbChecks: number;
    authorizeRequests: Record<string, string>[];
    assertions: Record<string, string | number>[];
  }> {
    return (await fetch(`${this.url}/admin/stats`)).json() as never;
  }

  resetStats() {
    return this.#post('/admin/stats/reset', {});
  }
}

/**
 * A Google-style service-account key for the test server: the JSON an admin
 * downloads (its private key in PKCS#8 PEM) plus the public key the test
 * registers with `OAuthAdmin.registerServiceAccount`.
 */
export function makeServiceAccountKey(opts: { tokenUri: string; clientEmail?: string; clientId?: string; privateKeyId?: string }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const fields = {
    type: 'service_account',
    project_id: 'mailgate-test',
    private_key_id: opts.privateKeyId ?? randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: opts.clientEmail ?? `sa-${randomBytes(4).toString('hex')}@mailgate-test.iam.gserviceaccount.com`,
    client_id: opts.clientId ?? String(100_000_000_000_000_000_000n + BigInt(`0x${randomBytes(6).toString('hex')}`)),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: opts.tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
  };
  return { fields, json: JSON.stringify(fields, null, 2), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A self-signed RSA certificate and its key (openssl, as an admin would make one for Entra). */
export function makeCertificate(commonName = 'mailgate-test', days = 2): { certificatePem: string; privateKeyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailgate-cert-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', `/CN=${commonName}`, '-days', String(days)], { stdio: 'ignore' });
    return { certificatePem: readFileSync(certPath, 'utf8'), privateKeyPem: readFileSync(keyPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Dovecot configuration that lets app-only tokens log in. Dovecot 2.3's
 * oauth2 passdb compares the token's username with the SASL user, and its
 * introspection request carries only the token, so a token valid for several
 * mailboxes cannot be answered there. In password-grant mode Dovecot POSTs
 * the SASL user together with the token (`grant_type=password&username=…
 * &password=<token>`) to `grant_url`: the test server's /dovecot/passdb
 * answers with that username when the token may open the mailbox.
 * Append `passdb` after the existing oauth2 passdb (an app token is inactive
 * there, so Dovecot moves on to this one); write `args` to `argsPath`.
 */
export function dovecotAppOnlyPassdb(oauthUrl: string, argsPath: string): { args: string; passdb: string } {
  return {
    args: [
      `grant_url = ${oauthUrl}/dovecot/passdb`,
      'use_grant_password = yes',
      // Dovecot refuses password-grant mode without a client id.
      'client_id = dovecot',
      'client_secret = dovecot',
      'username_attribute = username',
      'active_attribute = active',
      'active_value = true',
      '',
    ].join('\n'),
    passdb: `passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = ${argsPath}\n}\n`,
  };
}
