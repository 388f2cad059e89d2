import { App, SHUTDOWN_BUDGET_MS } from '../app.js';
import { buildDaemon } from '../daemon.js';
import { EXIT_OK, EXIT_RUNTIME, reportFailure } from './common.js';

/**
 * Runs the daemon until SIGTERM/SIGINT; SIGHUP re-reads the config. The
 * signal handlers are in place before anything starts, so a signal that
 * arrives while the daemon is still starting (or just as /readyz first
 * answers) is never lost: a stop asked for during start waits for the
 * start to finish, then stops; a reload asked for then is applied after it.
 */
export async function serveCommand(configPath: string): Promise<number> {
  let app: App | null = null;
  let started: Promise<unknown> | null = null;
  let stopAsked: NodeJS.Signals | null = null;
  let stopping = false;
  let reloadAsked = false;
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((r) => (resolveExit = r));

  const shutdown = (signal: NodeJS.Signals) => {
    stopAsked ??= signal;
    // Still loading the config, or not started yet: serveCommand stops once it gets there.
    if (!app || !started || stopping) return;
    stopping = true;
    const running = app;
    running.ctx.logger.info({ signal }, 'shutting down');
    const hard = setTimeout(() => {
      running.ctx.logger.error('shutdown took too long; exiting anyway');
      resolveExit(EXIT_RUNTIME);
    }, SHUTDOWN_BUDGET_MS + 500);
    hard.unref();
    // A start in progress finishes first, so stop() sees every component it started.
    void Promise.resolve(started)
      .catch(() => undefined)
      .then(() => running.stop())
      .then(
        () => {
          clearTimeout(hard);
          resolveExit(EXIT_OK);
        },
        (err: unknown) => {
          clearTimeout(hard);
          running.ctx.logger.error({ err }, 'error during shutdown');
          resolveExit(EXIT_RUNTIME);
        },
      );
  };
  const onTerm = () => shutdown('SIGTERM');
  const onInt = () => shutdown('SIGINT');
  const onHup = () => {
    if (!app || !started) reloadAsked = true;
    else void started.then(() => app?.reload());
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  try {
    try {
      app = await App.create({ configPath });
    } catch (err) {
      return reportFailure(err);
    }
    if (stopAsked) {
      // Stopped before anything was started: close what create() opened.
      await app.stop();
      return EXIT_OK;
    }
    try {
      buildDaemon(app);
      const running = app;
      // A database reached only after the start that then refuses this mailgate (another key, a newer schema).
      app.onFatal((err) => {
        reportFailure(err);
        void running.stop().finally(() => resolveExit(EXIT_RUNTIME));
      });
      started = app.start();
      await started;
    } catch (err) {
      await app.stop().catch(() => undefined);
      return reportFailure(err);
    }
    if (reloadAsked) void app.reload();
    if (stopAsked) shutdown(stopAsked);
    return await exit;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
  }
}
