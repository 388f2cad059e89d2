import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeBackoff, parseRetryAfter } from '../../../src/runtime/backoff.js';
import { signPayload, verifySignature } from '../../../src/delivery/signature.js';
import { isPermanentStatus, postWebhook } from '../../../src/delivery/webhook.js';

describe('computeBackoff', () => {
  const opts = { initialMs: 5_000, maxMs: 3_600_000 };
  it('doubles per attempt between half and full step, capped at max', () => {
    expect(computeBackoff(1, opts, () => 0)).toBe(2_500);
    expect(computeBackoff(1, opts, () => 1)).toBe(5_000);
    expect(computeBackoff(3, opts, () => 0.5)).toBe(15_000);
    expect(computeBackoff(30, opts, () => 1)).toBe(3_600_000);
    expect(computeBackoff(30, opts, () => 0)).toBe(1_800_000);
    expect(computeBackoff(5000, opts, () => 1)).toBe(3_600_000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    const now = Date.parse('2026-11-24T10:00:00Z');
    expect(parseRetryAfter('Tue, 24 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 24 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});

describe('signature', () => {
  it('matches an independent HMAC-SHA256 over "<t>.<body>"', () => {
    const body = '{"event":"message.received"}';
    const expected = createHmac('sha256', 'whsec').update(`1700000000.${body}`).digest('hex');
    expect(signPayload('whsec', body, 1700000000)).toBe(`t=1700000000,v1=${expected}`);
  });
  it('verifies within tolerance and refuses stale, tampered or foreign signatures', () => {
    const body = '{"a":1}';
    const header = signPayload('k', body, 1000);
    expect(verifySignature('k', header, body, { nowSeconds: 1100 })).toBe(true);
    expect(verifySignature('k', header, body, { nowSeconds: 1000 + 301 })).toBe(false);
    expect(verifySignature('k', header, '{"a":2}', { nowSeconds: 1000 })).toBe(false);
    expect(verifySignature('other', header, body, { nowSeconds: 1000 })).toBe(false);
    expect(verifySignature('k', 'garbage', body, { nowSeconds: 1000 })).toBe(false);
  });
});

describe('postWebhook (real loopback server)', () => {
  let server: Server;
  let base = '';
  const seen: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        if (req.url === '/ok') res.writeHead(204).end();
        else if (req.url === '/busy') res.writeHead(503, { 'Retry-After': '7' }).end('try later');
        else if (req.url === '/gone') res.writeHead(404).end('no such hook');
        else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2_000);
        else if (req.url === '/throttle') res.writeHead(429).end();
        else res.writeHead(500).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const post = (path: string, timeoutMs = 1_000) =>
    postWebhook({ url: base + path, secret: 's3', event: 'message.received', deliveryId: 'dlv_1', body: '{"x":1}', timeoutMs });

  it('acknowledges any 2xx and sends the contract headers', async () => {
    const r = await post('/ok');
    expect(r).toMatchObject({ ok: true, status: 204, permanent: false, error: null });
    const h = seen.at(-1)!.headers;
    expect(h['content-type']).toBe('application/json');
    expect(h['x-mailgate-event']).toBe('message.received');
    expect(h['x-mailgate-delivery']).toBe('dlv_1');
    expect(verifySignature('s3', h['x-mailgate-signature'] as string, seen.at(-1)!.body)).toBe(true);
  });

  it('classifies failures', async () => {
    expect(await post('/busy')).toMatchObject({ ok: false, status: 503, retryAfterMs: 7_000, permanent: false, responseExcerpt: 'try later' });
    expect(await post('/gone')).toMatchObject({ ok: false, status: 404, permanent: true, error: 'HTTP 404 Not Found' });
    expect(await post('/throttle')).toMatchObject({ ok: false, status: 429, permanent: false });
    const slow = await post('/slow', 200);
    expect(slow).toMatchObject({ ok: false, status: null, permanent: false, error: 'no answer within 200 ms' });
    const refused = await postWebhook({ url: 'http://127.0.0.1:9/x', secret: 's', event: 'message.received', deliveryId: 'd', body: '{}', timeoutMs: 1_000 });
    expect(refused.ok).toBe(false);
    expect(refused.error).toMatch(/^connection failed: The webhook at 127\.0\.0\.1:9 refused the connection .*Check the host and port/);
    expect(refused.error).not.toContain("ECONNREFUSED");
    expect([408, 425, 429, 500].map(isPermanentStatus)).toEqual([false, false, false, false]);
    expect([400, 401, 404, 410, 422].map(isPermanentStatus)).toEqual([true, true, true, true, true]);
  });
});
