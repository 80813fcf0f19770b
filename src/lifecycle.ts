import { startApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './infra/config.js';
import { logger } from './infra/logger.js';

/** Runs the app until SIGTERM or SIGINT, then shuts down gracefully and exits 0. A bad
 * configuration, or a port already taken, exits 1 with a message saying what to fix. */
export async function runUntilSignal(overrides: Partial<Config> = {}): Promise<void> {
  let config: Config;
  try {
    config = { ...loadConfig(), ...overrides };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  // Handlers go in before starting: a signal during start-up stops the app as soon as it is up.
  let stopping: string | null = null;
  let app: Awaited<ReturnType<typeof startApp>> | null = null;
  const shutdown = async () => {
    logger.info({ signal: stopping }, 'Shutting down: draining jobs and closing connections');
    try {
      await app!.stop();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'Shutdown failed');
      process.exit(1);
    }
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = signal;
      if (app) void shutdown();
    });
  }
  try {
    app = await startApp(config);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    process.stderr.write(`Port ${config.PORT} is already in use: stop what holds it, or set PORT to a free port\n`);
    process.exit(1);
  }
  if (stopping) await shutdown();
}
