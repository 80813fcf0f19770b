import { SIGNING_SECRET_LENGTH } from '../destinations/webhook/signature.js';
import { builder } from './builder.js';
import { ValidationError, type FieldIssue } from './errors.js';

// The typed, write-only secrets of a destination: one input per platform. Stored encrypted, never returned
// (Destination.credentialsConfigured and credentialsHint say whether and which are stored).

const MetaCredentialsInput = builder.inputType('MetaCredentialsInput', {
  description: 'The secrets of a Meta destination.',
  fields: (t) => ({
    accessToken: t.string({ required: true, description: 'A system-user or user access token with the ads_management permission.' }),
  }),
});

const GoogleCredentialsInput = builder.inputType('GoogleCredentialsInput', {
  description:
    'The secrets of a Google destination: either `accessToken`, or `clientId`, `clientSecret` and `refreshToken` of an ' +
    'OAuth client (the gateway then renews the access token itself); with `developerToken` for api: ADS_API.',
  fields: (t) => ({
    accessToken: t.string({ required: false, description: 'An OAuth access token (it expires after about an hour).' }),
    clientId: t.string({ required: false, description: "The OAuth client's id." }),
    clientSecret: t.string({ required: false, description: "The OAuth client's secret." }),
    refreshToken: t.string({ required: false, description: 'A refresh token the Google user granted the OAuth client.' }),
    developerToken: t.string({
      required: false,
      description: 'The Google Ads API developer token: required with api: ADS_API, not used by the Data Manager API.',
    }),
  }),
});

const LinkedInCredentialsInput = builder.inputType('LinkedInCredentialsInput', {
  description: 'The secrets of a LinkedIn destination.',
  fields: (t) => ({
    accessToken: t.string({ required: true, description: 'An access token of a member whose role on the ad account is above Viewer, through an app granted rw_dmp_segments.' }),
  }),
});

const XCredentialsInput = builder.inputType('XCredentialsInput', {
  description: "The secrets of an X destination (OAuth 1.0a): the app's consumer key pair and the connected user's access token pair.",
  fields: (t) => ({
    consumerKey: t.string({ required: true, description: "The app's consumer (API) key." }),
    consumerSecret: t.string({ required: true, description: "The app's consumer (API) secret." }),
    accessToken: t.string({ required: true, description: "The connected user's access token." }),
    accessTokenSecret: t.string({ required: true, description: "The connected user's access token secret." }),
  }),
});

const WebhookHeaderInput = builder.inputType('WebhookHeaderInput', {
  description: 'An HTTP header sent with every request to a webhook.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'The header name, e.g. `Authorization`; the gateway\'s own (x-signature, content-type…) cannot be replaced.' }),
    value: t.string({ required: true, description: 'The value: printable ASCII, at most 8,192 characters.' }),
  }),
});

const WebhookCredentialsInput = builder.inputType('WebhookCredentialsInput', {
  description: 'The secrets of a webhook destination.',
  fields: (t) => ({
    signingSecret: t.string({
      required: true,
      description: `The shared secret each request is signed with (x-signature, HMAC-SHA256), ${SIGNING_SECRET_LENGTH.min}–${SIGNING_SECRET_LENGTH.max} characters, e.g. the output of \`openssl rand -hex 32\`.`,
    }),
    headers: t.field({
      type: [WebhookHeaderInput],
      required: false,
      description: "Headers sent with every request, for the receiver's own check (e.g. `Authorization: Bearer …`); at most 20, each name once.",
    }),
  }),
});

export const DestinationCredentialsInput = builder.inputType('DestinationCredentialsInput', {
  description:
    "The secrets of a destination: set exactly one field, the one of its platform. Stored encrypted and never returned.",
  isOneOf: true,
  fields: (t) => ({
    meta: t.field({ type: MetaCredentialsInput, required: false, description: 'A Meta destination.' }),
    google: t.field({ type: GoogleCredentialsInput, required: false, description: 'A Google destination.' }),
    linkedin: t.field({ type: LinkedInCredentialsInput, required: false, description: 'A LinkedIn destination.' }),
    x: t.field({ type: XCredentialsInput, required: false, description: 'An X destination.' }),
    webhook: t.field({ type: WebhookCredentialsInput, required: false, description: 'A webhook destination.' }),
  }),
});

/** Header names that would reach the prototype of the record the connector reads the headers into. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The credentials as the platform's connector reads them, and where each of its issue paths is in the input.
 * GraphQL has no maps, so webhook headers are a list of name and value here and a record in the connector:
 * a header's issues point at its place in the list, and a name given twice is refused instead of one value
 * silently replacing the other.
 */
export function connectorCredentials(
  member: string,
  settings: Record<string, unknown>,
): { credentials: Record<string, unknown>; inputPath(issuePath: readonly PropertyKey[]): string[] } {
  const identity = { credentials: settings, inputPath: (path: readonly PropertyKey[]) => path.map(String) };
  if (member !== 'webhook' || !Array.isArray(settings.headers)) return identity;
  const headers = settings.headers as { name: string; value: string }[];
  const indexByName = new Map<string, number>();
  const issues: FieldIssue[] = [];
  headers.forEach((header, index) => {
    const field = `input.credentials.webhook.headers.${index}.name`;
    const earlier = [...indexByName].find(([name]) => name.toLowerCase() === header.name.toLowerCase());
    if (earlier) issues.push({ field, message: `${header.name} is already given (headers.${earlier[1]}): give each header once` });
    else if (PROTOTYPE_KEYS.has(header.name)) {
      issues.push({ field, message: `"${header.name}" is refused: headers named __proto__, constructor or prototype are not sent` });
    }
    indexByName.set(header.name, index);
  });
  if (issues.length > 0) throw new ValidationError(issues);
  return {
    credentials: { ...settings, headers: Object.fromEntries(headers.map((header) => [header.name, header.value])) },
    inputPath: ([first, name, ...rest]) =>
      first === 'headers' && typeof name === 'string' && indexByName.has(name)
        ? ['headers', String(indexByName.get(name)), ...rest.map(String)]
        : [first, name, ...rest].filter((part) => part !== undefined).map(String),
  };
}
