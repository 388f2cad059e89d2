import type { App } from './app.js';
import type { AccountConfig } from './config/types.js';
import { plainFailure } from './errors.js';
import { DeliveryEventSink } from './delivery/event-sink.js';
import { RawHandoff } from './delivery/handoff.js';
import { DeliveryWorker } from './delivery/worker.js';
import { registerAdminUi, returnToAccounts } from './http/admin/index.js';
import { ClusterCoordinator, nodeIdentity } from './cluster/coordinator.js';
import { registerAccountRoutes, type AccountRouteDeps } from './http/routes/accounts.js';
import { registerClusterRoute } from './http/routes/cluster.js';
import { registerDeliveryRoutes } from './http/routes/deliveries.js';
import { registerAuthorizeRoute, registerOAuthCallback } from './http/routes/oauth.js';
import { registerOutboxRoutes } from './http/routes/outbox.js';
import { registerReloadRoute } from './http/routes/reload.js';
import { registerApi } from './http/server.js';
import { createConnector } from './incoming/factory.js';
import { IngestService } from './incoming/ingest.js';
import type { LoginPacer } from './incoming/login-pacer.js';
import { ConnectorManager } from './incoming/manager.js';
import type { ConnectorStatus, IncomingConnector } from './incoming/source.js';
import { OAuthFlows } from './oauth/flows.js';
import { OutboxService, OutboxWorker } from './outgoing/outbox.js';
import { testSmtp } from './outgoing/smtp.js';
import { TokenService } from './oauth/token-service.js';
import { inspectMessage } from './parse/auto-submitted.js';
import { ParsePool, parseDeadline, parseThreadCount } from './parse/parse-pool.js';
import { RelayComponent } from './relay/component.js';
import { RefreshScheduler } from './scheduler/refresh-scheduler.js';
import { CredentialHealth } from './oauth/credential-health.js';
import { RetentionJob } from './scheduler/retention.js';
import { ConnectionHistoryRecorder } from './runtime/connection-history.js';
import { accountNamed } from './config/lookup.js';

/**
 * Wires the daemon's components onto an App: everything `mailgate serve`
 * runs. Kept apart from App so tests can build an App with only some parts.
 */
