import { CronExpressionParser } from 'cron-parser';
import type { ScheduleFrequency } from '../generated/prisma/enums.js';

export const MAX_CADENCE_HOURS = 720;
/** The cron expression each frequency repeats on, read in the sync's time zone: the top of every
 * hour, midnight, Monday midnight. */
export const FREQUENCY_CRON: Record<ScheduleFrequency, string> = {
  HOURLY: '0 * * * *',
  DAILY: '0 0 * * *',
  WEEKLY: '0 0 * * 1',
};
const CRON_MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly']);

/** Null when `expression` is a valid five-field cron expression (or a macro such as @daily),
 * otherwise what is wrong with it. */
export function cronProblem(expression: string): string | null {
  const trimmed = expression.trim();
  if (!CRON_MACROS.has(trimmed) && trimmed.split(/\s+/).length !== 5) {
    return 'must have five fields (minute hour day-of-month month day-of-week), e.g. "0 */4 * * *"';
  }
  try {
    CronExpressionParser.parse(trimmed);
    return null;
  } catch (error) {
    return `is not a valid cron expression: ${(error as Error).message}`;
  }
}

export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
