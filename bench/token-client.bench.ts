// A one-off comparison for issue 17 (not part of npm run bench:*): the same
// client-credentials request through the token client's two paths, against
// the real test OAuth2 server process: simple-oauth2 (a confidential client)
// and the plain form POST beside it (a public client). Rounds alternate so a
// noisy neighbour hits both alike; the result is a ratio.
import { it } from 'vitest';
import { resolveCredential } from '../src/oauth/providers.js';
import { requestToken } from '../src/oauth/token-client.js';
import { OAuthAdmin, startOAuthServer } from '../test/harness/index.js';

const N = Number(process.env.BENCH_REQUESTS ?? 1000);
const CONCURRENCY = 8;

it('token client: simple-oauth2 path vs plain form path', async () => {
  const oauth = await startOAuthServer();
  try {
    const admin = new OAuthAdmin(oauth.url);
    await admin.registerClient('conf', 'conf-secret', 'u1');
    await admin.registerClient('pub', null, 'u2');
    const base = { authorizationEndpoint: undefined, deviceAuthorizationEndpoint: undefined, tenant: 'common', grant: 'client_credentials' as const, provider: 'custom' as const, tokenEndpoint: `${oauth.url}/token`, scopes: ['mail'] };
    const conf = resolveCredential({ ...base, name: 'conf', clientId: 'conf', clientSecret: 'conf-secret' });
    const pub = resolveCredential({ ...base, name: 'pub', clientId: 'pub', clientSecret: undefined });
    const run = async (cred: typeof conf) => {
      let left = N;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (left-- > 0) await requestToken(cred, { grant: 'client_credentials' });
      }));
      return N / ((performance.now() - t0) / 1000);
    };
    await run(conf);
    await run(pub); // warm-up
    const rates: { simple: number[]; plain: number[] } = { simple: [], plain: [] };
    for (let round = 0; round < 3; round++) {
      rates.simple.push(await run(conf));
      rates.plain.push(await run(pub));
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[1]!;
    console.log(`token client, ${N} client-credentials requests × 3 rounds, concurrency ${CONCURRENCY}: simple-oauth2 ${rates.simple.map((r) => r.toFixed(0)).join('/')} req/s, plain form ${rates.plain.map((r) => r.toFixed(0)).join('/')} req/s; median ratio simple/plain ${(med(rates.simple) / med(rates.plain)).toFixed(2)}`);
  } finally {
    await oauth.stop();
  }
});
