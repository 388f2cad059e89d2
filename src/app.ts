import type { FastifyInstance } from 'fastify';
import { resolveAdminToken } from './admin-token.js';
import { ConfigError, formatIssue, loadConfig } from './config/load.js';
import { prepareDataDir } from './data-dir.js';
import type { Config } from './config/types.js';
import { createHttpServer } from './http/server.js';
import { registerHealthRoutes } from './http/routes/health.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { Component } from './runtime/component.js';
import { loadSecretKey } from './secrets/keyring.js';
import { StorageHealth } from './store/health.js';
import { openStore, storedCredentialNames } from './store/open.js';
import type { Store } from './store/store.js';

export interface AppOptions {
  configPath: string;
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

export interface AppContext {
  config: Config;
  env: Record<string, string | undefined>;
  logger: Logger;
  store: Store;
  metrics: Metrics;
  http: FastifyInstance;
  adminToken: string;
  /** Whether the database takes writes (a full disk pauses ingest). */
  storage: StorageHealth;
}

/** Whole shutdown budget: the contract promises exit within 10 s of SIGTERM. */
export const SHUTDOWN_BUDGET_MS = 9_000;

export class App {
  readonly ctx: AppContext;
  #components: Component[] = [];
  #started: Component[] = [];
  #stopping: Promise<void> | null = null;
  #starting = false;
  #late: Promise<void> | null = null;
  #lateStarting = false;
  #fatal: unknown = undefined;
  readonly #fatalListeners: ((err: unknown) => void)[] = [];

  private constructor(ctx: AppContext) {
    this.ctx = ctx;
  }

  get config(): Config {
    return this.ctx.config;
  }

