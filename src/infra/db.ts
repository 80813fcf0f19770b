import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient, type Prisma } from '../generated/prisma/client.js';
import { logger } from './logger.js';

let client: PrismaClient | undefined;
let connections: pg.Pool | undefined;

/** Connections per process: API requests, run batches (two at once per run) and their transactions. */
const POOL_SIZE = 20;

export interface ConnectionOptions {
  poolSize?: number;
  /**
   * PostgreSQL ends a session of this process that sits inside a transaction without sending anything
   * for this long (idle_in_transaction_session_timeout), releasing its locks: a process frozen mid-
   * transaction (a long GC pause, a stopped VM) must not hold the sync rows other workers need to take
   * its runs over. Unset: no limit.
   * https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT
   */
  idleInTransactionTimeoutMs?: number;
}

/** Opens the process's one Prisma client. Called by the app factory once the database URL is
 * known (the embedded default only knows it after its server has started). */
export function connectDatabase(databaseUrl: string, options: ConnectionOptions = {}): PrismaClient {
  if (client) throw new Error('The database is already connected');
  connections = new pg.Pool({
    connectionString: databaseUrl,
    max: options.poolSize ?? POOL_SIZE,
    ...(options.idleInTransactionTimeoutMs && { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }),
  });
  // An idle connection the server dropped is replaced on next use; unheard, its error would crash the process.
  connections.on('error', (error) => logger.warn({ err: error }, 'Database connection lost'));
  client = new PrismaClient({
    adapter: new PrismaPg(connections),
    // Under load a transaction may wait its turn for a connection longer than Prisma's 2 s default.
    transactionOptions: { maxWait: 15_000, timeout: 30_000 },
  });
  return client;
}

export async function disconnectDatabase(): Promise<void> {
  const open = client;
  const pool = connections;
  client = undefined;
  connections = undefined;
  await open?.$disconnect();
  await pool?.end();
}

/** How many connections this process's pool may hold at once (1 on the embedded database, whose
 * server is one session): work split over several connections needs at least two. */
export function poolCapacity(): number {
  return pool().options.max;
}

/** Runs one statement on a direct connection (see directTransaction); returns its rows. */
export type DirectSql = <Row = Record<string, unknown>>(statement: Prisma.Sql) => Promise<Row[]>;

function pool(): pg.Pool {
  if (!connections) throw new Error('The database is not connected: start the app first');
  return connections;
}

/**
 * Runs `work` in one transaction on one of the process's connections, without Prisma: it commits
 * when `work` resolves, rolls back when it throws. For statements that carry many members: Prisma
 * keeps the arguments of its last 100 raw queries (for its error reports), which for 100,000
 * members is hundreds of MB. Values come back as `pg` parses them (bigint as string, jsonb parsed).
 */
export async function directTransaction<T>(work: (sql: DirectSql) => Promise<T>): Promise<T> {
  const connection = await pool().connect();
  let broken: Error | undefined;
  // The server may end the session while it is checked out (a process that froze past
  // idle_in_transaction_session_timeout wakes to this): the next statement fails, and the
  // connection is dropped instead of crashing the process with an unheard error.
  const onError = (error: Error) => (broken = error);
  connection.on('error', onError);
  try {
    await connection.query('BEGIN');
    const result = await work(async <Row>(statement: Prisma.Sql) =>
      (await connection.query(statement.text, statement.values)).rows as Row[],
    );
    await connection.query('COMMIT');
    return result;
  } catch (error) {
    // A connection that cannot even roll back is dropped, not given back to the pool.
    await connection.query('ROLLBACK').catch((rollback: Error) => (broken = rollback));
    throw error;
  } finally {
    connection.off('error', onError);
    connection.release(broken);
  }
}

/** Runs statements without Prisma (see directTransaction), in one transaction when there are
 * several; returns each one's rows. */
export async function sqlDirect<Row = Record<string, unknown>>(...statements: Prisma.Sql[]): Promise<Row[][]> {
  const run = async (sql: DirectSql) => {
    const results: Row[][] = [];
    for (const statement of statements) results.push(await sql<Row>(statement));
    return results;
  };
  if (statements.length > 1) return directTransaction(run);
  return run(async <R>(statement: Prisma.Sql) => (await pool().query(statement.text, statement.values)).rows as R[]);
}

/** The Prisma client of this process. */
export function db(): PrismaClient {
  if (!client) throw new Error('The database is not connected: start the app first');
  return client;
}
