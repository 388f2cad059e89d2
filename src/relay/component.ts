import type { Config } from '../config/types.js';
import { describeError, MailgateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Component } from '../runtime/component.js';
import type { MetaRepo } from '../store/meta.js';
import { RelayServer, type RelayServerOptions } from './server.js';
import { RelayStats, relayEventsOf } from './stats.js';
import { readRelayStats, RELAY_STATS_KEY, relayStatusView, type RelayStatusView } from './status.js';
import type { RelayEvents, RelayOutbox } from './types.js';

/** How often changed counts are written to the store (and at stop): a login flood costs one write per interval, not one per attempt. */
export const RELAY_STATS_FLUSH_MS = 5_000;
/** The metric label for logins whose username names no client (config names cannot contain parentheses). */
export const UNKNOWN_CLIENT_LABEL = '(unknown)';

export interface RelayComponentDeps {
  config: () => Config;
  outbox: RelayOutbox;
  meta: MetaRepo;
  logger: Logger;
  metrics: Metrics;
  /** For tests: options passed to the RelayServer. */
  server?: Partial<Omit<RelayServerOptions, 'config' | 'outbox' | 'logger' | 'events'>>;
}

/**
 * The relay as a daemon component: listens when the config has a `relay`
 * section, follows reloads (a section added starts it, removed stops it,
 * changed clients apply to new sessions), and keeps per-client counts in
 * the store for `mailgate status` and the admin UI.
 */
export class RelayComponent implements Component {
  readonly name = 'relay';
  readonly #deps: RelayComponentDeps;
  readonly #stats = new RelayStats();
  readonly #events: RelayEvents;
  #server: RelayServer | null = null;
  #timer: NodeJS.Timeout | null = null;
  #written = 0;

  constructor(deps: RelayComponentDeps) {
    this.#deps = deps;
    const { metrics } = deps;
    this.#events = relayEventsOf(this.#stats, {
      loginFailed: (_address, client) => metrics.relayLoginFailures.inc({ client: client ?? UNKNOWN_CLIENT_LABEL }),
      relayed: (client) => metrics.relayMessages.inc({ client, outcome: 'relayed' }),
      refused: (client, code) => metrics.relayMessages.inc({ client, outcome: String(code) }),
    });
  }

  /** Where it listens now (the real port), or null. */
  address(): { host: string; port: number } | null {
    return this.#server?.address() ?? null;
  }

  async start(): Promise<void> {
    try {
      const stored = await readRelayStats(this.#deps.meta);
      if (stored) this.#stats.restore(stored);
    } catch (err) {
      this.#deps.logger.warn({ err, component: 'relay' }, 'the stored relay counts could not be read; counting from zero');
    }
    this.#written = this.#stats.version;
    const config = this.#deps.config().relay;
    if (config) await this.#open(config);
    this.#timer = setInterval(() => void this.#flush(), RELAY_STATS_FLUSH_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const server = this.#server;
    this.#server = null;
    await server?.stop();
    await this.#flush();
  }

  async reconfigure(config: Config): Promise<void> {
    const next = config.relay;
    const server = this.#server;
    try {
      if (!next) {
        if (server) {
          this.#server = null;
          await server.stop();
          this.#deps.logger.info({ component: 'relay' }, 'relay section removed: the SMTP relay stopped');
        }
        return;
      }
      if (!server) await this.#open(next);
      else await server.reconfigure(next);
    } catch (err) {
      // The config was checked before; what is left is the listener itself (a taken port). Other components still get the reload.
      this.#deps.logger.error({ err, component: 'relay' }, 'the SMTP relay could not take the reloaded config');
    }
  }

  /** The configured listener and per-client counts as they are now in this process. */
  status(): RelayStatusView | null {
    return relayStatusView(this.#deps.config().relay, this.#stats.snapshot());
  }

  async #open(config: NonNullable<Config['relay']>): Promise<void> {
    const server = new RelayServer({ ...this.#deps.server, config, outbox: this.#deps.outbox, logger: this.#deps.logger, events: this.#events });
    try {
      await server.start();
    } catch (err) {
      if (err instanceof MailgateError) throw err;
      // A taken port or an address this machine does not have: say which key to look at.
      const { host, port } = config.listen;
      throw new MailgateError('INTERNAL', `the SMTP relay cannot listen on ${host}:${port} (relay.listen): ${describeError(err)}`, { cause: err });
    }
    this.#server = server;
  }

  async #flush(): Promise<void> {
    const version = this.#stats.version;
    if (version === this.#written) return;
    const clients = this.#deps.config().relay?.clients.map((c) => c.name) ?? [];
    try {
      await this.#deps.meta.set(RELAY_STATS_KEY, JSON.stringify(this.#stats.snapshot(clients)));
      this.#written = version;
    } catch (err) {
      this.#deps.logger.warn({ err, component: 'relay' }, 'the relay counts could not be stored; trying again shortly');
    }
  }
}
