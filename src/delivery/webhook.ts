import http from 'node:http';
import https from 'node:https';
import { describeError, explainSystemError, type FailureClass } from '../errors.js';
import type { EventName } from '../store/deliveries.js';
import { parseRetryAfter } from '../runtime/backoff.js';
import { createSigner, signatureHeaders, type Signer } from './signing.js';

export const USER_AGENT = 'mailgate/0.1';
/** We keep this much of a refusal's body for the admin to read. */
const EXCERPT_CHARS = 500;
/** Read at most this much of any answer, then drop the connection. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface WebhookRequest {
  url: string;
  /** How to sign (signature mode and every secret of a rotation); without it, `secret` in the v1 mode. */
  signer?: Signer;
  secret?: string;
  event: EventName;
  deliveryId: string;
  /** The JSON body, serialised once (the signature covers these exact bytes); UTF-8 when a Buffer. */
  body: string | Buffer;
  timeoutMs: number;
}

export interface WebhookResult {
  ok: boolean;
  status: number | null;
  retryAfterMs: number | null;
  /**
   * A failed attempt in the shared vocabulary (src/errors.ts): `permanent`
   * for a 4xx other than 408/425/429, `throttled` when the answer said how
   * long to wait (Retry-After), else `transient`; null when acknowledged.
   * A webhook attempt is never thrown: its outcome is recorded on the delivery.
   */
  failure: Exclude<FailureClass, 'auth'> | null;
  /** True when retrying cannot help (failure `permanent`). */
  permanent: boolean;
  error: string | null;
  responseExcerpt: string;
}

export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

/**
 * Keep-alive agents shared by every delivery: node:http costs a fraction of
 * fetch's CPU per request (fetch was a third of the daemon's time in the
 * ingest profile), and a connection per webhook is reused across posts.
 */
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

function failure(error: string): WebhookResult {
  return { ok: false, status: null, retryAfterMs: null, failure: 'transient', permanent: false, error, responseExcerpt: '' };
}

/** One signed delivery attempt. Never throws: every failure is a result. */
export function postWebhook(req: WebhookRequest): Promise<WebhookResult> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return Promise.resolve(failure(`invalid webhook URL ${req.url}`));
  }
  const protocol = url.protocol === 'https:' ? 'https:' : url.protocol === 'http:' ? 'http:' : null;
  if (!protocol) return Promise.resolve(failure(`webhook URL must be http or https: ${req.url}`));
  const body = typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : req.body;
  const headers = {
    'Content-Type': 'application/json',
    'Content-Length': String(body.length),
    'User-Agent': USER_AGENT,
    'X-Mailgate-Event': req.event,
    'X-Mailgate-Delivery': req.deliveryId,
    // Signed afresh on every attempt with the current time (contract), in the webhook's mode, once per secret.
    ...signatureHeaders(req.signer ?? createSigner('mailgate', [req.secret ?? '']), req.deliveryId, body),
  };
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    const settle = (r: WebhookResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve(r);
    };
    const send = protocol === 'https:' ? https.request : http.request;
    const request = send(url, { method: 'POST', headers, agent: AGENTS[protocol] }, (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const done = () => settle(resultOf(res.statusCode ?? 0, res.statusMessage ?? '', res.headers['retry-after'], Buffer.concat(chunks)));
      res.on('data', (chunk: Buffer) => {
        if (total >= MAX_RESPONSE_BYTES) return res.destroy();
        chunks.push(chunk);
        total += chunk.length;
      });
      res.on('end', done);
      // Cut off (size cap) or broken after the status line: the status is what counts.
      res.on('close', done);
      res.on('error', () => undefined);
    });
    // One deadline for the whole exchange (fetch's AbortSignal.timeout equivalent).
    const deadline = setTimeout(() => {
      timedOut = true;
      request.destroy();
    }, req.timeoutMs);
    request.on('error', (err) => {
      // In plain words (what happened, to what, what to check); never the URL's path or query (tokens live there).
      const plain = timedOut ? null : explainSystemError(err, `the webhook at ${url.host}`);
      settle(failure(timedOut ? `no answer within ${req.timeoutMs} ms` : `connection failed: ${plain?.message ?? describeError(err)}`));
    });
    request.end(body);
  });
}

function resultOf(status: number, statusText: string, retryAfter: string | string[] | undefined, raw: Buffer): WebhookResult {
  const ok = status >= 200 && status < 300;
  const retryAfterMs = ok ? null : parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  const failure = ok ? null : isPermanentStatus(status) ? 'permanent' : retryAfterMs !== null ? 'throttled' : 'transient';
  return {
    ok,
    status,
    retryAfterMs,
    failure,
    permanent: failure === 'permanent',
    error: ok ? null : `HTTP ${status}${statusText ? ' ' + statusText : ''}`,
    responseExcerpt: raw.subarray(0, MAX_RESPONSE_BYTES).toString('utf8').slice(0, EXCERPT_CHARS),
  };
}
