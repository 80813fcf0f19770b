import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/** Serves a PostgreSQL from `$DATA_DIR/pgdata` with PGlite, on a loopback port of its own, so
 * Prisma and Agenda reach it over the ordinary wire protocol. LISTEN/NOTIFY does not cross it:
 * callers must poll. */
export async function startEmbeddedDatabase(dataDir: string): Promise<EmbeddedDatabase> {
  const directory = join(dataDir, 'pgdata');
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
