import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { DeliveryEventSink } from '../delivery/event-sink.js';
import { silentLogger, type Logger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { OAuthFlows } from '../oauth/flows.js';
import { TokenService } from '../oauth/token-service.js';
import { prepareDataDir } from '../data-dir.js';
import { loadSecretKey } from '../secrets/keyring.js';
import { openStore, storedCredentialNames } from '../store/open.js';
import type { Store } from '../store/store.js';

/** What one-shot CLI commands share: the config, the store, the token service. */
export interface CliContext {
  config: Config;
  store: Store;
  tokens: TokenService;
  flows: OAuthFlows;
  logger: Logger;
  close(): Promise<void>;
}

/** For `credentials …`: an account may name a credential that is about to be added. */
const ANY_CREDENTIAL = async () => ({ has: () => true });

export async function openContext(
  configPath: string,
  env: Record<string, string | undefined> = process.env,
  opts: { credentialsMayBeMissing?: boolean } = {},
): Promise<CliContext> {
  const databaseCredentials = opts.credentialsMayBeMissing ? ANY_CREDENTIAL : storedCredentialNames;
  const result = await loadConfig(configPath, { env, databaseCredentials });
  if (!result.ok) throw new ConfigError(result.errors);
  const config = result.config;
  prepareDataDir(config.dataDir);
  const key = loadSecretKey(config.dataDir, env, { secretKeyFile: config.secretKeyFile, shared: config.store.kind === 'postgres' });
  const logger = silentLogger();
  const store = await openStore(config, { cipher: key.cipher, logger });
  // Events raised here (reauth_required) are queued; the daemon's worker posts them.
  const events = new DeliveryEventSink({ store, config: () => config, logger, wake: () => undefined });
  const tokens = new TokenService({ store, config: () => config, logger, metrics: createMetrics(), events });
  const flows = new OAuthFlows({ store, tokens, publicUrl: () => config.server.publicUrl });
  return { config, store, tokens, flows, logger, close: () => store.close() };
}

/** Runs a command against a context, printing failures the admin's way; returns the exit code. */
export async function withContext(
  configPath: string,
  fn: (ctx: CliContext) => Promise<number | void>,
  opts: { credentialsMayBeMissing?: boolean } = {},
): Promise<number> {
  const { reportFailure } = await import('./common.js');
  let ctx: CliContext | null = null;
  try {
    ctx = await openContext(configPath, process.env, opts);
    return (await fn(ctx)) ?? 0;
  } catch (err) {
    return reportFailure(err);
  } finally {
    await ctx?.close();
  }
}
