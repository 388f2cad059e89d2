import type { App } from './app.js';
import type { AccountConfig } from './config/types.js';
import { plainFailure } from './errors.js';
import { DeliveryEventSink } from './delivery/event-sink.js';
import { RawHandoff } from './delivery/handoff.js';
import { DeliveryWorker } from './delivery/worker.js';
import { registerAdminUi, returnToAccounts } from './http/admin/index.js';
import { registerAccountRoutes, type AccountRouteDeps } from './http/routes/accounts.js';
import { registerDeliveryRoutes } from './http/routes/deliveries.js';
import { registerAuthorizeRoute, registerOAuthCallback } from './http/routes/oauth.js';
import { registerOutboxRoutes } from './http/routes/outbox.js';
import { registerReloadRoute } from './http/routes/reload.js';
import { registerApi } from './http/server.js';
import { createConnector } from './incoming/factory.js';
import { IngestService } from './incoming/ingest.js';
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

/**
 * Wires the daemon's components onto an App: everything `mailgate serve`
 * runs. Kept apart from App so tests can build an App with only some parts.
 */
export function buildDaemon(app: App) {
  const { http, store, logger, metrics, storage } = app.ctx;
  const config = () => app.config;

  const parser = new ParsePool({ threads: parseThreadCount(app.ctx.env), deadlineMs: parseDeadline(app.ctx.env), logger });
  let worker: DeliveryWorker | null = null;
  const wake = () => worker?.wake();
  const handoff = new RawHandoff();
  const ingest = new IngestService({ store, config, metrics, inspect: inspectMessage, onQueued: wake, handoff, storageFull: (err) => storage.report(err) });
  const events = new DeliveryEventSink({ store, config, logger, wake });
  worker = new DeliveryWorker({
    store,
    config,
    logger,
    metrics,
    render: parser.render,
    summarize: parser.summarize,
    handoff,
    onAckDue: (account) => ingest.notifyDue(account),
    accepting: () => storage.accepting,
  });
  storage.onResume(() => worker?.wake());
  const tokens = new TokenService({ store, config, logger, metrics, events });
  let incoming: ConnectorManager | null = null;
  const flows = new OAuthFlows({
    store,
    tokens,
    publicUrl: () => app.config.server.publicUrl,
    onAuthorized: (account) => void incoming?.restart(account),
  });
  const health = new CredentialHealth({ store, tokens, config, events, metrics, logger });
  const scheduler = new RefreshScheduler({ store, tokens, config, logger, health });
  const sender = new OutboxWorker({ store, config, tokens, logger, metrics });
  const outbox = new OutboxService({ store, config, onQueued: () => sender.wake() });

  const persistStatus = (account: string) => (s: ConnectorStatus) => {
    void store.accountStatus
      .update(account, 'incoming', {
        state: s.state,
        lastSuccessAt: s.lastSuccessAt ? s.lastSuccessAt.getTime() : null,
        lastError: s.lastError,
      }, Date.now())
      .catch(() => undefined);
  };
  const factory = (account: AccountConfig): IncomingConnector =>
    createConnector(account, { ingestor: ingest, acks: ingest, tokens, logger, metrics, onStatus: persistStatus(account.name), storage });
  incoming = new ConnectorManager({ config: app.config, factory, logger });
  const manager = incoming;

  // After the outbox worker, so it stops first: no new relayed message arrives while the worker winds down.
  const relay = new RelayComponent({ config, outbox, meta: store.meta, logger, metrics });

  app.add(parser).add(worker).add(scheduler).add(sender).add(new RetentionJob({ store, config, logger })).add(manager).add(relay);

  const accountDeps: AccountRouteDeps = {
    config,
    incoming: (name) => manager.status(name),
    sideStatus: () => store.accountStatus.list(),
    token: (name) => tokens.status(name),
    testIncoming: async (name) => {
      const acc = app.config.accounts.find((a) => a.name === name);
      if (!acc) return { ok: false, error: 'no such account', code: 'NOT_FOUND' };
      try {
        return await factory(acc).test();
      } catch (err) {
        const plain = plainFailure(err, `the incoming server of ${name}`);
        return { ok: false, error: plain.message, code: plain.code };
      }
    },
    testOutgoing: async (name) => {
      const acc = app.config.accounts.find((a) => a.name === name);
      return acc ? testSmtp(acc, tokens) : null;
    },
  };
  // Every /v1 route is registered in this one scope, behind the admin token.
  registerApi(http, (api) => {
    registerReloadRoute(api, () => app.reload());
    registerDeliveryRoutes(api, { store, wake });
    registerOutboxRoutes(api, outbox);
    registerAccountRoutes(api, accountDeps);
    registerAuthorizeRoute(api, flows);
  });
  const adminUi = { config, adminToken: app.ctx.adminToken, store, flows, tokens, accounts: accountDeps, wake, relay: () => relay.status(), render: parser.render };
  registerOAuthCallback(http, flows, { https: app.config.server.publicUrl.startsWith('https:'), returns: [returnToAccounts(adminUi)] });
  registerAdminUi(http, adminUi);
  return { ingest, worker, tokens, flows, scheduler, incoming: manager, events, outbox, sender, relay };
}
