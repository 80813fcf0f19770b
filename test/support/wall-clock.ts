/** The wall-clock time of `date` in `timeZone`, e.g. { weekday: 'Mon', hour: 0, minute: 0, second: 0 }:
 * how a test checks, independently of Agenda and cron-parser, that a schedule lands where it should. */
export function wallClock(date: Date, timeZone: string) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
    hourCycle: 'h23',
  }).formatToParts(date);
  const part = (type: string) => parts.find((entry) => entry.type === type)!.value;
  return { weekday: part('weekday'), hour: Number(part('hour')), minute: Number(part('minute')), second: Number(part('second')) };
}

export const HOUR_MS = 3_600_000;
