/** What time it is, for decisions that depend on the calendar (platform API versions switched off on
 * a date). The app is given one; tests pass a clock they set, so no test depends on today's date. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
