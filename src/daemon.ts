import type { App } from './app.js';
import { registerDeliveryRoutes } from './http/routes/deliveries.js';
import { registerReloadRoute } from './http/routes/reload.js';

/**
 * Wires the daemon's components onto an App: everything `mailgate serve`
 * runs. Kept apart from App so tests can build an App with only some parts.
 */
export function buildDaemon(app: App): App {
  const { http, store } = app.ctx;
  registerReloadRoute(http, () => app.reload());
  registerDeliveryRoutes(http, { store, wake: () => {} });
  return app;
}
