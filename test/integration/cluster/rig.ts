import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { oauthAdmin, tmpDataDir, uniqueUser, type HarnessInfo, type Postgres } from '../../harness/index.js';
import { freePort, startDaemon, type Daemon } from '../daemon/run-daemon.js';

export const CLUSTER_ADMIN = 't0ken-cluster-0123456789abcdef';
export const CLUSTER_SECRET = 'whsec-cluster';

export interface ClusterRig {
  /** The PostgreSQL database (null: each replica on its own SQLite dataDir). */
  url: string | null;
  users: string[];
  accounts: string[];
  dir: string;
  /** The test's own view of the database, through the store contract (PostgreSQL only). */
  store: Store | null;
  start(name: string): Promise<Daemon>;
  close(): Promise<void>;
}

export interface RigOptions {
  h: HarnessInfo;
  clientId: string;
  webhookUrl: string;
  accounts: number;
  /** Null: one SQLite replica (no store or cluster section). */
  postgres: Postgres | null;
  leaseTtl?: string;
  /** Tokens stored with an access token this close to expiry (default: valid for long). */
  accessExpiresInMs?: number;
  key?: Buffer;
}

/**
 * A fresh database, `accounts` Dovecot mailboxes with valid tokens stored
 * (issued by the test OAuth2 server, so nothing needs a consent), and
 * replicas started on demand: `mailgate serve` processes with the same
 * config but their own nodeName and dataDir, sharing the key.
 */
export async function clusterRig(o: RigOptions): Promise<ClusterRig> {
  const key = o.key ?? randomBytes(32);
  const url = o.postgres ? await o.postgres.createDatabase() : null;
  const dir = tmpDataDir('mg-cluster-');
  const users = Array.from({ length: o.accounts }, () => uniqueUser('cl'));
  const accounts = users.map((_, i) => `acc${i + 1}`);
  // SQLite: the one replica's own dataDir, seeded before it starts.
  const sqliteDir = join(dir, 'solo', 'data');
  const seed = await openStore(url ? { dataDir: dir, store: { kind: 'postgres', url, poolSize: 2 } } : { dataDir: sqliteDir }, {
    cipher: new SecretCipher(key),
    logger: silentLogger(),
  });
  const admin = oauthAdmin(o.h);
  for (const [i, user] of users.entries()) {
    const t = (await admin.issue(o.clientId, user)) as { access_token: string; refresh_token: string };
    const now = Date.now();
    await seed.tokens.save(
      {
        account: accounts[i] ?? '',
        credential: 'test-idp',
        refreshToken: t.refresh_token,
        accessToken: t.access_token,
        accessExpiresAt: now + (o.accessExpiresInMs ?? 3_000_000),
        scope: 'mail',
        state: 'ok',
        lastRefreshAt: now,
        refreshTokenIssuedAt: now,
        lastError: null,
      },
      now,
    );
  }
  let store: Store | null = seed;
  if (!url) {
    await seed.close();
    store = null;
  }
  const started: Daemon[] = [];
  return {
    url,
    users,
    accounts,
    dir,
    store,
    start: async (name: string) => {
      const port = await freePort();
      const nodeDir = join(dir, url ? name : 'solo');
      mkdirSync(nodeDir, { recursive: true });
      const storeYaml = url
        ? `store:
  kind: postgres
  url: ${url}
cluster:
  nodeName: ${name}
  leaseTtl: ${o.leaseTtl ?? '3s'}
`
        : '';
      const yaml = `server:
  listen: 127.0.0.1:${port}
  adminToken: ${CLUSTER_ADMIN}
dataDir: ./data
logLevel: info
${storeYaml}credentials:
  - name: test-idp
    provider: custom
    clientId: ${o.clientId}
    clientSecret: secret-${o.clientId}
    authorizationEndpoint: ${o.h.oauthUrl}/authorize
    tokenEndpoint: ${o.h.oauthUrl}/token
    scopes: [mail]
accounts:
${users
  .map(
    (user, i) => `  - name: ${accounts[i]}
    email: ${user}@example.com
    incoming:
      protocol: imap
      host: 127.0.0.1
      port: ${o.h.imapPort}
      tls: false
      user: ${user}
      auth: { method: xoauth2, credential: test-idp }
      mode: idle
      afterDelivery: seen
    webhook: pipeline
`,
  )
  .join('')}webhooks:
  - name: pipeline
    url: ${o.webhookUrl}
    secret: ${CLUSTER_SECRET}
    backoff: { initial: 100ms, max: 1s }
    timeout: 5s
`;
      const path = join(nodeDir, 'mailgate.yaml');
      writeFileSync(path, yaml);
      const d = await startDaemon(path, port, { MAILGATE_SECRET_KEY: key.toString('base64') }, [], 'ready', 60_000);
      started.push(d);
      return d;
    },
    close: async () => {
      for (const d of started.splice(0)) {
        if (d.child.exitCode === null) {
          try {
            d.child.kill('SIGCONT');
          } catch {
            // gone
          }
        }
        await d.stop('SIGKILL');
      }
      await store?.close();
    },
  };
}

/** Account → owner of every live lease. */
export async function leaseOwners(store: Store): Promise<Map<string, string>> {
  return new Map((await store.leases.list(Date.now())).map((l) => [l.account, l.owner]));
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 45_000, pollMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
