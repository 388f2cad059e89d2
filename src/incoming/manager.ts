import { isDeepStrictEqual } from 'node:util';
import type { Component } from '../runtime/component.js';
import type { AccountConfig, Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { ConnectorStatus, IncomingConnector } from './source.js';

export type ConnectorFactory = (account: AccountConfig) => IncomingConnector;

/**
 * Runs one incoming connector per account. On reload only accounts that were
 * added, removed or changed are started or stopped; the others keep running.
 */
export class ConnectorManager implements Component {
  readonly name = 'incoming';
  readonly #connectors = new Map<string, { account: AccountConfig; connector: IncomingConnector }>();
  readonly #factory: ConnectorFactory;
  readonly #logger: Logger;
  #config: Config;

  constructor(deps: { config: Config; factory: ConnectorFactory; logger: Logger }) {
    this.#config = deps.config;
    this.#factory = deps.factory;
    this.#logger = deps.logger.child({ component: 'incoming' });
  }

  async start(): Promise<void> {
    for (const account of this.#config.accounts) await this.#startOne(account);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#connectors.keys()].map((name) => this.#stopOne(name)));
  }

  async reconfigure(config: Config): Promise<void> {
    this.#config = config;
    const wanted = new Map(config.accounts.map((a) => [a.name, a]));
    for (const [name, running] of [...this.#connectors]) {
      const next = wanted.get(name);
      if (!next || !isDeepStrictEqual(next, running.account)) {
        this.#logger.info({ account: name }, next ? 'account changed; restarting its connector' : 'account removed; stopping its connector');
        await this.#stopOne(name);
      }
    }
    for (const account of config.accounts) {
      if (!this.#connectors.has(account.name)) await this.#startOne(account);
    }
  }

  /** Restarts one account's connector now (e.g. it was just authorized). */
  async restart(account: string): Promise<void> {
    const entry = this.#connectors.get(account);
    if (!entry) return;
    await this.#stopOne(account);
    await this.#startOne(entry.account);
  }

  get(account: string): IncomingConnector | undefined {
    return this.#connectors.get(account)?.connector;
  }

  status(account: string): ConnectorStatus | null {
    return this.#connectors.get(account)?.connector.status() ?? null;
  }

  async #startOne(account: AccountConfig): Promise<void> {
    // `enabled: false` (product.md, "Pausing an account"): never connected; state and tokens stay. A reload that enables it starts it.
    if (!account.enabled) {
      this.#logger.info({ account: account.name }, 'account is paused (enabled: false); not connecting');
      return;
    }
    let connector: IncomingConnector;
    try {
      connector = this.#factory(account);
    } catch (err) {
      this.#logger.error({ err, account: account.name }, 'cannot create the incoming connector; the account is not polled');
      return;
    }
    this.#connectors.set(account.name, { account, connector });
    try {
      // start() returns once the connector's loop is running; connection
      // failures are retried inside it and show in its status.
      await connector.start();
    } catch (err) {
      this.#logger.error({ err, account: account.name }, 'incoming connector failed to start');
    }
  }

  async #stopOne(name: string): Promise<void> {
    const entry = this.#connectors.get(name);
    if (!entry) return;
    this.#connectors.delete(name);
    try {
      await entry.connector.stop();
    } catch (err) {
      this.#logger.warn({ err, account: name }, 'error while stopping an incoming connector');
    }
  }
}