export function buildDaemon(app: App) {
  const { http, store, logger, metrics, storage } = app.ctx;
  const config = () => app.config;

  // Who this node is; the coordinator (below) decides which accounts it works.
  const identity = nodeIdentity(app.config);
  const clustered = identity.clustered;
  const node = clustered ? identity.name : undefined;
  let coordinator: ClusterCoordinator | null = null;
  const fences = {
    fence: (account: string) => coordinator?.fence(account) ?? null,
    owned: () => coordinator?.owned() ?? [],
    lost: (account: string) => coordinator?.lost(account),
  };
  /** Held here: act at once; held elsewhere: the bus wakes its owner. */
  const heldHere = (account: string) => fences.fence(account) !== null;

  const parser = new ParsePool({ threads: parseThreadCount(app.ctx.env), deadlineMs: parseDeadline(app.ctx.env), logger });
  let worker: DeliveryWorker | null = null;
  const wakeHere = () => worker?.wake();
  // Retries and events queued from the API may be posted by any node: wake them all.
  const wake = clustered ? () => void store.bus.publish('delivery_due', '').catch(() => wakeHere()) : wakeHere;
  const handoff = new RawHandoff();
  const ingest = new IngestService({
    store,
    config,
    metrics,
    inspect: inspectMessage,
    onQueued: wakeHere,
    handoff,
    storageFull: (err) => storage.report(err),
    fences,
  });
  const ackDue = (account: string) => {
    if (!clustered || heldHere(account)) ingest.notifyDue(account);
    else void store.bus.publish('ack_due', account).catch(() => undefined);
  };
  const events = new DeliveryEventSink({ store, config, logger, wake });
  worker = new DeliveryWorker({
    store,
    config,
    logger,
    metrics,
    render: parser.render,
    summarize: parser.summarize,
    handoff,
    onAckDue: ackDue,
    accepting: () => storage.accepting,
    ...(node ? { claimOwner: node } : {}),
  });
  storage.onResume(() => worker?.wake());
  const tokens = new TokenService({ store, config, logger, metrics, events, ...(node ? { node } : {}) });
  let incoming: ConnectorManager | null = null;
  const flows = new OAuthFlows({
    store,
    tokens,
    publicUrl: () => app.config.server.publicUrl,
    onAuthorized: (account) => {
      if (!clustered || heldHere(account)) void incoming?.restart(account);
      else void store.bus.publish('account_authorized', account).catch(() => undefined);
    },
  });
  const health = new CredentialHealth({ store, tokens, config, events, metrics, logger });
  const scheduler = new RefreshScheduler({ store, tokens, config, logger, health, ...(node ? { node } : {}) });
  // The account page's connection history: a row when a side's state changes, not on every status write.
  const history = new ConnectionHistoryRecorder(store.connectionHistory, (err) => logger.debug({ err }, 'connection history not recorded'));
  const sender = new OutboxWorker({ store, config, tokens, logger, metrics, fences, history });
  const outbox = new OutboxService({ store, config, onQueued: () => sender.wake() });

  const persistStatus = (account: string) => (s: ConnectorStatus) => {
    void store.accountStatus
      .update(account, 'incoming', {
        state: s.state,
        lastSuccessAt: s.lastSuccessAt ? s.lastSuccessAt.getTime() : null,
        lastError: s.lastError,
      }, Date.now())
      .catch(() => undefined);
    void history.note(account, 'incoming', s.state, s.lastError);
  };
  // `mailgate test` and POST /v1/accounts/{name}/test build one without a pacer: an admin's probe does not queue.
  const factory = (account: AccountConfig, pacer?: LoginPacer): IncomingConnector =>
    createConnector(account, {
      ingestor: ingest,
      acks: ingest,
      tokens,
      logger,
      metrics,
      onStatus: persistStatus(account.name),
      storage,
      idleConnectionsPerAccount: app.config.limits.idleConnectionsPerAccount,
      ...(pacer ? { pacer } : {}),
    });
  incoming = new ConnectorManager({ config: app.config, factory, logger, driven: true });
  const manager = incoming;
  coordinator = new ClusterCoordinator({ store, config, logger, metrics, identity, incoming: manager, outbox: sender });
  const cluster = coordinator;
  if (clustered) {
    // Wake-ups from other nodes; every listener keeps its own timer as well.
    store.bus.subscribe('delivery_due', () => wakeHere());
    store.bus.subscribe('ack_due', (account) => ingest.notifyDue(account));
    store.bus.subscribe('account_authorized', (account) => void manager.restart(account));
  }

  // After the outbox worker, so it stops first: no new relayed message arrives while the worker winds down.
  const relay = new RelayComponent({ config, outbox, meta: store.meta, logger, metrics });

  app
    .add(parser)
    .add(worker)
    .add(scheduler)
    .add(sender)
    .add(new RetentionJob({ store, config, logger, ...(node ? { node } : {}) }))
    .add(manager)
    .add(relay)
    // Last: it starts the accounts it takes, and on SIGTERM (stopped first) stops them and hands them over.
    .add(cluster);

  const accountDeps: AccountRouteDeps = {
    config,
    owners: async () => (await cluster.view()).owners,
    incoming: (name) => manager.status(name),
    sideStatus: () => store.accountStatus.list(),
    tokens: () => tokens.statusAll(),
    testIncoming: async (name) => {
      const acc = accountNamed(app.config, name);
      if (!acc) return { ok: false, error: 'no such account', code: 'NOT_FOUND' };
      try {
        return await factory(acc).test();
      } catch (err) {
        const plain = plainFailure(err, `the incoming server of ${name}`);
        return { ok: false, error: plain.message, code: plain.code };
      }
    },
    testOutgoing: async (name) => {
      const acc = accountNamed(app.config, name);
      return acc ? testSmtp(acc, tokens) : null;
    },
  };
  // Every /v1 route is registered in this one scope, behind the admin token.
  registerApi(http, (api) => {
    registerReloadRoute(api, () => app.reload());
    registerDeliveryRoutes(api, { store, wake });
    registerOutboxRoutes(api, outbox);
    registerAccountRoutes(api, accountDeps);
    registerClusterRoute(api, () => cluster.view());
    registerAuthorizeRoute(api, flows);
  });
  const adminUi = {
    config,
    adminToken: app.ctx.adminToken,
    store,
    flows,
    tokens,
    accounts: accountDeps,
    wake,
    cluster: () => cluster.view(),
    relay: () => relay.status(),
    render: parser.render,
  };
  registerOAuthCallback(http, flows, { https: app.config.server.publicUrl.startsWith('https:'), returns: [returnToAccounts(adminUi)] });
  registerAdminUi(http, adminUi);
  return { ingest, worker, tokens, flows, scheduler, incoming: manager, events, outbox, sender, cluster, relay };
}
