import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

let client: PrismaClient | undefined;

/** Connections per process: API requests, run batches (two at once per run) and their transactions. */
const POOL_SIZE = 20;

/** Opens the process's one Prisma client. Called by the app factory once the database URL is
 * known (the embedded default only knows it after its server has started). */
export function connectDatabase(databaseUrl: string): PrismaClient {
  if (client) throw new Error('The database is already connected');
  client = new PrismaClient({
    adapter: new PrismaPg({ connectionString: databaseUrl, max: POOL_SIZE }),
    // Under load a transaction may wait its turn for a connection longer than Prisma's 2 s default.
    transactionOptions: { maxWait: 15_000, timeout: 30_000 },
  });
  return client;
}

export async function disconnectDatabase(): Promise<void> {
  const open = client;
  client = undefined;
  await open?.$disconnect();
}

/** The Prisma client of this process. */
export function db(): PrismaClient {
  if (!client) throw new Error('The database is not connected: start the app first');
  return client;
}
