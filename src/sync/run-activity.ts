import type { Platform } from '../generated/prisma/enums.js';
import { db } from '../infra/db.js';
import { logger } from '../infra/logger.js';
import type { RunFence } from './run-lease.js';

/** How often a step that lasts is described again (with its elapsed time or the wait left). */
export const ACTIVITY_REFRESH_MS = 1_000;

export const PLATFORM_NAMES: Record<Platform, string> = {
  META: 'Meta',
  GOOGLE: 'Google',
  LINKEDIN: 'LinkedIn',
  X: 'X',
  WEBHOOK: 'the webhook',
};

/** Says what the run is doing, given how many whole seconds the step has lasted. */
export type DescribeActivity = (elapsedSeconds: number) => string;

export interface RunActivity {
  /** Describes the step starting now, at once and then every second until the next one. */
  set(describe: DescribeActivity): void;
  stop(): void;
}

/**
 * Keeps `sync_run.activity` saying what an execution is doing ("adding: batch 3 of 10 to Meta (4 s)",
 * "waiting 40 s for Meta"), so that a dashboard hears from a long batch or pause at least every
 * second. Each changed text is written and then `published`. The write only touches a run this
 * execution still holds (its lease generation, RUNNING); it is not in the run's fenced transactions,
 * since it changes nothing that a resumed run relies on. A change asked for during a write follows it.
 */
export function trackRunActivity(fence: RunFence, published: () => void): RunActivity {
  let describe: DescribeActivity | null = null;
  let startedAt = 0;
  let written: string | null = null;
  let writing = false;
  let pending = false;
  const refresh = async (): Promise<void> => {
    if (!describe) return;
    if (writing) {
      pending = true;
      return;
    }
    const text = describe(Math.floor((performance.now() - startedAt) / 1000));
    if (text === written) return;
    writing = true;
    try {
      const updated = await db().$executeRaw`
        UPDATE sync_run SET activity = ${text}
        WHERE id = ${fence.runId}::uuid AND lease_generation = ${fence.generation} AND status = 'RUNNING'`;
      written = text;
      if (updated === 1) published();
    } catch (error) {
      logger.warn({ err: error, runId: fence.runId }, 'Could not record what a sync run is doing');
    } finally {
      writing = false;
    }
    if (pending) {
      pending = false;
      await refresh();
    }
  };
  const timer = setInterval(() => void refresh(), ACTIVITY_REFRESH_MS);
  return {
    set(next) {
      describe = next;
      startedAt = performance.now();
      void refresh();
    },
    stop() {
      describe = null;
      clearInterval(timer);
    },
  };
}

/** "3 s" past the first second, nothing before: a step's text changes every second it lasts. */
export const elapsed = (seconds: number) => (seconds > 0 ? ` (${seconds} s)` : '');
