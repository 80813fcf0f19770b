import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedDatabase {
  url: string;
  /** Agenda's own database: PGlite is a single session, so a job saved while a Prisma transaction is
   * open (a sync's schedule) would wait for that transaction, on the same database, forever. */
  jobsUrl: string;
  stop(): Promise<void>;
}

/** Serves PostgreSQL with PGlite on loopback ports of its own — the data from `$DATA_DIR/pgdata`, Agenda's
 * jobs from `$DATA_DIR/jobs-pgdata` — so Prisma and Agenda reach them over the ordinary wire protocol.
 * LISTEN/NOTIFY does not cross it: callers must poll. */
export async function startEmbeddedDatabase(dataDir: string): Promise<EmbeddedDatabase> {
  const data = await servePGlite(join(dataDir, 'pgdata'));
  const jobs = await servePGlite(join(dataDir, 'jobs-pgdata')).catch(async (error: unknown) => {
    await data.stop();
    throw error;
  });
  return {
    url: data.url,
    jobsUrl: jobs.url,
    async stop() {
      await jobs.stop();
      await data.stop();
    },
  };
}

async function servePGlite(directory: string): Promise<{ url: string; stop(): Promise<void> }> {
  await mkdir(directory, { recursive: true });
  const database = await PGlite.create(directory);
  const port = await freeLoopbackPort();
  const server = new PGLiteSocketServer({ db: database, host: '127.0.0.1', port, maxConnections: 32 });
  await server.start();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      await database.close();
    },
  };
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
