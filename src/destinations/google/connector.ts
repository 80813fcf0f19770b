import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type ContactIdentity,
  type DestinationConnector,
  type EncodedIdentifiers,
  type FieldMapping,
} from '../destination.js';
import { encodeByRule, mappingEncoder, type FieldRule } from '../encoding.js';
import { platformUrl } from '../platform-url.js';
import { ADS_API_MAX_OPERATIONS, adsApiOperations } from './ads-api.js';
import { googleApiClient } from './client.js';
import { DATA_MANAGER_MAX_MEMBERS, dataManagerOperations } from './data-manager.js';
import { ADS_SCOPE, DATA_MANAGER_SCOPE, googleAccessTokens, secretsOf, type GoogleCredentials } from './oauth.js';

export { googleCredentialsSchema, type GoogleCredentials } from './oauth.js';

const ACCOUNT_TYPES = ['GOOGLE_ADS', 'DISPLAY_VIDEO_ADVERTISER', 'DISPLAY_VIDEO_PARTNER', 'DATA_PARTNER'] as const;
const CONSENT_STATUSES = ['CONSENT_GRANTED', 'CONSENT_DENIED'] as const;

const productAccountSchema = z.object({
  accountType: z.enum(ACCOUNT_TYPES, { error: `accountType must be one of ${ACCOUNT_TYPES.join(', ')}` }).default('GOOGLE_ADS'),
  accountId: z
    .string()
    .trim()
    .regex(/^\d+(-\d+)*$/, 'accountId must be the account number, e.g. 123-456-7890')
    .transform((id) => id.replaceAll('-', '')),
});
export type ProductAccount = z.infer<typeof productAccountSchema>;

const consentStatusSchema = z.enum(CONSENT_STATUSES, { error: 'must be CONSENT_GRANTED or CONSENT_DENIED' });

export const googleConfigSchema = z
  .object({
    /** DATA_MANAGER (the default, what Google requires of new integrations) or ADS_API: the Google
     * Ads API's offline user data jobs, for developer tokens already allowed Customer Match there. */
    api: z.enum(['DATA_MANAGER', 'ADS_API'], { error: 'api must be DATA_MANAGER or ADS_API' }).default('DATA_MANAGER'),
    /** The account whose Customer Match lists the syncs fill. */
    operatingAccount: productAccountSchema,
    /** The account the Google user signs in with, when it is a manager of the operating account. */
    loginAccount: productAccountSchema.optional(),
    /** The consent the audience's people gave, sent with every upload (required for EEA users). */
    consent: z.object({ adUserData: consentStatusSchema, adPersonalization: consentStatusSchema }),
    customerMatchTermsAccepted: z.literal(true, {
      error: 'accept the Customer Match terms in Google Ads (Audience manager), then set customerMatchTermsAccepted to true',
    }),
    /** The API's root; by default Google's for the chosen api. */
    baseUrl: platformUrl('baseUrl', ['https://datamanager.googleapis.com', 'https://googleads.googleapis.com']).optional(),
    adsApiVersion: z.string().regex(/^v\d+$/, 'adsApiVersion must look like v23').default('v23'),
    tokenUrl: platformUrl('tokenUrl', ['https://oauth2.googleapis.com/token']).default('https://oauth2.googleapis.com/token'),
  })
  .refine((config) => config.api === 'DATA_MANAGER' || config.operatingAccount.accountType === 'GOOGLE_ADS', {
    path: ['operatingAccount', 'accountType'],
    error: 'the Google Ads API (api: ADS_API) serves GOOGLE_ADS accounts only',
  });
export type GoogleConfig = z.infer<typeof googleConfigSchema>;

/** Destination fields: contact details (hashed, except COUNTRY and ZIP) or mobile advertising ids. */
export const GOOGLE_FIELDS = ['EMAIL', 'PHONE', 'FIRST_NAME', 'LAST_NAME', 'COUNTRY', 'ZIP', 'MOBILE_ID'] as const;
type GoogleField = (typeof GOOGLE_FIELDS)[number];
/** Google matches an address only as a whole: all four parts, or none. */
const ADDRESS_FIELDS = ['FIRST_NAME', 'LAST_NAME', 'COUNTRY', 'ZIP'] as const;

const GMAIL_DOMAINS = new Set(['gmail.com', 'googlemail.com']);
const MOBILE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whitespace removed, lowercased; Gmail addresses without the dots and `+tag` of their local part. */
function normalizeEmail(value: string): string | null {
  const email = value.replace(/\s/g, '').toLowerCase();
  const [local, domain, ...rest] = email.split('@');
  if (!local || !domain || rest.length > 0 || !domain.includes('.')) return null;
  if (!GMAIL_DOMAINS.has(domain)) return email;
  const account = local.split('+')[0]!.replaceAll('.', '');
  return account ? `${account}@${domain}` : null;
}

/** E.164 with the leading `+`; separators people type are dropped. */
function normalizePhone(value: string): string | null {
  const phone = value.replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{6,14}$/.test(phone) ? phone : null;
}

