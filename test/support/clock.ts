import type { Clock } from '../../src/infra/clock.js';

/** The day tests run on unless they set another: version sunsets never depend on today's date. */
export const TEST_TODAY = '2026-12-01T12:00:00Z';

/** A clock a test sets. */
export interface TestClock extends Clock {
  set(iso: string): void;
}

export function testClock(start = TEST_TODAY): TestClock {
  let now = new Date(start);
  return {
    now: () => new Date(now),
    set(iso) {
      now = new Date(iso);
    },
  };
}
