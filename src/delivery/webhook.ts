import { describeError } from '../errors.js';
import type { EventName } from './events.js';
import { parseRetryAfter } from './backoff.js';
import { signPayload } from './signature.js';

export const USER_AGENT = 'mailgate/0.1';
/** We keep this much of a refusal's body for the admin to read. */
const EXCERPT_CHARS = 500;
/** Read at most this much of any answer, then drop the connection. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface WebhookRequest {
  url: string;
  secret: string;
  event: EventName;
  deliveryId: string;
  /** The JSON body, serialised once (the signature covers these exact bytes). */
  body: string;
  timeoutMs: number;
}

export interface WebhookResult {
  ok: boolean;
  status: number | null;
  retryAfterMs: number | null;
  /** True when retrying cannot help (style.md: a 4xx other than 408/425/429). */
  permanent: boolean;
  error: string | null;
  responseExcerpt: string;
}

export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

/** One signed delivery attempt. Never throws: every failure is a result. */
export async function postWebhook(req: WebhookRequest): Promise<WebhookResult> {
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': USER_AGENT,
    'X-Mailgate-Event': req.event,
    'X-Mailgate-Delivery': req.deliveryId,
    // Signed afresh on every attempt with the current time (contract).
    'X-Mailgate-Signature': signPayload(req.secret, req.body),
  };
  const signal = AbortSignal.timeout(req.timeoutMs);
  let res: Response;
  try {
    res = await fetch(req.url, { method: 'POST', headers, body: req.body, signal, redirect: 'manual' });
  } catch (err) {
    const timedOut = signal.aborted;
    return {
      ok: false,
      status: null,
      retryAfterMs: null,
      permanent: false,
      error: timedOut ? `no answer within ${req.timeoutMs} ms` : `connection failed: ${describeError((err as { cause?: unknown }).cause ?? err)}`,
      responseExcerpt: '',
    };
  }
  let excerpt = '';
  try {
    excerpt = await readCapped(res, signal);
  } catch {
    // the status is what counts; a broken body does not change it
  }
  const ok = res.status >= 200 && res.status < 300;
  return {
    ok,
    status: res.status,
    retryAfterMs: ok ? null : parseRetryAfter(res.headers.get('retry-after')),
    permanent: !ok && isPermanentStatus(res.status),
    error: ok ? null : `HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`,
    responseExcerpt: excerpt.slice(0, EXCERPT_CHARS),
  };
}

async function readCapped(res: Response, signal: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < MAX_RESPONSE_BYTES && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8');
}
