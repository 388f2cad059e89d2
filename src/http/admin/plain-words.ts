import type { TokenStatus } from '../../oauth/token-service.js';
import { html, type SafeHtml } from './html.js';

const UNITS: [number, string][] = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
];

/** "3 days", "1 hour", "40 seconds": the largest whole unit. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  for (const [size, unit] of UNITS) {
    const n = Math.floor(abs / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? '' : 's'}`;
  }
  return 'less than a second';
}

/** A time as "in 54 minutes" / "3 days ago", with the exact UTC time for machines and tooltips. */
export function when(iso: string | null, now: number, never = 'never'): SafeHtml {
  if (!iso) return html`${never}`;
  const t = Date.parse(iso);
  const text = t >= now ? `in ${duration(t - now)}` : `${duration(now - t)} ago`;
  return html`<time datetime="${iso}" title="${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}">${text}</time>`;
}

const PROVIDER_NAMES: Record<string, string> = {
  google: 'Google',
  microsoft: 'Microsoft',
  'microsoft-gcc-high': 'Microsoft (GCC High)',
};

export function providerName(provider: string | null): string {
  return (provider ? PROVIDER_NAMES[provider] : undefined) ?? 'The provider';
}

/** Socket error codes as an admin would say them. */
const NETWORK: [RegExp, string][] = [
  [/ECONNREFUSED/, 'the server refused the connection (is the host and port right, is it running?)'],
  [/ENOTFOUND|EAI_AGAIN/, 'the server name could not be found (check the host)'],
  [/ETIMEDOUT|timed out/i, 'the server did not answer in time'],
  [/ECONNRESET|EPIPE/, 'the server closed the connection'],
  [/certificate|CERT_|self.signed/i, 'the server certificate is not trusted'],
];

function network(error: string): string {
  const hit = NETWORK.find(([re]) => re.test(error));
  return hit ? `${hit[1]} (${error})` : error;
}

export interface ProblemInput {
  token: TokenStatus;
  usesOAuth: boolean;
  provider: string | null;
  incomingError: string | null;
  outgoingError: string | null;
}

/**
 * The one thing an admin should know about an account, with what to do about
 * it; null when all is well. The token comes first: without it nothing else
 * can work.
 */
export function accountProblem(p: ProblemInput): string | null {
  const who = providerName(p.provider);
  if (p.usesOAuth && p.token.state === 'reauth_required') {
    return `${who} rejected the refresh token (${p.token.lastError ?? 'no reason given'}). Click Authorize.`;
  }
  if (p.usesOAuth && p.token.state === 'missing') return 'Not authorized yet. Click Authorize.';
  // The provider error table's words for a refused grant (delegation missing, an expired secret, a policy).
  if (p.usesOAuth && p.token.explanation) return `${p.token.explanation}${p.token.retryAt ? ` Next try at ${p.token.retryAt}.` : ''}`;
  if (p.incomingError) return `Incoming: ${network(p.incomingError)}.`;
  if (p.outgoingError) return `Outgoing: ${network(p.outgoingError)}.`;
  if (p.token.lastError) return `The last token refresh failed (${p.token.lastError}); mailgate keeps trying.`;
  return p.token.warning ?? null;
}
