import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SinkRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  json: unknown;
  receivedAt: number;
  /** The status this sink answered with. */
  answered: number;
}

export type Behaviour = (req: { index: number; raw: string; json: unknown }) => { status: number; delayMs?: number; headers?: Record<string, string>; body?: string };

/**
 * A real HTTP webhook receiver on loopback that records every request and
 * answers as the test programs it (e.g. "500 five times, then 200").
 */
export class WebhookSink {
  readonly requests: SinkRequest[] = [];
  #server: Server;
  #behaviour: Behaviour = () => ({ status: 200 });
  #count = 0;
  port = 0;

  private constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(raw);
        } catch {
          // recorded as raw only
        }
        const answer = this.#behaviour({ index: this.#count++, raw, json });
        const finish = () => {
          this.requests.push({
            method: req.method ?? '',
            path: req.url ?? '',
            headers: req.headers,
            raw,
            json,
            receivedAt: Date.now(),
            answered: answer.status,
          });
          if (res.destroyed) return;
          res.writeHead(answer.status, { 'Content-Type': 'text/plain', ...(answer.headers ?? {}) });
          res.end(answer.body ?? (answer.status < 300 ? 'ok' : 'no'));
        };
        if (answer.delayMs) setTimeout(finish, answer.delayMs);
        else finish();
      });
    });
    this.#server.keepAliveTimeout = 30_000;
  }

  static async start(): Promise<WebhookSink> {
    const sink = new WebhookSink();
    await new Promise<void>((r) => sink.#server.listen(0, '127.0.0.1', () => r()));
    const addr = sink.#server.address();
    sink.port = typeof addr === 'object' && addr ? addr.port : 0;
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  setBehaviour(b: Behaviour | { status: number; delayMs?: number; failTimes?: number; failStatus?: number }): void {
    if (typeof b === 'function') {
      this.#behaviour = b;
      return;
    }
    const { status, delayMs, failTimes = 0, failStatus = 500 } = b;
    let failed = 0;
    this.#behaviour = () => {
      if (failed < failTimes) {
        failed++;
        return { status: failStatus };
      }
      return delayMs !== undefined ? { status, delayMs } : { status };
    };
  }

  /** Requests answered 2xx. */
  get acknowledged(): SinkRequest[] {
    return this.requests.filter((r) => r.answered >= 200 && r.answered < 300);
  }

  async waitFor(predicate: (s: WebhookSink) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`webhook sink: condition not met within ${timeoutMs} ms (${this.requests.length} requests so far)`);
      await sleep(20);
    }
  }

  clear(): void {
    this.requests.length = 0;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/**
 * The receiver's view of the contract's signature:
 * `X-Mailgate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * Written from the contract, independently of mailgate's signing code.
 */
export function verifySignature(secret: string, header: string | undefined, rawBody: string, toleranceSeconds = 300): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
