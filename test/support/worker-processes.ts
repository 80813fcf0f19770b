import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { LOOPBACK_FAKES, startTestGateway, type TestGateway } from './gateway.js';
import { runEntryPoint, type RunningProcess } from './process.js';

/**
 * Gives a test file a gateway that only serves the API, and worker processes on its database that run
 * the jobs, so that a test can kill one mid-work. They share the secrets key and a short run lease
 * (3 s), after which another worker takes over what a dead one held. `settings` go to all of them.
 */
export function useWorkerProcessSuite(settings: Record<string, string> = {}) {
  const shared = { SECRETS_KEY: randomBytes(32).toString('base64'), RUN_LEASE_SECONDS: '3', ...LOOPBACK_FAKES, ...settings };
  let gateway: TestGateway | undefined;
  const workers: RunningProcess[] = [];
  beforeAll(async () => {
    gateway = await startTestGateway({ ...shared, ROLES: 'gateway' });
  });
  afterAll(async () => {
    // A test that failed half-way may leave its workers running.
    await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
    await gateway?.stop();
  });

  const suite = {
    get gateway(): TestGateway {
      if (!gateway) throw new Error('The gateway starts in beforeAll: use it inside tests');
      return gateway;
    },
    startWorker(): RunningProcess {
      const worker = runEntryPoint('build/worker.js', {
        DATABASE_URL: suite.gateway.databaseUrl,
        PORT: '0',
        JOB_POLL_INTERVAL_MS: '200',
        LOG_LEVEL: 'info',
        ...shared,
      });
      workers.push(worker);
      return worker;
    },
  };
  return suite;
}
