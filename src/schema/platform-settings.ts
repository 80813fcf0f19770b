import type { Platform } from '../generated/prisma/enums.js';
import { ValidationError } from './errors.js';

// What the typed config and credentials inputs share: one `@oneOf` member per platform.

/** The `@oneOf` member of DestinationConfigInput and DestinationCredentialsInput that holds each platform's settings. */
export const PLATFORM_MEMBERS = {
  META: 'meta',
  GOOGLE: 'google',
  LINKEDIN: 'linkedin',
  X: 'x',
  WEBHOOK: 'webhook',
} as const satisfies Record<Platform, string>;

const PLATFORM_NAMES: Record<Platform, string> = {
  META: 'Meta',
  GOOGLE: 'Google',
  LINKEDIN: 'LinkedIn',
  X: 'X',
  WEBHOOK: 'webhook',
};

/** The platform and settings of the one member of a `@oneOf` input given: graphql-js has already refused
 * none or several. */
export function chosenMember(input: object): { platform: Platform; settings: unknown } {
  for (const [platform, member] of Object.entries(PLATFORM_MEMBERS) as [Platform, string][]) {
    const settings = (input as Record<string, unknown>)[member];
    if (settings !== undefined && settings !== null) return { platform, settings };
  }
  throw new Error('a @oneOf input without a member reached the resolver');
}

/** Refuses settings given for another platform than the destination's, naming the member given and the one to use. */
export function requireMember(given: Platform, expected: Platform, root: 'input.config' | 'input.credentials'): void {
  if (given === expected) return;
  const part = root.slice('input.'.length);
  throw ValidationError.of(
    `${root}.${PLATFORM_MEMBERS[given]}`,
    `this is a ${PLATFORM_NAMES[expected]} destination: give ${part}.${PLATFORM_MEMBERS[expected]}, not ${part}.${PLATFORM_MEMBERS[given]}`,
  );
}

/** The settings as the connectors read them: GraphQL gives optional fields sent as null as null, and the
 * connectors' schemas take an absent key for "use the default". */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, child]) => child !== null && child !== undefined)
      .map(([key, child]) => [key, withoutNulls(child)]),
  );
}