const normalizeName = (value: string) => value.normalize('NFC').trim().toLowerCase() || null;

const FIELD_RULES: Record<GoogleField, FieldRule> = {
  EMAIL: { normalize: normalizeEmail, hashed: true },
  PHONE: { normalize: normalizePhone, hashed: true },
  FIRST_NAME: { normalize: normalizeName, hashed: true },
  LAST_NAME: { normalize: normalizeName, hashed: true },
  COUNTRY: { normalize: (value) => (/^[a-z]{2}$/i.test(value.trim()) ? value.trim().toUpperCase() : null), hashed: false },
  ZIP: { normalize: (value) => value.trim() || null, hashed: false },
  MOBILE_ID: { normalize: (value) => (MOBILE_ID.test(value.trim()) ? value.trim() : null), hashed: false },
};

const encodeMappedFields = mappingEncoder({
  fields: GOOGLE_FIELDS,
  encodeValue: (field, raw) => encodeByRule(FIELD_RULES[field], raw),
  unknownField: (field) => `Google has no field "${field}"; map to one of ${GOOGLE_FIELDS.join(', ')}`,
});

function encodeContact(contact: ContactIdentity, mapping: readonly FieldMapping[]): EncodedIdentifiers | null {
  const identifiers = encodeMappedFields(contact, mapping);
  if (!identifiers) return null;
  if (!ADDRESS_FIELDS.every((field) => identifiers[field] !== undefined)) {
    for (const field of ADDRESS_FIELDS) delete identifiers[field];
  }
  return Object.keys(identifiers).length > 0 ? identifiers : null;
}

function mixesMobileIdsWithContacts(mapping: readonly FieldMapping[]): boolean {
  const targets = new Set(mapping.map((entry) => entry.destinationField));
  return targets.has('MOBILE_ID') && targets.size > 1;
}

const ACCOUNT_LABELS: Record<ProductAccount['accountType'], string> = {
  GOOGLE_ADS: 'Google Ads account',
  DISPLAY_VIDEO_ADVERTISER: 'Display & Video 360 advertiser',
  DISPLAY_VIDEO_PARTNER: 'Display & Video 360 partner',
  DATA_PARTNER: 'data partner account',
};

/** What differs between the two APIs: where they live, what they need, how lists are filled. */
const APIS = {
  DATA_MANAGER: {
    name: 'the Data Manager API',
    baseUrl: 'https://datamanager.googleapis.com',
    scope: DATA_MANAGER_SCOPE,
    maxBatchSize: DATA_MANAGER_MAX_MEMBERS,
    operations: dataManagerOperations,
  },
  ADS_API: {
    name: 'the Google Ads API',
    baseUrl: 'https://googleads.googleapis.com',
    scope: ADS_SCOPE,
    maxBatchSize: ADS_API_MAX_OPERATIONS,
    operations: adsApiOperations,
  },
} as const;

/** The list operations of one API, bound to a destination. */
export type ListOperations = Pick<
  DestinationConnector,
  'checkAccess' | 'ensureAudience' | 'addMembers' | 'removeMembers' | 'checkJob'
>;

/** Google Customer Match, through the Data Manager API or (api: ADS_API) the Google Ads API. */
export function createGoogleConnector(config: GoogleConfig, credentials: GoogleCredentials): DestinationConnector {
  const api = APIS[config.api];
  const root = (config.baseUrl ?? api.baseUrl).replace(/\/+$/, '');
  const account = `${ACCOUNT_LABELS[config.operatingAccount.accountType]} ${config.operatingAccount.accountId}`;
  let headers: Record<string, string> = {};
  if (config.api === 'ADS_API') {
    if (!credentials.developerToken) {
      throw new DestinationError(
        'The Google Ads API needs a developer token: add developerToken to the credentials, or use the Data Manager API',
        { platform: Platform.GOOGLE, retryable: false },
      );
    }
    headers = {
      'developer-token': credentials.developerToken,
      ...(config.loginAccount ? { 'login-customer-id': config.loginAccount.accountId } : {}),
    };
  }
  const call = googleApiClient({
    apiUrl: config.api === 'ADS_API' ? `${root}/${config.adsApiVersion}` : `${root}/v1`,
    tokens: googleAccessTokens(credentials, config.tokenUrl, api.scope),
    headers,
    errors: { api: api.name, account, secrets: secretsOf(credentials) },
  });

  return {
    platform: Platform.GOOGLE,
    maxBatchSize: api.maxBatchSize,
    destinationFields: GOOGLE_FIELDS,

    encode(contact, mapping) {
      if (mixesMobileIdsWithContacts(mapping)) {
        throw new DestinationError(
          'A Google Customer Match list takes either contact details or mobile ids: map MOBILE_ID alone, or leave it out',
          { platform: Platform.GOOGLE, retryable: false },
        );
      }
      return encodeContact(contact, mapping);
    },

    ...api.operations(config, call, account),
  };
}