  /**
   * Validates the config before touching anything: a bad config refuses to
   * start and leaves dataDir as it was.
   */
  static async create(opts: AppOptions): Promise<App> {
    const env = opts.env ?? process.env;
    const result = await loadConfig(opts.configPath, { env, databaseCredentials: storedCredentialNames });
    if (!result.ok) throw new ConfigError(result.errors);
    const config = result.config;
    const logger = opts.logger ?? createLogger({ level: config.logLevel });
    for (const w of result.warnings) logger.warn({ where: `${w.file}:${w.line}:${w.col}` }, formatIssue(w));
    for (const o of result.overrides) logger.info({ variable: o.variable, key: o.key, value: o.value }, `${o.variable} overrides ${o.key} of the config file`);

    const tightened = prepareDataDir(config.dataDir);
    if (tightened.length > 0) logger.warn({ paths: tightened }, 'dataDir or files in it were readable by others; made them private (0700/0600)');
    const key = loadSecretKey(config.dataDir, env, { secretKeyFile: config.secretKeyFile, shared: config.store.kind === 'postgres' });
    if (key.source === 'generated') logger.warn({ path: key.path }, 'generated a new secret key; back it up with the database');
    const store = await openStore(config, { cipher: key.cipher, logger, daemon: true });
    const admin = resolveAdminToken(config.server.adminToken, config.dataDir);
    if (admin.source !== 'config') {
      logger.info({ path: admin.path }, 'server.adminToken is not set; using the token kept in this file');
    }
    const metrics = createMetrics();
    // The server section of the running config, which a reload replaces.
    const current: { app: App | null } = { app: null };
    const http = createHttpServer({
      logger,
      adminToken: admin.token,
      server: () => (current.app ? current.app.config.server : config.server),
      authEvents: {
        failed: (surface) => metrics.authFailures.inc({ surface }),
        lockedOut: (surface) => metrics.authLockouts.inc({ surface }),
      },
    });
    const storage = new StorageHealth(store.meta, {
      changed: (full, reason) => {
        metrics.storageFull.set(full ? 1 : 0);
        if (full) logger.error({ event: 'storage.full', reason }, 'the database disk is full: no new mail is taken until space is freed');
        else logger.warn({ event: 'storage.resumed' }, 'the database takes writes again; resuming');
      },
      reachable: (reason) => {
        if (reason) logger.error({ event: 'store.unreachable', reason }, 'the database cannot be reached: no new mail is taken until it answers');
        else logger.warn({ event: 'store.reachable' }, 'the database answers again; resuming');
      },
    });
    metrics.storageFull.set(0);
    // A database on a server (PostgreSQL) may be out of reach, at start or later: the same pause as a full disk.
    store.watch?.((reason) => storage.setUnreachable(reason));
    const ctx: AppContext = { config, env, logger, store, metrics, http, adminToken: admin.token, storage };
    const created = new App(ctx);
    current.app = created;
    registerHealthRoutes(http, {
      registry: metrics.registry,
      ready: async () => {
        if (created.#stopping) return { ready: false, reason: 'mailgate is stopping' };
        if (created.#starting) return { ready: false, reason: 'mailgate is starting' };
        if (!storage.accepting) return { ready: false, reason: storage.reason };
        return (await store.ping()) ? { ready: true, reason: null } : { ready: false, reason: 'the database does not answer' };
      },
      metricsToken: () => created.config.server.metricsToken,
    });
    return created;
  }

  /** Components are added before start(), in start order. */
  add(component: Component): this {
    this.#components.push(component);
    return this;
  }

  /**
   * Listens first, then starts the components in order: the API and
   * /healthz answer while thousands of connectors begin their paced logins
   * (/readyz says "starting" until every component runs). A store still
   * waiting for its database (Store.opened: PostgreSQL not reachable at
   * start) starts the components once the database is open, /readyz
   * answering 503 with the reason meanwhile; a database that turns out to
   * refuse this mailgate (another key, a newer schema) is fatal (onFatal).
   */
  async start(): Promise<{ url: string }> {
    const address = await this.#listen();
    const opened = this.ctx.store.opened;
    if (opened) {
      this.#late = opened
        .then(() => {
          this.#lateStarting = true;
          return this.#startComponents();
        })
        .catch((err: unknown) => {
          if (!this.#stopping) this.#fail(err);
        });
      return { url: address };
    }
    try {
      await this.#startComponents();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
    return { url: address };
  }

  /** Called once when the App cannot go on (a database that refuses it after all); the caller stops it and exits. */
  onFatal(listener: (err: unknown) => void): void {
    this.#fatalListeners.push(listener);
    if (this.#fatal !== undefined) listener(this.#fatal);
  }

  #fail(err: unknown): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = err;
    for (const l of this.#fatalListeners) l(err);
  }

  async #startComponents(): Promise<void> {
    this.#starting = true;
    try {
      for (const c of this.#components) {
        if (this.#stopping) return;
        await c.start();
        this.#started.push(c);
      }
    } finally {
      this.#starting = false;
    }
  }

  async #listen(): Promise<string> {
    const { host, port } = this.ctx.config.server.listen;
    const address = await this.ctx.http.listen({ host, port });
    this.ctx.logger.info(
      {
        listen: address,
        publicUrl: this.ctx.config.server.publicUrl,
        accounts: this.ctx.config.accounts.length <= 50 ? this.ctx.config.accounts.map((a) => a.name) : undefined,
        dataDir: this.ctx.config.dataDir,
        store: this.ctx.config.store.kind,
      },
      `mailgate listening on ${address} with ${this.ctx.config.accounts.length} account(s)`,
    );
    return address;
  }

  /**
   * Re-reads the YAML. An invalid file changes nothing and returns the
   * problems; a valid one is handed to every component.
   */
  async reload(): Promise<{ ok: true } | { ok: false; errors: string[] }> {
    const result = await loadConfig(this.ctx.config.configPath, { env: this.ctx.env, databaseCredentials: storedCredentialNames });
    if (!result.ok) {
      const errors = result.errors.map((e) => `${e.file}:${e.line}:${e.col} ${e.message}`);
      this.ctx.logger.error({ errors }, 'config reload rejected; keeping the running config');
      return { ok: false, errors };
    }
    this.ctx.config = result.config;
    for (const c of this.#started) await c.reconfigure?.(result.config);
    this.ctx.logger.info({ accounts: result.config.accounts.map((a) => a.name) }, 'config reloaded');
    return { ok: true };
  }

  /** Closes HTTP first (no new work), then components in reverse, then the store. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const log = this.ctx.logger;
    try {
      await this.ctx.http.close();
    } catch (err) {
      log.warn({ err }, 'error while closing the HTTP server');
    }
    // Components starting late (the database just opened) finish their start first, so each is stopped.
    if (this.#late && this.#lateStarting) await this.#late.catch(() => undefined);
    for (const c of [...this.#started].reverse()) {
      try {
        await c.stop();
      } catch (err) {
        log.warn({ err, component: c.name }, 'error while stopping a component');
      }
    }
    this.#started = [];
    this.ctx.storage.stop();
    await this.ctx.store.close();
    log.info('mailgate stopped');
  }
}
