import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type ContactIdentity,
  type DestinationConnector,
  type EncodedIdentifiers,
  type FieldMapping,
} from '../destination.js';
import { encodeByRule, mappingEncoder, type FieldRule } from '../encoding.js';
import { ADS_API_MAX_OPERATIONS, adsApiOperations } from './ads-api.js';
import { googleApiClient } from './client.js';
import { DATA_MANAGER_MAX_MEMBERS, dataManagerOperations } from './data-manager.js';
import { ADS_SCOPE, DATA_MANAGER_SCOPE, googleAccessTokens, secretsOf, type GoogleCredentials } from './oauth.js';
import { GOOGLE_API_BASE_URLS, GOOGLE_FIELDS, missingDeveloperToken, type GoogleConfig, type GoogleField, type ProductAccount } from './settings.js';

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

const lowercaseName = (value: string) => value.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim() || null;
const withoutPunctuation = (value: string) => lowercaseName(value.replace(/\p{P}/gu, ''));

/** The name rules of each API. Letters keep their accents, composed (NFC), so that a name stored
 * decomposed hashes the same; runs of spaces become one.
 * - Data Manager AddressInfo: given and family names "all lowercase, with no punctuation, no leading
 *   or trailing whitespace, and hashed as SHA-256", so d'Angelo is dangelo and Jean-Luc jeanluc
 *   (https://developers.google.com/data-manager/api/reference/rest/v1/UserData, checked 2026-12-07).
 * - Google Ads API OfflineUserAddressInfo: the first name "Lowercase all characters; Remove any extra
 *   spaces before, after, and in between", the last name "lower case only and no punctuation"
 *   (https://developers.google.com/google-ads/api/reference/rpc/v25/OfflineUserAddressInfo, the same
 *   in v23 to v25, checked 2026-12-07). */
const NAME_RULES = {
  DATA_MANAGER: { FIRST_NAME: withoutPunctuation, LAST_NAME: withoutPunctuation },
  ADS_API: { FIRST_NAME: lowercaseName, LAST_NAME: withoutPunctuation },
} as const;

function fieldRules(api: GoogleConfig['api']): Record<GoogleField, FieldRule> {
  return {
    EMAIL: { normalize: normalizeEmail, hashed: true },
    PHONE: { normalize: normalizePhone, hashed: true },
    FIRST_NAME: { normalize: NAME_RULES[api].FIRST_NAME, hashed: true },
    LAST_NAME: { normalize: NAME_RULES[api].LAST_NAME, hashed: true },
    COUNTRY: { normalize: (value) => (/^[a-z]{2}$/i.test(value.trim()) ? value.trim().toUpperCase() : null), hashed: false },
    ZIP: { normalize: (value) => value.trim() || null, hashed: false },
    MOBILE_ID: { normalize: (value) => (MOBILE_ID.test(value.trim()) ? value.trim() : null), hashed: false },
  };
}

/** Encodes a contact by one API's rules: an address only when all four of its parts are usable. */
function contactEncoder(api: GoogleConfig['api']) {
  const rules = fieldRules(api);
  const encodeMappedFields = mappingEncoder({
    fields: GOOGLE_FIELDS,
    encodeValue: (field, raw) => encodeByRule(rules[field], raw),
    unknownField: (field) => `Google has no field "${field}"; map to one of ${GOOGLE_FIELDS.join(', ')}`,
  });
  return (contact: ContactIdentity, mapping: readonly FieldMapping[]): EncodedIdentifiers | null => {
    const identifiers = encodeMappedFields(contact, mapping);
    if (!identifiers) return null;
    if (!ADDRESS_FIELDS.every((field) => identifiers[field] !== undefined)) {
      for (const field of ADDRESS_FIELDS) delete identifiers[field];
    }
    return Object.keys(identifiers).length > 0 ? identifiers : null;
  };
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
    baseUrl: GOOGLE_API_BASE_URLS.DATA_MANAGER,
    scope: DATA_MANAGER_SCOPE,
    maxBatchSize: DATA_MANAGER_MAX_MEMBERS,
    operations: dataManagerOperations,
  },
  ADS_API: {
    name: 'the Google Ads API',
    baseUrl: GOOGLE_API_BASE_URLS.ADS_API,
    scope: ADS_SCOPE,
    maxBatchSize: ADS_API_MAX_OPERATIONS,
    operations: adsApiOperations,
  },
} as const;

/** Google Customer Match, through the Data Manager API or (api: ADS_API) the Google Ads API. */
export function createGoogleConnector(config: GoogleConfig, credentials: GoogleCredentials): DestinationConnector {
  const api = APIS[config.api];
  const root = (config.baseUrl ?? api.baseUrl).replace(/\/+$/, '');
  const account = `${ACCOUNT_LABELS[config.operatingAccount.accountType]} ${config.operatingAccount.accountId}`;
  const encodeContact = contactEncoder(config.api);
  let headers: Record<string, string> = {};
  if (config.api === 'ADS_API') {
    const missing = missingDeveloperToken(config, credentials);
    if (missing || !credentials.developerToken) {
      throw new DestinationError(`Google: ${missing}`, { platform: Platform.GOOGLE, retryable: false });
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
