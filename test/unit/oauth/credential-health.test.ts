import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CredentialHealth, expiryOf, expiryWarning } from '../../../src/oauth/credential-health.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { TokenService } from '../../../src/oauth/token-service.js';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { Config } from '../../../src/config/types.js';
import { tmpDataDir } from '../../harness/tmp-dir.js';

const DAY = 86_400_000;
const now = Date.parse('2027-06-01T12:00:00Z');

describe('expiryOf', () => {
  const at = (days: number) => ({ name: 'c', clientSecretExpiresAt: now + days * DAY, clientCertificate: undefined });
  it('reaches the 30-day and 7-day thresholds, and 0 once expired', () => {
    expect(expiryOf(at(45), now)?.threshold).toBeNull();
    expect(expiryOf(at(30), now)?.threshold).toBe(30);
    expect(expiryOf(at(8), now)?.threshold).toBe(30);
    expect(expiryOf(at(7), now)?.threshold).toBe(7);
    expect(expiryOf(at(0.5), now)).toMatchObject({ threshold: 7, daysLeft: 0 });
    expect(expiryOf(at(-3), now)).toMatchObject({ threshold: 0, daysLeft: -3 });
    expect(expiryOf({ name: 'c', clientSecretExpiresAt: undefined, clientCertificate: undefined }, now)).toBeNull();
  });
  it('words name the credential, the date and what to do; nothing before 30 days', () => {
    expect(expiryWarning(expiryOf(at(45), now)!)).toBeNull();
    expect(expiryWarning(expiryOf(at(6), now)!)).toBe(
      'the client secret of credential c expires on 2027-06-07 (in 6 days): create a new one before then (Entra › App registrations › Certificates & secrets) and update the credential and its clientSecretExpiresAt',
    );
    expect(expiryWarning(expiryOf(at(-1), now)!)).toMatch(/^the client secret of credential c expired on 2027-05-31: the provider refuses it \(Microsoft: AADSTS7000222\)/);
  });
});

describe('CredentialHealth.check', () => {
  it('sets the gauge and sends credential.expiring once per threshold, to each webhook of the accounts using it', async () => {
    const config = {
      server: { publicUrl: 'http://x' },
      credentials: [{ name: 'exo', provider: 'microsoft', clientId: 'id', clientSecret: 's', tenant: 't', grant: 'client_credentials', clientSecretExpiresAt: now + 20 * DAY, scopes: undefined, authorizationEndpoint: undefined, tokenEndpoint: undefined, deviceAuthorizationEndpoint: undefined }],
      accounts: [
        { name: 'a', webhook: 'w1', incoming: { auth: { method: 'xoauth2', credential: 'exo' } }, outgoing: undefined },
        { name: 'b', webhook: 'w1', incoming: { auth: { method: 'password', password: 'x' } }, outgoing: { auth: { method: 'xoauth2', credential: 'exo' } } },
        { name: 'c', webhook: 'w2', incoming: { auth: { method: 'xoauth2', credential: 'exo' } }, outgoing: undefined },
        { name: 'd', webhook: 'w2', incoming: { auth: { method: 'xoauth2', credential: 'other' } }, outgoing: undefined },
      ],
    } as unknown as Config;
    const store = SqliteStore.open(tmpDataDir('mg-health-'), new SecretCipher(randomBytes(32)));
    const metrics = createMetrics();
    const sent: { account: string; event: string; fields: Record<string, unknown> }[] = [];
    const events = { emit: async (account: string, event: string, fields: Record<string, unknown>) => (sent.push({ account, event, fields }), 'evt') };
    const logger = createLogger({ level: 'silent' });
    const tokens = new TokenService({ store, config: () => config, logger, metrics, events });
    const health = new CredentialHealth({ store, tokens, config: () => config, events, metrics, logger });
    await health.check(now);
    expect(sent.map((e) => [e.account, e.event, e.fields.accounts, e.fields.daysLeft])).toEqual([
      ['a', 'credential.expiring', ['a', 'b'], 20],
      ['c', 'credential.expiring', ['c'], 20],
    ]);
    expect(await metrics.registry.getSingleMetricAsString('mailgate_client_secret_expires_timestamp_seconds')).toContain(`credential="exo"} ${(now + 20 * DAY) / 1000}`);
    await health.check(now + DAY); // still the 30-day band: not sent again
    expect(sent).toHaveLength(2);
    await health.check(now + 14 * DAY); // the 7-day band: once more
    expect(sent).toHaveLength(4);
    expect(sent[2]!.fields.daysLeft).toBe(6);
  });
});
