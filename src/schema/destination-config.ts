import type { VersionTable } from '../destinations/api-versions.js';
import { GOOGLE_ADS_API_VERSIONS, GOOGLE_API_BASE_URLS, type GoogleConfig } from '../destinations/google/settings.js';
import { LINKEDIN_API_VERSIONS, type LinkedInConfig } from '../destinations/linkedin/connector.js';
import { META_API_VERSIONS, type MetaConfig } from '../destinations/meta/connector.js';
import { platformSpec } from '../destinations/registry.js';
import type { WebhookConfig } from '../destinations/webhook/connector.js';
import type { XConfig } from '../destinations/x/connector.js';
import type { Platform } from '../generated/prisma/enums.js';
import { builder } from './builder.js';

// The typed, non-secret settings of a destination: one input and one output type per platform. The
// connectors' own schemas (src/destinations/<platform>) stay the validation: these types describe them.

/** An API version table as a GraphQL enum: `v27.0` is `V27_0`, `202603` is `V202603`; each value says its sunset. */
function versionEnum(name: string, table: VersionTable, description: string) {
  const values = Object.fromEntries(
    table.versions.map((entry) => [
      `V${entry.version.replace(/^v/, '').replaceAll('.', '_')}`,
      {
        value: entry.version,
        description: entry.sunset
          ? `${table.api} ${entry.version}, switched off on ${entry.sunset} (saves are refused from that day).`
          : `${table.api} ${entry.version}; no switch-off date announced.`,
      },
    ]),
  );
  return builder.enumType(name, { description, values });
}

const MetaApiVersionEnum = versionEnum(
  'MetaApiVersion',
  META_API_VERSIONS,
  'A Meta Marketing API version this gateway supports; each value says when Meta switches it off.',
);
const LinkedInApiVersionEnum = versionEnum(
  'LinkedInApiVersion',
  LINKEDIN_API_VERSIONS,
  'A LinkedIn Marketing API version (the LinkedIn-Version header, YYYYMM) this gateway supports; LinkedIn keeps each at least a year.',
);
const GoogleAdsApiVersionEnum = versionEnum(
  'GoogleAdsApiVersion',
  GOOGLE_ADS_API_VERSIONS,
  'A Google Ads API version this gateway supports (used with api: ADS_API).',
);

const GoogleApiEnum = builder.enumType('GoogleApi', {
  description: 'Which Google API a Google destination sends its Customer Match lists through.',
  values: {
    DATA_MANAGER: { description: 'The Data Manager API: what Google requires of new integrations (the default).' },
    ADS_API: {
      description: "The Google Ads API's offline user data jobs, for developer tokens already allowed Customer Match there; needs a developer token in the credentials.",
    },
  } as const,
});

const GoogleAccountTypeEnum = builder.enumType('GoogleAccountType', {
  description: 'The kind of Google advertising account.',
  values: {
    GOOGLE_ADS: { description: 'A Google Ads account (the only kind the Google Ads API path serves).' },
    DISPLAY_VIDEO_ADVERTISER: { description: 'A Display & Video 360 advertiser.' },
    DISPLAY_VIDEO_PARTNER: { description: 'A Display & Video 360 partner.' },
    DATA_PARTNER: { description: 'A data partner account.' },
  } as const,
});

const GoogleConsentStatusEnum = builder.enumType('GoogleConsentStatus', {
  description: "The consent the audience's people gave for one use of their data (required by Google for EEA users).",
  values: {
    CONSENT_GRANTED: { description: 'Consent was given.' },
    CONSENT_DENIED: { description: 'Consent was refused.' },
  } as const,
});

const BASE_URL_DESCRIPTION =
  "Replaces the platform API's root URL, for a staging endpoint or a test double: refused unless the gateway runs with ALLOW_CUSTOM_PLATFORM_URLS=true, and then under the rules of webhook URLs (https; private addresses only with ALLOW_PRIVATE_URLS=true).";

const MetaConfigInput = builder.inputType('MetaConfigInput', {
  description: 'The settings of a Meta destination.',
  fields: (t) => ({
    adAccountId: t.string({
      required: true,
      description: 'The ad account number, with or without its `act_` prefix, e.g. `act_1234567890`.',
    }),
    apiVersion: t.field({
      type: MetaApiVersionEnum,
      required: false,
      description: 'The Marketing API version. Default: the newest this gateway supports. A version past its switch-off date is refused.',
    }),
    baseUrl: t.string({ required: false, description: `${BASE_URL_DESCRIPTION} Default: \`https://graph.facebook.com\`.` }),
  }),
});

