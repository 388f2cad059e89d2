import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../../src/config/types.js';
import { hostAllowed, hostPolicyFor } from '../../../src/http/guards.js';
import { AuthThrottle } from '../../../src/runtime/auth-throttle.js';
import { createHttpServer, registerApi } from '../../../src/http/server.js';
import { createLogger } from '../../../src/log.js';

const server = (over: Partial<ServerConfig> = {}): ServerConfig => ({
  listen: { host: '127.0.0.1', port: 8025 },
  publicUrl: 'http://127.0.0.1:8025',
  adminToken: undefined,
  metricsToken: undefined,
  allowedHosts: [],
  trustProxy: [],
  ...over,
});

describe('AuthThrottle', () => {
  it('locks out after the free failures, doubling up to the cap, and forgets on success', () => {
    let now = 0;
    const t = new AuthThrottle({ now: () => now });
    for (let i = 0; i < 5; i++) expect(t.failure('a')).toBe(0);
    expect(t.failure('a')).toBe(1_000);
    expect(t.lockedFor('a')).toBe(1_000);
    expect(t.lockedFor('b')).toBe(0);
    now += 1_000;
    expect(t.lockedFor('a')).toBe(0);
    const steps = [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
    for (const s of steps) expect(t.failure('a')).toBe(s);
    t.success('a');
    expect(t.lockedFor('a')).toBe(0);
    expect(t.failure('a')).toBe(0);
  });

  it('starts from zero after a quiet period, and keeps a bounded number of addresses', () => {
    let now = 0;
    const t = new AuthThrottle({ now: () => now, forgetAfterMs: 60_000, maxAddresses: 100 });
    for (let i = 0; i < 6; i++) t.failure('a');
    now += 61_000;
    expect(t.failure('a')).toBe(0);
    for (let i = 0; i < 10_000; i++) t.failure(`10.0.${i >> 8}.${i & 255}`);
    expect(t.size).toBe(100);
  });
});

describe('Host policy', () => {
  it('answers to the listen address, loopback names on a loopback listener, publicUrl and allowedHosts', () => {
    const p = hostPolicyFor(server({ publicUrl: 'https://mail.example.com', allowedHosts: ['mailgate.internal', 'proxy.lan:8443'] }));
    for (const ok of ['127.0.0.1:8025', 'localhost:8025', '[::1]:8025', 'LOCALHOST:8025', 'mail.example.com', 'mail.example.com:443', 'mailgate.internal:1', 'proxy.lan:8443']) {
      expect(hostAllowed(ok, p), ok).toBe(true);
    }
    for (const bad of ['evil.example:8025', 'localhost:8026', '127.0.0.1:80', 'proxy.lan:8444', 'mail.example.com:8443', '', 'a b', 'x/y']) {
      expect(hostAllowed(bad, p), bad).toBe(false);
    }
    expect(hostAllowed(undefined, p)).toBe(false);
  });

  it('takes any IP literal on a wildcard listener (rebinding needs a name) but no other name', () => {
    const p = hostPolicyFor(server({ listen: { host: '0.0.0.0', port: 8025 }, publicUrl: 'http://127.0.0.1:8025' }));
    expect(hostAllowed('10.1.2.3:8025', p)).toBe(true);
    expect(hostAllowed('[fd00::1]:80', p)).toBe(true);
    expect(hostAllowed('localhost:8025', p)).toBe(true);
    expect(hostAllowed('mailgate.example:8025', p)).toBe(false);
  });
});

describe('HTTP error answers', () => {
  it('logs the real error whenever it answers 500, and says nothing of it to the client', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const app = createHttpServer({ logger, adminToken: 'x'.repeat(24), server: () => server({ allowedHosts: ['localhost'] }) });
    registerApi(app, (api) => {
      api.get('/boom', async () => {
        throw new Error('the real cause: disk on fire');
      });
    });
    const r = await app.inject({ method: 'GET', url: '/v1/boom', headers: { authorization: `Bearer ${'x'.repeat(24)}` } });
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: 'internal error', code: 'INTERNAL' });
    expect(lines.join('')).toContain('the real cause: disk on fire');
    await app.close();
  });
});
