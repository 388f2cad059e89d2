// npm run bench:refresh — the refresh scheduler against the real test OAuth2
// server process: 2,000 accounts whose tokens are all due at once.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { loadConfig, formatIssue } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { TokenService } from '../src/oauth/token-service.js';
import { RefreshScheduler } from '../src/scheduler/refresh-scheduler.js';
import { SecretCipher } from '../src/secrets/cipher.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { OAuthAdmin, startOAuthServer, tmpDataDir } from '../test/harness/index.js';
import { report } from './report.js';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

it('refresh benchmark', async () => {
  const oauth = await startOAuthServer(); // private: its counters are ours alone
  try {
    const admin = new OAuthAdmin(oauth.url);
    await admin.registerClient('bench', 'bench-secret');
    const dir = tmpDataDir('mg-bench-refresh-');
    const names = Array.from({ length: ACCOUNTS }, (_, i) => `acct${i}`);
    writeFileSync(
      join(dir, 'mailgate.yaml'),
      `dataDir: ./data
tokens: { refreshBefore: 10m, refreshConcurrency: ${CONCURRENCY} }
credentials:
  - { name: idp, provider: custom, clientId: bench, clientSecret: bench-secret, authorizationEndpoint: "${oauth.url}/authorize", tokenEndpoint: "${oauth.url}/token", scopes: [mail] }
webhooks:
  - { name: w, url: "http://127.0.0.1:9/x", secret: s }
accounts:
${names.map((n) => `  - { name: ${n}, email: ${n}@example.com, webhook: w, incoming: { protocol: imap, host: 127.0.0.1, auth: { method: xoauth2, credential: idp } } }`).join('\n')}
`,
    );
    const loaded = await loadConfig(join(dir, 'mailgate.yaml'), { env: {} });
    if (!loaded.ok) throw new Error(loaded.errors.map(formatIssue).join('\n'));
    const config = loaded.config;
    const store = SqliteStore.open(config.dataDir, new SecretCipher(randomBytes(32)));
    const now = Date.now();
    for (const n of names) {
      const t = await admin.issue('bench', `${n}@example.com`);
      // due: expires in 5 minutes, refreshBefore is 10 minutes
      await store.tokens.save({ account: n, credential: 'idp', refreshToken: t.refresh_token, accessToken: t.access_token, accessExpiresAt: now + 5 * 60_000, scope: 'mail', state: 'ok', lastRefreshAt: now - 55 * 60_000, refreshTokenIssuedAt: now, lastError: null }, now);
    }
    const logger = createLogger({ level: 'silent' });
    const tokens = new TokenService({ store, config: () => config, logger, metrics: createMetrics(), events: { emit: async () => '' } });
    const scheduler = new RefreshScheduler({ store, tokens, config: () => config, logger });
    await admin.resetStats();
    const t0 = performance.now();
    const result = await scheduler.tick();
    const ms = performance.now() - t0;
    const stats = await admin.stats();
    const again = await scheduler.tick();
    // Same again with 50 ms of provider latency per token request, as a real
    // provider has: requests now overlap, and the cap must hold.
    for (const rec of await store.tokens.list()) await store.tokens.save({ ...rec, accessExpiresAt: Date.now() + 5 * 60_000, lastRefreshAt: Date.now() - 55 * 60_000 }, Date.now());
    await admin.configure({ tokenDelayMs: 50 });
    await admin.resetStats();
    const t1 = performance.now();
    const slow = await scheduler.tick();
    const slowMs = performance.now() - t1;
    const slowStats = await admin.stats();
    await store.close();
    report('refresh', [
      `${ACCOUNTS} accounts due at once, refreshConcurrency ${CONCURRENCY}, test OAuth2 server process on loopback (rotation on)`,
      `refreshed ${result.refreshed}, failed ${result.failed} in ${ms.toFixed(0)} ms → ${(result.refreshed / (ms / 1000)).toFixed(0)} refreshes/s`,
      `token requests seen by the server: ${stats.tokenRequests}; peak concurrent requests: ${stats.peakInFlight} (cap ${CONCURRENCY})`,
      `second pass right after: ${again.due} due (nothing refreshed twice)`,
      `with 50 ms provider latency: refreshed ${slow.refreshed} in ${slowMs.toFixed(0)} ms → ${(slow.refreshed / (slowMs / 1000)).toFixed(0)} refreshes/s; peak concurrent requests ${slowStats.peakInFlight} (cap ${CONCURRENCY})`,
    ]);
  } finally {
    await oauth.stop();
  }
});