const GoogleAccountInput = builder.inputType('GoogleAccountInput', {
  description: 'A Google advertising account.',
  fields: (t) => ({
    accountType: t.field({ type: GoogleAccountTypeEnum, required: false, description: 'The kind of account. Default: GOOGLE_ADS.' }),
    accountId: t.string({ required: true, description: 'The account number, with or without dashes, e.g. `123-456-7890`.' }),
  }),
});

const GoogleConsentInput = builder.inputType('GoogleConsentInput', {
  description: "The consent the audience's people gave, sent with every upload.",
  fields: (t) => ({
    adUserData: t.field({ type: GoogleConsentStatusEnum, required: true, description: 'Consent to use their data for advertising.' }),
    adPersonalization: t.field({ type: GoogleConsentStatusEnum, required: true, description: 'Consent to personalized advertising.' }),
  }),
});

const GoogleConfigInput = builder.inputType('GoogleConfigInput', {
  description: 'The settings of a Google (Customer Match) destination.',
  fields: (t) => ({
    api: t.field({ type: GoogleApiEnum, required: false, description: 'The API the lists are sent through. Default: DATA_MANAGER.' }),
    operatingAccount: t.field({
      type: GoogleAccountInput,
      required: true,
      description: 'The account whose Customer Match lists the syncs fill (a GOOGLE_ADS account with api: ADS_API).',
    }),
    loginAccount: t.field({
      type: GoogleAccountInput,
      required: false,
      description: 'The manager account the Google user signs in with, when it is not the operating account.',
    }),
    consent: t.field({ type: GoogleConsentInput, required: true, description: "The consent the audience's people gave." }),
    customerMatchTermsAccepted: t.boolean({
      required: true,
      description: 'Must be true: the Customer Match terms are accepted in Google Ads (Audience manager). False is refused.',
    }),
    baseUrl: t.string({
      required: false,
      description: `${BASE_URL_DESCRIPTION} Default: Google's for the chosen api (\`https://datamanager.googleapis.com\` or \`https://googleads.googleapis.com\`).`,
    }),
    adsApiVersion: t.field({
      type: GoogleAdsApiVersionEnum,
      required: false,
      description: 'The Google Ads API version (api: ADS_API only). Default: the newest this gateway supports.',
    }),
    tokenUrl: t.string({
      required: false,
      description: `Replaces Google's OAuth token endpoint, under the same rules as baseUrl. Default: \`https://oauth2.googleapis.com/token\`.`,
    }),
  }),
});

const LinkedInConfigInput = builder.inputType('LinkedInConfigInput', {
  description: 'The settings of a LinkedIn destination.',
  fields: (t) => ({
    adAccountId: t.string({ required: true, description: 'The LinkedIn ad account number (digits only).' }),
    apiVersion: t.field({
      type: LinkedInApiVersionEnum,
      required: false,
      description: 'The LinkedIn-Version header. Default: the newest this gateway supports. A version past its switch-off date is refused.',
    }),
    baseUrl: t.string({ required: false, description: `${BASE_URL_DESCRIPTION} Default: \`https://api.linkedin.com\`.` }),
    sourcePlatform: t.string({
      required: false,
      description: 'The upper-case partner value LinkedIn gave with Audiences API access, e.g. `MY_COMPANY`; needed only to create segments.',
    }),
    segmentReadyDelayMs: t.int({
      required: false,
      description: 'Milliseconds to wait after creating a segment before adding users, 0–60,000. Default: 5,000 (LinkedIn asks for a pause).',
    }),
  }),
});

const XConfigInput = builder.inputType('XConfigInput', {
  description: 'The settings of an X destination.',
  fields: (t) => ({
    accountId: t.string({ required: true, description: 'The X ads account id, lower-case letters and digits, e.g. `18ce54d4x5t`.' }),
    baseUrl: t.string({ required: false, description: `${BASE_URL_DESCRIPTION} Default: \`https://ads-api.x.com\`.` }),
  }),
});

