import type { ConsoleSyncSummaryFragment, Platform, SyncMode } from '../generated/console/graphql.js';

const numbers = new Intl.NumberFormat('en');

export const formatCount = (value: number | null | undefined): string => (value == null ? '—' : numbers.format(value));

export const PLATFORM_NAMES: Record<Platform, string> = {
  META: 'Meta',
  GOOGLE: 'Google Customer Match',
  LINKEDIN: 'LinkedIn',
  X: 'X',
  WEBHOOK: 'Webhook',
};

export const MODE_NAMES: Record<Exclude<SyncMode, 'APPEND_ONLY'>, string> = {
  MIRROR: 'Mirror',
  ADD: 'Add only',
  REMOVE: 'Remove only',
  UPSERT: 'Upsert',
};

export const modeName = (mode: SyncMode): string => MODE_NAMES[mode === 'APPEND_ONLY' ? 'ADD' : mode];

const dateTime = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });
const shortDateTime = new Intl.DateTimeFormat('en', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export const formatDateTime = (iso: string | null | undefined): string => (iso ? dateTime.format(new Date(iso)) : '—');
export const formatShortDateTime = (iso: string): string => shortDateTime.format(new Date(iso));

/** "3 min ago", "in 2 h": how far a moment is from now. */
export function formatFromNow(iso: string, now = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const magnitude = Math.abs(seconds);
  // Clocks of the browser and the gateway differ by a little.
  if (magnitude < 10) return 'just now';
  const [amount, unit] =
    magnitude < 60 ? [magnitude, 's'] : magnitude < 3600 ? [Math.round(magnitude / 60), 'min'] : magnitude < 86_400 ? [Math.round(magnitude / 3600), 'h'] : [Math.round(magnitude / 86_400), 'd'];
  return seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}

export function formatDuration(fromIso: string | null | undefined, toIso: string | null | undefined): string {
  if (!fromIso || !toIso) return '—';
  const seconds = (new Date(toIso).getTime() - new Date(fromIso).getTime()) / 1000;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** The schedule in words: "daily (Europe/Paris)", "cron 0 6 * * *", "every 24 h", "manual only". */
export function describeSchedule(schedule: ConsoleSyncSummaryFragment['schedule']): string {
  const zone = schedule.timezone ? ` (${schedule.timezone})` : '';
  if (schedule.cron) return `cron ${schedule.cron}${zone}`;
  if (schedule.frequency) return `${schedule.frequency.toLowerCase()}${zone}`;
  return schedule.cadenceHours === 0 ? 'manual only' : `every ${schedule.cadenceHours} h`;
}
