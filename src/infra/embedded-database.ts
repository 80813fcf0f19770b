import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

// The package exports no package.json: it is found beside its dist/ folder.
const pglitePackageFile = join(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..', 'package.json');
const pgliteVersion = (JSON.parse(readFileSync(pglitePackageFile, 'utf8')) as { version: string }).version;

/** A freshly initialised PGlite data folder, made at install (scripts/build-embedded-template.ts) and copied
 * into a fresh DATA_DIR: a copy takes a fraction of a second where PGlite's initdb takes 5–8 s (and leaves
 * ~500 MB of its memory behind). */
export const EMBEDDED_TEMPLATE_DIR = fileURLToPath(new URL(`../../dist/embedded-database/pglite-${pgliteVersion}/`, import.meta.url));

/** PostgreSQL's defaults are sized for a server (shared_buffers 128 MB, touched as soon as used, per
 * instance); a developer's embedded database needs a fraction of that, Agenda's jobs less still. PGlite is
 * one session whatever the clients: max_connections 100 would only size shared memory (lock tables, process
 * slots) for 100 backends, 3 MB of it per instance; 10 still holds 640 locks. */
function startParams(sharedBuffers: string): string[] {
  return [
    ...PGlite.defaultStartParams,
    ...['-c', `shared_buffers=${sharedBuffers}`, '-c', 'wal_buffers=256kB', '-c', 'temp_buffers=1MB'],
    ...['-c', 'work_mem=4MB', '-c', 'maintenance_work_mem=16MB', '-c', 'max_connections=10'],
  ];
}

export interface EmbeddedDatabase {
  url: string;
  /** Agenda's own database: PGlite is a single session, so a job saved while a Prisma transaction is
   * open (a sync's schedule) would wait for that transaction, on the same database, forever. */
  jobsUrl: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  /** Loopback ports of the data and the jobs database; 0: any free port. */
  port: number;
  jobsPort: number;
}

/** Serves PostgreSQL with PGlite on loopback ports of its own — the data from `$DATA_DIR/pgdata`, Agenda's
 * jobs from `$DATA_DIR/jobs-pgdata` — so Prisma and Agenda reach them over the ordinary wire protocol.
 * LISTEN/NOTIFY does not cross it: callers must poll. */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const dataDir = join(options.dataDir, 'pgdata');
  const jobsDir = join(options.dataDir, 'jobs-pgdata');
  // The two copies are file system work: side by side, they take about the time of one.
  await Promise.all([prepareDataFolder(dataDir), prepareDataFolder(jobsDir)]);
  const data = await servePGlite(dataDir, options.port, startParams('8MB'));
  const jobs = await servePGlite(jobsDir, options.jobsPort, startParams('2MB')).catch(async (error: unknown) => {
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

async function servePGlite(
  directory: string,
  requestedPort: number,
  params: string[],
): Promise<{ url: string; stop(): Promise<void> }> {
  const database = await PGlite.create(directory, { startParams: params });
  const port = requestedPort || (await freeLoopbackPort());
  const server = new PGLiteSocketServer({ db: database, host: '127.0.0.1', port, maxConnections: 32 });
  try {
    await server.start();
  } catch (error) {
    await database.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`The embedded database cannot listen on 127.0.0.1:${port}, which is in use: choose another port`, {
        cause: error,
      });
    }
    throw error;
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      await database.close();
    },
  };
}

/** A fresh `directory` gets a copy of the template; without the template (not built, or for another PGlite
 * version) it stays empty, and PGlite runs its own initdb there. */
async function prepareDataFolder(directory: string): Promise<void> {
  if (!existsSync(join(directory, 'PG_VERSION')) && existsSync(join(EMBEDDED_TEMPLATE_DIR, 'PG_VERSION'))) {
    await copyTemplate(directory);
  }
  await mkdir(directory, { recursive: true });
}

/** Copies the template to `directory` (absent or empty) through a folder beside it: an interrupted copy
 * leaves no half database behind. */
async function copyTemplate(directory: string): Promise<void> {
  const partial = `${directory}.partial`;
  await rm(partial, { recursive: true, force: true });
  await cp(EMBEDDED_TEMPLATE_DIR, partial, { recursive: true });
  await rm(directory, { recursive: true, force: true });
  await rename(partial, directory);
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
