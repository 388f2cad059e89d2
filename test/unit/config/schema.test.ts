import { describe, expect, it } from 'vitest';
import { knownKeysAt, rawConfigSchema } from '../../../src/config/schema.js';

const account = (incoming: Record<string, unknown>) => ({
  accounts: [{ name: 'a', email: 'a@example.com', webhook: 'h', incoming: { host: 'h', auth: { method: 'password', password: 'p' }, ...incoming } }],
});

describe('config schema', () => {
  it('applies the defaults and units itself', () => {
    const c = rawConfigSchema.parse({ webhooks: [{ name: 'h', url: 'https://h.example/x', backoff: { max: '2h' } }] });
    expect(c.server).toEqual({ listen: { host: '127.0.0.1', port: 8025 }, allowedHosts: [], trustProxy: [] });
    expect(c).toMatchObject({ dataDir: './data', logLevel: 'info', credentials: [], accounts: [] });
    expect(c.retention).toEqual({ messagesMs: 30 * 86_400_000, outboxMs: 30 * 86_400_000 });
    expect(c.tokens).toEqual({ refreshBeforeMs: 600_000, refreshConcurrency: 8 });
    expect(c.webhooks[0]).toEqual({
      name: 'h', url: 'https://h.example/x', maxAttempts: 15, backoff: { initialMs: 5_000, maxMs: 7_200_000 },
      timeoutMs: 30_000, maxInlineAttachmentBytes: 10 * 1_048_576, maxBodyBytes: 25 * 1_048_576, concurrency: 8, signature: 'mailgate',
    });
  });

  it('reads incoming by protocol: imap has its defaults, pop3 leaves imap-only keys unset for buildConfig to refuse', () => {
    const imap = rawConfigSchema.parse(account({ protocol: 'imap' })).accounts[0]?.incoming;
    expect(imap).toMatchObject({ protocol: 'imap', tls: true, mailboxes: ['INBOX'], mode: 'idle', pollIntervalMs: 60_000, idleResyncMs: 300_000, afterDelivery: 'seen' });
    expect(imap && 'moveTo' in imap).toBe(true);
    const pop3 = rawConfigSchema.parse(account({ protocol: 'pop3', pollInterval: 30 })).accounts[0]?.incoming;
    expect(pop3).toMatchObject({ protocol: 'pop3', mailboxes: undefined, mode: undefined, pollIntervalMs: 30_000 });
    const written = rawConfigSchema.parse(account({ protocol: 'pop3', mode: 'poll', afterDelivery: 'move' })).accounts[0]?.incoming;
    expect(written).toMatchObject({ mode: 'poll', afterDelivery: 'move' });
  });

  it('knows the keys at every level, through lists, the protocol union and transforms', () => {
    expect(knownKeysAt([])).toEqual(['server', 'dataDir', 'logLevel', 'retention', 'tokens', 'credentials', 'accounts', 'webhooks', 'relay']);
    expect(knownKeysAt(['accounts', 0, 'incoming'])).toEqual([
      'protocol', 'host', 'port', 'tls', 'user', 'auth', 'mailboxes', 'requireTLS', 'mode', 'pollInterval', 'idleResync', 'afterDelivery', 'moveTo', 'maxMessageSize', 'initialSync',
    ]);
    expect(knownKeysAt(['accounts', 'incoming', 'auth'])).toEqual(['method', 'credential', 'password', 'passwordFile']);
    expect(knownKeysAt(['webhooks', 2, 'backoff'])).toEqual(['initial', 'max']);
    expect(knownKeysAt(['retention'])).toEqual(['messages', 'outbox']);
    expect(knownKeysAt(['server'])).toContain('metricsTokenFile');
    expect(knownKeysAt(['credentials'])).toContain('clientSecretFile');
    expect(knownKeysAt(['accounts', 'nope'])).toEqual([]);
    expect(knownKeysAt(['relay', 'clients', 0])).toEqual(['name', 'username', 'password', 'passwordFile', 'account', 'allowedFrom']);
  });
});
