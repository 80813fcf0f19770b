import { startApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { logger } from './logger.js';

/** Runs the app until SIGTERM or SIGINT, then shuts down gracefully and exits 0. A bad
 * configuration exits 1 with a message naming the bad variable. */
export async function runUntilSignal(overrides: Partial<Config> = {}): Promise<void> {
  let config: Config;
  try {
    config = { ...loadConfig(), ...overrides };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const app = await startApp(config);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down: draining jobs and closing connections');
    try {
      await app.stop();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'Shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
