import { z } from 'zod';
import { newestVersion, supportedVersions, type VersionTable } from '../api-versions.js';
import type { DestinationConnector } from '../destination.js';
import { platformUrl } from '../platform-url.js';
import { strictConfig } from '../strict-config.js';
import type { GoogleCredentials } from './oauth.js';

// What the Google connector and its two APIs (data-manager.ts, ads-api.ts) share: the destination's
// settings, the destination fields and the shape of an API's list operations.

export { googleCredentialsSchema, type GoogleCredentials } from './oauth.js';

/**
 * The Google Ads API versions the ADS_API path supports, newest first, with Google's sunset dates,
 * each from its sunset reminder on the Google Ads developer blog ("Google Ads API vNN will sunset on
 * ..."): v20 on June 10, 2026 (https://developers.google.com/ads/blog/posts/2026/04/google-ads-api-v20-sunset-reminder),
 * v21 on August 5, 2026 (https://developers.google.com/ads/blog/posts/2026/06/google-ads-api-v21-sunset-reminder),
 * v22 on October 7, 2026 (https://developers.google.com/ads/blog/posts/2026/09/google-ads-api-v22-sunset-reminder).
 * v26 is "The latest active version" (https://developers.google.com/google-ads/api/reference/rpc/v24/OfflineUserAddressInfo).
 * No sunset date for v23 (released 2026-01-28) or later was found, checked 2026-12-07: not in a blog
 * reminder, and the copies read of https://developers.google.com/google-ads/api/docs/sunset-dates
 * did not show their rows (Google gives major versions "around 12 months"). Add each date here once
 * read from that page.
 */
export const GOOGLE_ADS_API_VERSIONS: VersionTable = {
  api: 'Google Ads API',
  field: 'adsApiVersion',
  versions: [
    { version: 'v26', sunset: null },
    { version: 'v25', sunset: null },
    { version: 'v24', sunset: null },
    { version: 'v23', sunset: null },
    { version: 'v22', sunset: '2026-10-07' },
    { version: 'v21', sunset: '2026-08-05' },
    { version: 'v20', sunset: '2026-06-10' },
  ],
};
const ADS_API_VERSIONS = supportedVersions(GOOGLE_ADS_API_VERSIONS) as [string, ...string[]];

/** Where each API lives unless the config's baseUrl replaces it. */
export const GOOGLE_API_BASE_URLS = {
  DATA_MANAGER: 'https://datamanager.googleapis.com',
  ADS_API: 'https://googleads.googleapis.com',
} as const;

const ACCOUNT_TYPES = ['GOOGLE_ADS', 'DISPLAY_VIDEO_ADVERTISER', 'DISPLAY_VIDEO_PARTNER', 'DATA_PARTNER'] as const;
const CONSENT_STATUSES = ['CONSENT_GRANTED', 'CONSENT_DENIED'] as const;

export const productAccountFields = z.object({
  accountType: z
    .enum(ACCOUNT_TYPES, { error: `accountType must be one of ${ACCOUNT_TYPES.join(', ')}` })
    .default('GOOGLE_ADS')
    .describe('The kind of account.'),
  accountId: z
    .string()
    .trim()
    .regex(/^\d+(-\d+)*$/, 'accountId must be the account number, e.g. 123-456-7890')
    .transform((id) => id.replaceAll('-', ''))
    .describe('The account number, with or without dashes.'),
});
const productAccountSchema = strictConfig(productAccountFields);
export type ProductAccount = z.infer<typeof productAccountFields>;

const consentStatusSchema = z.enum(CONSENT_STATUSES, { error: 'must be CONSENT_GRANTED or CONSENT_DENIED' });
export const consentFields = z.object({
  adUserData: consentStatusSchema.describe('Consent to use the data for advertising.'),
  adPersonalization: consentStatusSchema.describe('Consent to personalized advertising.'),
});

/** A Google destination's settings. */
export const googleConfigFields = z.object({
  /** DATA_MANAGER (the default, what Google requires of new integrations) or ADS_API: the Google
   * Ads API's offline user data jobs, for developer tokens already allowed Customer Match there. */
  api: z
    .enum(['DATA_MANAGER', 'ADS_API'], { error: 'api must be DATA_MANAGER or ADS_API' })
    .default('DATA_MANAGER')
    .describe('DATA_MANAGER (the default) or ADS_API (offline user data jobs; needs a developer token).'),
  /** The account whose Customer Match lists the syncs fill. */
  operatingAccount: productAccountSchema.describe('The account whose Customer Match lists the syncs fill.'),
  /** The account the Google user signs in with, when it is a manager of the operating account. */
  loginAccount: productAccountSchema
    .optional()
    .describe('The manager account the Google user signs in with, if not the operating account.'),
  /** The consent the audience's people gave, sent with every upload (required for EEA users). */
  consent: strictConfig(consentFields).describe('The consent the audience gave, sent with every upload.'),
  customerMatchTermsAccepted: z
    .literal(true, {
      error: 'accept the Customer Match terms in Google Ads (Audience manager), then set customerMatchTermsAccepted to true',
    })
    .describe('Must be true: the Customer Match terms are accepted in Google Ads.'),
  /** The API's root; by default Google's for the chosen api. */
  baseUrl: platformUrl('baseUrl', Object.values(GOOGLE_API_BASE_URLS)).optional(),
  adsApiVersion: z
    .enum(ADS_API_VERSIONS, {
      error: `adsApiVersion must be a Google Ads API version this gateway supports: ${ADS_API_VERSIONS.join(', ')}`,
    })
    .default(newestVersion(GOOGLE_ADS_API_VERSIONS))
    .describe('The Google Ads API version (api: ADS_API); the newest supported one unless given.'),
  tokenUrl: platformUrl('tokenUrl', ['https://oauth2.googleapis.com/token']).default('https://oauth2.googleapis.com/token'),
});

export const googleConfigSchema = strictConfig(googleConfigFields).refine(
  (config) => config.api === 'DATA_MANAGER' || config.operatingAccount.accountType === 'GOOGLE_ADS',
  { path: ['operatingAccount', 'accountType'], error: 'the Google Ads API (api: ADS_API) serves GOOGLE_ADS accounts only' },
);
export type GoogleConfig = z.infer<typeof googleConfigFields>;

/** Why the credentials cannot serve the config's API, or null. */
export function missingDeveloperToken(config: GoogleConfig, credentials: GoogleCredentials): string | null {
  return config.api === 'ADS_API' && !credentials.developerToken
    ? 'the Google Ads API (api: ADS_API) needs a developer token: add developerToken to the credentials, or use the Data Manager API'
    : null;
}

/** Destination fields: contact details (hashed, except COUNTRY and ZIP) or mobile advertising ids. */
export const GOOGLE_FIELDS = ['EMAIL', 'PHONE', 'FIRST_NAME', 'LAST_NAME', 'COUNTRY', 'ZIP', 'MOBILE_ID'] as const;
export type GoogleField = (typeof GOOGLE_FIELDS)[number];

/** The list operations of one API, bound to a destination. */
export type ListOperations = Pick<
  DestinationConnector,
  'checkAccess' | 'ensureAudience' | 'addMembers' | 'removeMembers' | 'checkJob' | 'readAudience'
>;
