import { App, SHUTDOWN_BUDGET_MS } from '../app.js';
import { buildDaemon } from '../daemon.js';
import { EXIT_OK, EXIT_RUNTIME, reportFailure } from './common.js';

/** Runs the daemon until SIGTERM/SIGINT; SIGHUP re-reads the config. */
export async function serveCommand(configPath: string): Promise<number> {
  let app: App;
  try {
    app = await App.create({ configPath });
    buildDaemon(app);
    await app.start();
  } catch (err) {
    return reportFailure(err);
  }
  return new Promise<number>((resolveExit) => {
    const shutdown = (signal: string) => {
      app.ctx.logger.info({ signal }, 'shutting down');
      const hard = setTimeout(() => {
        app.ctx.logger.error('shutdown took too long; exiting anyway');
        resolveExit(EXIT_RUNTIME);
      }, SHUTDOWN_BUDGET_MS + 500);
      hard.unref();
      app.stop().then(
        () => {
          clearTimeout(hard);
          resolveExit(EXIT_OK);
        },
        (err: unknown) => {
          clearTimeout(hard);
          app.ctx.logger.error({ err }, 'error during shutdown');
          resolveExit(EXIT_RUNTIME);
        },
      );
    };
    // A database reached only after the start that then refuses this mailgate (another key, a newer schema).
    app.onFatal((err) => {
      reportFailure(err);
      void app.stop().finally(() => resolveExit(EXIT_RUNTIME));
    });
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      void app.reload();
    });
  });
}
