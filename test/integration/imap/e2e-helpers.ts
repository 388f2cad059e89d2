import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll } from 'vitest';
import { getHarness, oauthAdmin, tmpDataDir, WebhookSink, type HarnessInfo } from '../../harness/index.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

export const ADMIN = 't0ken-e2e-0123456789abcdef';
export const WEBHOOK_SECRET = 'whsec-e2e';

export interface E2EOptions {
  user: string;
  clientId: string;
  webhookUrl: string;
  imapPort?: number;
  mode?: 'idle' | 'poll';
  afterDelivery?: 'seen' | 'move' | 'delete' | 'none';
  extraIncoming?: string;
  protocol?: 'imap' | 'pop3';
  concurrency?: number;
  /** Default 1s. */
  pollInterval?: string;
  /** Adds an outgoing server (Dovecot submission on this port) with the same XOAUTH2 login. */
  outgoing?: { port: number; method?: 'xoauth2' | 'oauthbearer' };
}

/** A config dir for a daemon that reads one mailbox of the harness Dovecot with XOAUTH2. */
export async function writeE2EConfig(h: HarnessInfo, o: E2EOptions): Promise<{ dir: string; path: string; port: number }> {
  const dir = tmpDataDir('mg-e2e-');
  const port = await freePort();
  const protocol = o.protocol ?? 'imap';
  const incomingPort = o.imapPort ?? (protocol === 'imap' ? h.imapPort : h.pop3Port);
  const yaml = `server:
  listen: 127.0.0.1:${port}
  adminToken: ${ADMIN}
dataDir: ./data
logLevel: info
credentials:
  - name: test-idp
    provider: custom
    clientId: ${o.clientId}
    clientSecret: secret-${o.clientId}
    authorizationEndpoint: ${h.oauthUrl}/authorize
    tokenEndpoint: ${h.oauthUrl}/token
    scopes: [mail]
accounts:
  - name: support
    email: ${o.user}@example.com
    incoming:
      protocol: ${protocol}
      host: 127.0.0.1
      port: ${incomingPort}
      tls: false
      user: ${o.user}
      auth: { method: xoauth2, credential: test-idp }
${protocol === 'imap' ? `      mode: ${o.mode ?? 'idle'}\n` : ''}      pollInterval: ${o.pollInterval ?? '1s'}
      afterDelivery: ${o.afterDelivery ?? 'seen'}
${o.extraIncoming ?? ''}${o.outgoing ? outgoingYaml(o.user, o.outgoing) : ''}    webhook: pipeline
webhooks:
  - name: pipeline
    url: ${o.webhookUrl}
    secret: ${WEBHOOK_SECRET}
    backoff: { initial: 100ms, max: 1s }
    timeout: 5s
${o.concurrency ? `    concurrency: ${o.concurrency}\n` : ''}`;
  const path = join(dir, 'mailgate.yaml');
  writeFileSync(path, yaml);
  return { dir, path, port };
}

function outgoingYaml(user: string, out: NonNullable<E2EOptions['outgoing']>): string {
  return `    outgoing:
      host: 127.0.0.1
      port: ${out.port}
      tls: false
      user: ${user}
      auth: { method: ${out.method ?? 'xoauth2'}, credential: test-idp }
`;
}

/** Runs the browser-less consent: daemon authorize URL → test IdP (login_hint) → daemon callback. */
export async function authorizeThroughDaemon(d: Daemon, account = 'support'): Promise<void> {
  const r = await fetch(`${d.url}/v1/accounts/${account}/authorize`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
  if (!r.ok) throw new Error(`authorize: HTTP ${r.status} ${await r.text()}`);
  const { authorizationUrl } = (await r.json()) as { authorizationUrl: string };
  const idp = await fetch(authorizationUrl, { redirect: 'manual' });
  const callback = idp.headers.get('location');
  if (idp.status !== 302 || !callback) throw new Error(`IdP answered ${idp.status}`);
  const cb = await fetch(callback);
  if (cb.status !== 200) throw new Error(`callback: HTTP ${cb.status} ${await cb.text()}`);
}

export { startDaemon };

/**
 * Per test file: registers the OAuth2 client once, and after each test kills
 * the daemons and closes the webhook sinks the test started.
 */
export function e2eLifecycle(clientId: string) {
  const daemons: Daemon[] = [];
  const sinks: WebhookSink[] = [];
  beforeAll(async () => {
    await oauthAdmin(getHarness()).registerClient(clientId, `secret-${clientId}`);
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
    for (const s of sinks.splice(0)) await s.close();
  });
  return {
    sink: async (): Promise<WebhookSink> => {
      const s = await WebhookSink.start();
      sinks.push(s);
      return s;
    },
    daemon: async (configPath: string, port: number): Promise<Daemon> => {
      const d = await startDaemon(configPath, port);
      daemons.push(d);
      return d;
    },
  };
}
