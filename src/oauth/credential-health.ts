import type { Config } from '../config/types.js';
import type { EventSink } from '../delivery/events.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { ResolvedCredential } from './providers.js';
import type { TokenService } from './token-service.js';

/**
 * Client secrets and certificates expire (Entra: at most two years, often
 * six months), and then every login of every account on the credential
 * stops at once (AADSTS7000222). mailgate says so ahead: a warning 30 and 7
 * days before `clientSecretExpiresAt` (or a client certificate's notAfter),
 * in the log, as `credential.expiring` to the webhook of every account using
 * the credential, on the admin UI's Credentials page, and as the gauge
 * `mailgate_client_secret_expires_timestamp_seconds`. A date in the past is
 * a warning too, never a refusal: the provider is the judge.
 */

/** Days before expiry at which an event is sent, largest first. */
export const EXPIRY_WARNING_DAYS = [30, 7] as const;
const DAY_MS = 86_400_000;

export interface CredentialExpiry {
  credential: string;
  expiresAt: number;
  /** What expires: the configured date, or the certificate's own notAfter. */
  source: 'clientSecretExpiresAt' | 'certificate';
  /** Whole days left (negative once expired). */
  daysLeft: number;
  /** The warning threshold reached (30 or 7), 0 once expired, null when none is. */
  threshold: 30 | 7 | 0 | null;
}

type ExpiryInput = Pick<ResolvedCredential, 'name' | 'clientSecretExpiresAt' | 'clientCertificate'>;

/** The earliest of the configured date and the certificate's notAfter; null when neither is known. */
export function expiryOf(cred: ExpiryInput, now: number): CredentialExpiry | null {
  const candidates: { at: number; source: CredentialExpiry['source'] }[] = [];
  if (cred.clientSecretExpiresAt !== undefined) candidates.push({ at: cred.clientSecretExpiresAt, source: 'clientSecretExpiresAt' });
  if (cred.clientCertificate) candidates.push({ at: cred.clientCertificate.notAfter.getTime(), source: 'certificate' });
  const first = candidates.sort((a, b) => a.at - b.at)[0];
  if (!first) return null;
  const left = first.at - now;
  const daysLeft = Math.floor(left / DAY_MS);
  const threshold = left <= 0 ? 0 : left <= 7 * DAY_MS ? 7 : left <= 30 * DAY_MS ? 30 : null;
  return { credential: cred.name, expiresAt: first.at, source: first.source, daysLeft, threshold };
}

/** The admin's words for an expiry that reached a threshold; null otherwise. */
export function expiryWarning(e: CredentialExpiry): string | null {
  if (e.threshold === null) return null;
  const what = e.source === 'certificate' ? 'client certificate' : 'client secret';
  const date = new Date(e.expiresAt).toISOString().slice(0, 10);
  if (e.threshold === 0) {
    return `the ${what} of credential ${e.credential} expired on ${date}: the provider refuses it (Microsoft: AADSTS7000222). Create a new one (Entra › App registrations › Certificates & secrets) and update the credential and its clientSecretExpiresAt`;
  }
  return `the ${what} of credential ${e.credential} expires on ${date} (in ${e.daysLeft} day${e.daysLeft === 1 ? '' : 's'}): create a new one before then (Entra › App registrations › Certificates & secrets) and update the credential and its clientSecretExpiresAt`;
}

export interface CredentialHealthDeps {
  store: Store;
  tokens: TokenService;
  config: () => Config;
  events: EventSink;
  metrics: Metrics;
  logger: Logger;
}

/** The meta key that remembers which warning was sent for which date (once per threshold, across restarts). */
const SENT_KEY = (credential: string) => `credential.expiring.${credential}`;

export class CredentialHealth {
  constructor(private readonly deps: CredentialHealthDeps) {}

  /** Every credential in use or defined (config and database), resolved; unknown ones skipped. */
  async #credentials(): Promise<ResolvedCredential[]> {
    const names = new Set<string>(this.deps.config().credentials.map((c) => c.name));
    for (const c of await this.deps.store.credentials.list()) names.add(c.name);
    const out: ResolvedCredential[] = [];
    for (const name of names) {
      try {
        out.push(await this.deps.tokens.resolveCredential(name));
      } catch {
        // a broken credential is reported where it is used
      }
    }
    return out;
  }

  /** The expiry of each credential that has one, for the UI. */
  async expiries(now = Date.now()): Promise<CredentialExpiry[]> {
    return (await this.#credentials()).map((c) => expiryOf(c, now)).filter((e): e is CredentialExpiry => e !== null);
  }

  /**
   * Sets the gauge, logs each warning, and sends `credential.expiring` once
   * per threshold and date to the webhooks of the accounts using the
   * credential. Returns what it found.
   */
  async check(now = Date.now()): Promise<CredentialExpiry[]> {
    const found = await this.expiries(now);
    this.deps.metrics.clientSecretExpires.reset();
    for (const e of found) {
      this.deps.metrics.clientSecretExpires.set({ credential: e.credential }, Math.floor(e.expiresAt / 1000));
      const warning = expiryWarning(e);
      if (!warning || e.threshold === null) continue;
      this.deps.logger.warn({ component: 'credential-health', credential: e.credential, expiresAt: new Date(e.expiresAt).toISOString(), daysLeft: e.daysLeft }, warning);
      const mark = `${e.expiresAt}:${e.threshold}`;
      if ((await this.deps.store.meta.get(SENT_KEY(e.credential))) === mark) continue;
      await this.#announce(e, warning);
      await this.deps.store.meta.set(SENT_KEY(e.credential), mark);
    }
    return found;
  }

  /** One event per webhook: the first account using the credential there is the envelope's, all of them are listed. */
  async #announce(e: CredentialExpiry, warning: string): Promise<void> {
    const byWebhook = new Map<string, string[]>();
    for (const a of this.deps.config().accounts) {
      const uses = [a.incoming.auth, a.outgoing?.auth].some((auth) => auth && auth.method !== 'password' && auth.credential === e.credential);
      if (!uses) continue;
      const names = byWebhook.get(a.webhook);
      if (names) names.push(a.name);
      else byWebhook.set(a.webhook, [a.name]);
    }
    for (const accounts of byWebhook.values()) {
      await this.deps.events.emit(accounts[0]!, 'credential.expiring', {
        credential: e.credential,
        expiresAt: new Date(e.expiresAt).toISOString(),
        daysLeft: e.daysLeft,
        what: e.source === 'certificate' ? 'certificate' : 'clientSecret',
        accounts,
        message: warning,
      });
    }
  }
}