const WebhookConfigInput = builder.inputType('WebhookConfigInput', {
  description: 'The settings of a webhook destination.',
  fields: (t) => ({
    url: t.string({
      required: true,
      description: 'Where each batch is POSTed, as signed JSON: an https URL, with no user name or password; private addresses (and plain http on loopback) only with ALLOW_PRIVATE_URLS=true.',
    }),
    batchSize: t.int({ required: false, description: 'Members per request, 1–10,000. Default: 1,000.' }),
  }),
});

export const DestinationConfigInput = builder.inputType('DestinationConfigInput', {
  description:
    'The non-secret settings of a destination: set exactly one field, the one of its platform. The platform\'s own rules ' +
    'are checked when it is saved (a ValidationError names the field, e.g. `input.config.meta.apiVersion`).',
  isOneOf: true,
  fields: (t) => ({
    meta: t.field({ type: MetaConfigInput, required: false, description: 'A Meta destination.' }),
    google: t.field({ type: GoogleConfigInput, required: false, description: 'A Google destination.' }),
    linkedin: t.field({ type: LinkedInConfigInput, required: false, description: 'A LinkedIn destination.' }),
    x: t.field({ type: XConfigInput, required: false, description: 'An X destination.' }),
    webhook: t.field({ type: WebhookConfigInput, required: false, description: 'A webhook destination.' }),
  }),
});

/** A stored config with the platform it belongs to, as the union's members read it. */
type PlatformConfig<P extends Platform, Config> = { platform: P; settings: Config };

const MetaConfigRef = builder.objectRef<PlatformConfig<'META', MetaConfig>>('MetaConfig').implement({
  description: 'The settings of a Meta destination.',
  fields: (t) => ({
    adAccountId: t.string({ description: 'The ad account number, as given.', resolve: ({ settings }) => settings.adAccountId }),
    apiVersion: t.field({ type: MetaApiVersionEnum, description: 'The Marketing API version used.', resolve: ({ settings }) => settings.apiVersion }),
    baseUrl: t.string({ description: "The Graph API's root URL.", resolve: ({ settings }) => settings.baseUrl }),
  }),
});

const GoogleAccountRef = builder.objectRef<GoogleConfig['operatingAccount']>('GoogleAccount').implement({
  description: 'A Google advertising account.',
  fields: (t) => ({
    accountType: t.field({ type: GoogleAccountTypeEnum, description: 'The kind of account.', resolve: (account) => account.accountType }),
    accountId: t.exposeString('accountId', { description: 'The account number, without dashes.' }),
  }),
});

const GoogleConsentRef = builder.objectRef<GoogleConfig['consent']>('GoogleConsent').implement({
  description: "The consent the audience's people gave, sent with every upload.",
  fields: (t) => ({
    adUserData: t.field({ type: GoogleConsentStatusEnum, description: 'Consent to use their data for advertising.', resolve: (consent) => consent.adUserData }),
    adPersonalization: t.field({
      type: GoogleConsentStatusEnum,
      description: 'Consent to personalized advertising.',
      resolve: (consent) => consent.adPersonalization,
    }),
  }),
});

const GoogleConfigRef = builder.objectRef<PlatformConfig<'GOOGLE', GoogleConfig>>('GoogleConfig').implement({
  description: 'The settings of a Google (Customer Match) destination.',
  fields: (t) => ({
    api: t.field({ type: GoogleApiEnum, description: 'The API the lists are sent through.', resolve: ({ settings }) => settings.api }),
    operatingAccount: t.field({
      type: GoogleAccountRef,
      description: 'The account whose Customer Match lists the syncs fill.',
      resolve: ({ settings }) => settings.operatingAccount,
    }),
    loginAccount: t.field({
      type: GoogleAccountRef,
      nullable: true,
      description: 'The manager account the Google user signs in with; null when it is the operating account.',
      resolve: ({ settings }) => settings.loginAccount ?? null,
    }),
    consent: t.field({ type: GoogleConsentRef, description: "The consent the audience's people gave.", resolve: ({ settings }) => settings.consent }),
    customerMatchTermsAccepted: t.boolean({
      description: 'Whether the Customer Match terms are accepted (always true once saved).',
      resolve: ({ settings }) => settings.customerMatchTermsAccepted,
    }),
    baseUrl: t.string({
      description: "The chosen API's root URL: Google's own unless replaced.",
      resolve: ({ settings }) => settings.baseUrl ?? GOOGLE_API_BASE_URLS[settings.api],
    }),
    adsApiVersion: t.field({
      type: GoogleAdsApiVersionEnum,
      description: 'The Google Ads API version used with api: ADS_API.',
      resolve: ({ settings }) => settings.adsApiVersion,
    }),
    tokenUrl: t.string({ description: "Google's OAuth token endpoint.", resolve: ({ settings }) => settings.tokenUrl }),
  }),
});

