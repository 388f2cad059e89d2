import { isDeepStrictEqual } from 'node:util';
import type { Component } from '../runtime/component.js';
import type { AccountConfig, Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { LoginPacer } from './login-pacer.js';
import type { ConnectorStatus, IncomingConnector } from './source.js';
import { accountNamed } from '../config/lookup.js';

/** Builds an account's connector; it must log in through `pacer` (ConnectorDeps.pacer). */
export type ConnectorFactory = (account: AccountConfig, pacer: LoginPacer) => IncomingConnector;

/** The pacer's limits from the config's `limits`. */
export function pacerLimits(config: Config) {
  return {
    loginsPerSecond: config.limits.loginsPerSecond,
    loginsInFlight: config.limits.loginsInFlight,
    perHostInFlight: config.limits.loginsInFlightPerHost,
  };
}

/**
 * Runs one incoming connector per account. On reload only accounts that were
 * added, removed or changed are started or stopped; the others keep running.
 *
 * Every connector logs in through the one LoginPacer this manager owns
 * (`limits.loginsPerSecond`, `limits.loginsInFlight`,
 * `limits.loginsInFlightPerHost`): start() only launches the loops, whose
 * first logins are spread at random over accounts / loginsPerSecond, and
 * reconnects after a network blip or a server restart queue the same way.
 * Starting or stopping one account (startAccount, stopAccount, restart, a
 * reload) goes through the same pacer, as every login does.
 */
export class ConnectorManager implements Component {
  readonly name = 'incoming';
  readonly #connectors = new Map<string, { account: AccountConfig; connector: IncomingConnector }>();
  readonly #factory: ConnectorFactory;
  readonly #logger: Logger;
  #config: Config;
  readonly pacer: LoginPacer;
  /** Driven by the cluster coordinator: only accounts it hands over (startAccount) run. */
  readonly #driven: boolean;
  /** Driven: the accounts the coordinator handed over (even a paused one, which a reload may enable). */
  readonly #handed = new Set<string>();

  constructor(deps: { config: Config; factory: ConnectorFactory; logger: Logger; pacer?: LoginPacer; driven?: boolean }) {
    this.#config = deps.config;
    this.#driven = deps.driven ?? false;
    this.#factory = deps.factory;
    this.#logger = deps.logger.child({ component: 'incoming' });
    this.pacer = deps.pacer ?? new LoginPacer(pacerLimits(deps.config));
  }

  async start(): Promise<void> {
    this.pacer.setAccountCount(this.#config.accounts.length);
    if (this.#driven) return;
    for (const account of this.#config.accounts) await this.#startOne(account);
    const { loginsPerSecond } = this.#config.limits;
    const n = this.#config.accounts.length;
    if (n > 1) this.#logger.info({ accounts: n, loginsPerSecond, windowS: Math.ceil(n / loginsPerSecond) }, 'starting incoming connectors; first logins are spread over the pacing window');
  }

  /** Starts the account's connector (this node now holds it; its logins queue in the pacer like every other); false when it is not configured. */
  async startAccount(name: string): Promise<boolean> {
    if (this.#connectors.has(name)) return true;
    const account = accountNamed(this.#config, name);
    if (!account) return false;
    this.#handed.add(name);
    await this.#startOne(account);
    return true;
  }

  /** Stops the account's connector (lease lost) and waits until its in-flight work has ended; a login it was waiting for gives its place up. */
  stopAccount(name: string): Promise<void> {
    this.#handed.delete(name);
    return this.#stopOne(name);
  }

  async stop(): Promise<void> {
    // Logins still queued give up at once (their connectors are stopping).
    await Promise.allSettled([...this.#connectors.keys()].map((name) => this.#stopOne(name)));
  }

  async reconfigure(config: Config): Promise<void> {
    this.#config = config;
    this.pacer.setLimits(pacerLimits(config));
    this.pacer.setAccountCount(config.accounts.length);
    const wanted = new Map(config.accounts.map((a) => [a.name, a]));
    const restartable = new Set<string>();
    for (const [name, running] of [...this.#connectors]) {
      const next = wanted.get(name);
      if (next) restartable.add(name);
      if (!next || !isDeepStrictEqual(next, running.account)) {
        this.#logger.info({ account: name }, next ? 'account changed; restarting its connector' : 'account removed; stopping its connector');
        await this.#stopOne(name);
      }
    }
    // Driven: new accounts start once the coordinator takes them; changed ones start again here if they ran.
    for (const account of config.accounts) {
      if (!this.#connectors.has(account.name) && (!this.#driven || restartable.has(account.name) || this.#handed.has(account.name))) await this.#startOne(account);
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
      connector = this.#factory(account, this.pacer);
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
