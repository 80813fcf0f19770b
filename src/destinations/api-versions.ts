/** One version of a platform API that the connectors support. `sunset` is the UTC day the platform
 * switches it off (YYYY-MM-DD), null while the platform has announced none. */
export interface ApiVersion {
  version: string;
  sunset: string | null;
}

/** The versions of one platform API the connectors support, newest first, as the platform's own
 * version page lists them. Versions are data with a lifecycle: update the table, not the code. */
export interface VersionTable {
  /** How messages name the API, e.g. "Meta API". */
  api: string;
  /** The config field that selects the version, e.g. `apiVersion`. */
  field: string;
  versions: readonly ApiVersion[];
}

/** How long before a version's sunset destinations using it start to warn. */
export const SUNSET_WARNING_DAYS = 60;
const DAY_MS = 86_400_000;

/** A version that is switched off (`sunset`) or will be within SUNSET_WARNING_DAYS (`ending`). */
export interface VersionNotice {
  state: 'ending' | 'sunset';
  api: string;
  /** The config field to change. */
  field: string;
  version: string;
  sunset: string;
  /** The version to move to; null when the table knows none that outlives this one. */
  replacement: string | null;
  message: string;
}

/** What new destinations get: the newest version the connectors support. */
export function newestVersion(table: VersionTable): string {
  return table.versions[0]!.version;
}

export function supportedVersions(table: VersionTable): string[] {
  return table.versions.map((entry) => entry.version);
}

const sunsetTime = (sunset: string) => Date.parse(`${sunset}T00:00:00Z`);

/** Whether `version` is switched off or about to be at `now`; null when it has time left (or is not in the table). */
export function versionNotice(table: VersionTable, version: string, now: Date): VersionNotice | null {
  const entry = table.versions.find((candidate) => candidate.version === version);
  if (!entry?.sunset) return null;
  const msLeft = sunsetTime(entry.sunset) - now.getTime();
  if (msLeft > SUNSET_WARNING_DAYS * DAY_MS) return null;
  const replacement =
    table.versions.find(
      (candidate) => candidate.sunset === null || sunsetTime(candidate.sunset) > sunsetTime(entry.sunset!),
    )?.version ?? null;
  const fix = replacement
    ? `set ${table.field} to ${replacement}`
    : 'this gateway knows no newer version yet: upgrade the gateway';
  const state = msLeft <= 0 ? 'sunset' : 'ending';
  const when = state === 'sunset' ? `was switched off on ${entry.sunset}` : `is switched off on ${entry.sunset}`;
  return {
    state,
    api: table.api,
    field: table.field,
    version,
    sunset: entry.sunset,
    replacement,
    message: `${table.api} ${version} ${when}: ${fix}`,
  };
}
