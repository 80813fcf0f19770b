import type { IncomingMessage, ServerResponse } from 'node:http';
import { db } from '../infra/db.js';
import { schedulerReachable } from '../jobs/scheduler.js';
import { logger } from '../infra/logger.js';
import { metrics } from '../infra/metrics.js';

/**
 * Endpoints for operators, served by every role on its HTTP port:
 * `/healthz` (the process is up), `/readyz` (the database and the job backend answer), `/metrics`.
 * Returns false for any other path.
 */
export async function handleOpsRequest(request: IncomingMessage, response: ServerResponse): Promise<boolean> {
  const path = (request.url ?? '').split('?')[0];
  if (request.method !== 'GET' || !path || !OPS_PATHS.has(path)) return false;
  if (path === '/healthz') {
    reply(response, 200, 'application/json', JSON.stringify({ status: 'ok' }));
  } else if (path === '/readyz') {
    const checks = { database: await probe(() => db().$queryRaw`SELECT 1`), jobs: await probe(schedulerReachable) };
    const ready = checks.database && checks.jobs;
    reply(response, ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', checks }));
  } else {
    reply(response, 200, metrics.contentType, await metrics.metrics());
  }
  return true;
}

const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch (error) {
    logger.warn({ err: error }, 'Readiness check failed');
    return false;
  }
}

function reply(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}