// Members of a union that share a field name must agree on its type within one selection: a client selecting
// both Meta's and LinkedIn's apiVersion (two enums) aliases one of them.
const LinkedInConfigRef = builder.objectRef<PlatformConfig<'LINKEDIN', LinkedInConfig>>('LinkedInConfig').implement({
  description: 'The settings of a LinkedIn destination.',
  fields: (t) => ({
    adAccountId: t.string({ description: 'The LinkedIn ad account number.', resolve: ({ settings }) => settings.adAccountId }),
    apiVersion: t.field({
      type: LinkedInApiVersionEnum,
      description: 'The LinkedIn-Version header sent.',
      resolve: ({ settings }) => settings.apiVersion,
    }),
    baseUrl: t.string({ description: "The LinkedIn API's root URL.", resolve: ({ settings }) => settings.baseUrl }),
    sourcePlatform: t.string({
      nullable: true,
      description: 'The partner value LinkedIn gave; null when none is set (segments cannot be created).',
      resolve: ({ settings }) => settings.sourcePlatform ?? null,
    }),
    segmentReadyDelayMs: t.int({
      description: 'Milliseconds waited after creating a segment before adding users.',
      resolve: ({ settings }) => settings.segmentReadyDelayMs,
    }),
  }),
});

const XConfigRef = builder.objectRef<PlatformConfig<'X', XConfig>>('XConfig').implement({
  description: 'The settings of an X destination.',
  fields: (t) => ({
    accountId: t.string({ description: 'The X ads account id.', resolve: ({ settings }) => settings.accountId }),
    baseUrl: t.string({ description: "The X Ads API's root URL.", resolve: ({ settings }) => settings.baseUrl }),
  }),
});

const WebhookConfigRef = builder.objectRef<PlatformConfig<'WEBHOOK', WebhookConfig>>('WebhookConfig').implement({
  description: 'The settings of a webhook destination.',
  fields: (t) => ({
    url: t.string({ description: 'Where each batch is POSTed.', resolve: ({ settings }) => settings.url }),
    batchSize: t.int({ description: 'Members per request.', resolve: ({ settings }) => settings.batchSize }),
  }),
});

const CONFIG_TYPES = {
  META: MetaConfigRef,
  GOOGLE: GoogleConfigRef,
  LINKEDIN: LinkedInConfigRef,
  X: XConfigRef,
  WEBHOOK: WebhookConfigRef,
} as const satisfies Record<Platform, unknown>;

type AnyPlatformConfig =
  | PlatformConfig<'META', MetaConfig>
  | PlatformConfig<'GOOGLE', GoogleConfig>
  | PlatformConfig<'LINKEDIN', LinkedInConfig>
  | PlatformConfig<'X', XConfig>
  | PlatformConfig<'WEBHOOK', WebhookConfig>;

export const DestinationConfigRef = builder.unionType('DestinationConfig', {
  description: "A destination's non-secret settings: the type of its platform. Secrets are never returned.",
  types: Object.values(CONFIG_TYPES),
  resolveType: (config: AnyPlatformConfig) => CONFIG_TYPES[config.platform],
});

/** A stored config as the API shows it: as the connector reads it (with its defaults), or as stored when the
 * gateway no longer allows it (a custom URL after ALLOW_CUSTOM_PLATFORM_URLS was turned off). */
export function storedConfig(destination: { platform: Platform; config: unknown }): AnyPlatformConfig {
  const parsed = platformSpec(destination.platform).configSchema.safeParse(destination.config);
  return { platform: destination.platform, settings: parsed.success ? parsed.data : destination.config } as AnyPlatformConfig;
}
