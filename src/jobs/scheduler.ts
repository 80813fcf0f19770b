import { PostgresBackend, getCreateIndexesSQL, getCreateTableSQL } from '@agendajs/postgres-backend';
import { Agenda, type Job } from 'agenda';
import pg from 'pg';
import { Gauge } from 'prom-client';
import { logger } from '../infra/logger.js';
import { metrics } from '../infra/metrics.js';

const JOBS_TABLE = 'agenda_jobs';

export interface SchedulerOptions {
  /** PostgreSQL holding the jobs when no MongoDB URL is given. */
  databaseUrl: string;
  mongodbUrl?: string;
  /** False where LISTEN/NOTIFY does not work (the embedded database): the worker polls. */
  notifications: boolean;
  pollIntervalMs: number;
  /** How long a job's lock lasts without a touch. */
  lockLifetimeMs: number;
}

let agenda: Agenda | undefined;
let pool: pg.Pool | undefined;

/** Creates the process's Agenda on MongoDB or PostgreSQL. Jobs are defined by the caller before
 * `start()`; a gateway-only process starts it too, so that its new jobs notify the workers. */
export async function openScheduler(options: SchedulerOptions): Promise<Agenda> {
  // The MongoDB driver (about 7 MB of heap) is loaded only where MONGODB_URL asks for it.
  const backend = options.mongodbUrl
    ? new (await import('@agendajs/mongo-backend')).MongoBackend({ address: options.mongodbUrl })
    : postgresBackend(await jobsPool(options.databaseUrl), options.notifications);
  agenda = new Agenda({
    backend,
    name: `${process.pid}`,
    processEvery: options.pollIntervalMs,
    defaultLockLifetime: options.lockLifetimeMs,
  });
  // Without a listener an unreachable job database would crash the process.
  agenda.on('error', (error: Error) => logger.error({ err: error }, 'Job scheduler error'));
  return agenda;
}

function postgresBackend(jobs: pg.Pool, notifications: boolean): PostgresBackend {
  pool = jobs;
  const backend = new PostgresBackend({
    pool: jobs,
    tableName: JOBS_TABLE,
    ensureSchema: false,
    disableNotifications: !notifications,
  });
  // Its LISTEN connection reconnects by itself when the server drops it (a restart, a failover), but
  // reports the loss as an 'error' event first: unheard, that event would crash the process.
  backend.notificationChannel?.on('error', (error: Error) =>
    logger.warn({ err: error }, 'Job notifications connection lost; reconnecting'),
  );
  return backend;
}

/** A pool for Agenda whose job table is created once, under a lock: two workers starting on a
 * fresh database would otherwise race creating it. */
async function jobsPool(databaseUrl: string): Promise<pg.Pool> {
  const jobs = new pg.Pool({ connectionString: databaseUrl, max: 5 });
  jobs.on('error', (error) => logger.error({ err: error }, 'Job database connection error'));
  const client = await jobs.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('agenda-schema'))`);
    await client.query(getCreateTableSQL(JOBS_TABLE));
    for (const statement of getCreateIndexesSQL(JOBS_TABLE)) await client.query(statement);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return jobs;
}

/** Stops taking jobs, lets running ones finish (up to `drainMs`), and closes connections. */
export async function closeScheduler(drainMs: number): Promise<void> {
  const open = agenda;
  agenda = undefined;
  if (open) await open.drain({ timeout: drainMs, closeConnection: true });
  await pool?.end();
  pool = undefined;
}

/** Whether the job backend answers (for readiness). */
export async function schedulerReachable(): Promise<void> {
  await scheduler().queryJobs({ limit: 1 });
}

/** How long the oldest due job has waited for a worker: the queue's lag. */
new Gauge({
  name: 'audience_sync_job_queue_lag_seconds',
  help: 'Seconds the oldest due job has been waiting for a worker (0 when none waits).',
  registers: [metrics],
  async collect() {
    if (!agenda) return;
    const { jobs } = await agenda.queryJobs({ state: 'queued', sort: { nextRunAt: 'asc' }, limit: 1 });
    const due = jobs[0]?.nextRunAt;
    this.set(due ? Math.max(0, (Date.now() - new Date(due).getTime()) / 1000) : 0);
  },
});

export function scheduler(): Agenda {
  if (!agenda) throw new Error('The job scheduler is not open: start the app first');
  return agenda;
}

/**
 * Runs `work` while renewing `job`'s lock every third of `lockLifetimeMs`, however long one step of
 * it takes (a large diff, a platform's long pause). A process that dies stops renewing: the lock
 * lapses and another worker picks the job up.
 */
export async function whileHoldingLock<T>(job: Job, lockLifetimeMs: number, work: () => Promise<T>): Promise<T> {
  const renew = () =>
    job.touch().catch((error: unknown) => logger.warn({ err: error, job: job.attrs.name }, 'Could not renew a job lock'));
  const timer = setInterval(renew, lockLifetimeMs / 3);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
