import type { TokenStatus } from '../../oauth/token-service.js';
import { explainSystemError } from '../../errors.js';
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

/**
 * A stored error as an admin reads it. Errors are recorded in plain words
 * (src/errors.ts); one recorded by an older mailgate may still carry a raw
 * socket code, which is said plainly here from the same catalogue.
 */
export function plainError(error: string, target = 'the server'): string {
  return explainSystemError({ message: error }, target)?.message ?? error;
}

/** Ends a clause as a sentence (plain-words messages already end with a full stop). */
export function sentence(s: string): string {
  return /[.!?]$/.test(s) ? s : `${s}.`;
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
  if (p.incomingError) return `Incoming: ${sentence(plainError(p.incomingError, 'the incoming server'))}`;
  if (p.outgoingError) return `Outgoing: ${sentence(plainError(p.outgoingError, 'the outgoing server'))}`;
  if (p.token.lastError) return `The last token refresh failed (${p.token.lastError}); mailgate keeps trying.`;
  return p.token.warning ?? null;
}
