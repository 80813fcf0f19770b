import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import {
  DestinationError,
  type BatchOutcome,
  type DestinationConnector,
  type EncodedIdentifiers,
  type EncodedMember,
  type UploadSession,
} from '../destination.js';
import { encodeByRule, mappingEncoder, type FieldRule } from '../encoding.js';
import { sha256Hex } from '../hashing.js';
import { isForbiddenAddress, outboundFetch, urlProblem } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';
import { SIGNING_SECRET_LENGTH, signatureHeaders } from './signature.js';

const MAX_WEBHOOK_BATCH_SIZE = 10_000;

export const webhookConfigSchema = z.strictObject(
  {
    url: z.string().superRefine((value, context) => {
      const problem = urlProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    }),
    batchSize: z.number().int().min(1).max(MAX_WEBHOOK_BATCH_SIZE).default(1_000),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown setting ${issue.keys.join(', ')}: the config takes url and batchSize; headers go in the credentials`
        : undefined,
  },
);
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

/** Headers the gateway sets itself: the signature and the framing of the request. */
const GATEWAY_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'host',
  'user-agent',
  'x-signature',
  'x-timestamp',
  'x-delivery-id',
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const webhookCredentialsSchema = z.strictObject({
  signingSecret: z
    .string()
    .min(
      SIGNING_SECRET_LENGTH.min,
      `signingSecret must be at least ${SIGNING_SECRET_LENGTH.min} characters (for example the output of \`openssl rand -hex 32\`)`,
    )
    .max(SIGNING_SECRET_LENGTH.max, `signingSecret must be at most ${SIGNING_SECRET_LENGTH.max} characters`),
  /** Sent with every request, e.g. `{ "Authorization": "Bearer …" }` for the receiver's own check. */
  headers: z
    .record(
      z.string(),
      z
        .string()
        .max(8192, 'must be at most 8192 characters')
        .regex(/^[^\r\n\0]*$/, 'must not contain line breaks')
        // fetch cannot send other characters: every delivery would fail as if the receiver were unreachable.
        .regex(/^[\t\x20-\x7e\r\n\0]*$/, 'must be printable ASCII'),
    )
    .superRefine((headers, context) => {
      const names = Object.keys(headers);
      if (names.length > 20) context.addIssue({ code: 'custom', message: 'at most 20 headers' });
      for (const name of names) {
        if (!HEADER_NAME.test(name)) {
          context.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid HTTP header name` });
        } else if (GATEWAY_HEADERS.has(name.toLowerCase())) {
          context.addIssue({ code: 'custom', path: [name], message: `${name} is set by the gateway and cannot be replaced` });
        }
      }
    })
    .default({}),
});
export type WebhookCredentials = z.infer<typeof webhookCredentialsSchema>;

export const WEBHOOK_FIELDS = [
  'EMAIL_SHA256',
  'PHONE_SHA256',
  'FIRST_NAME_SHA256',
  'LAST_NAME_SHA256',
  'ZIP',
  'COUNTRY',
  'EXTERNAL_ID',
  'MOBILE_AD_ID',
] as const;
type WebhookField = (typeof WEBHOOK_FIELDS)[number];

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_REPLY_BYTES = 1_000_000;
const MAX_EXCERPT_CHARS = 200;
const MAX_INVALID_SAMPLES = 20;
const USER_AGENT = 'audience-sync-gateway';

/** Digits with a leading `+`: stored phones are E.164 already; this only strips formatting. */
function toE164(value: string): string {
  const digits = value.replace(/\D/g, '');
  return digits === '' ? '' : `+${digits}`;
}

const normalizeName = (value: string) => value.normalize('NFC').trim().replace(/\s+/g, ' ').toLowerCase();

/** The normalization documented in the README; `hashed: false` fields are sent as normalized plain text. */
const FIELD_RULES: Record<WebhookField, FieldRule> = {
  EMAIL_SHA256: { normalize: (value) => value.trim().toLowerCase(), hashed: true },
  PHONE_SHA256: { normalize: toE164, hashed: true },
  FIRST_NAME_SHA256: { normalize: normalizeName, hashed: true },
  LAST_NAME_SHA256: { normalize: normalizeName, hashed: true },
  ZIP: { normalize: (value) => value.replace(/\s+/g, '').toUpperCase(), hashed: false },
  COUNTRY: { normalize: (value) => (/^[a-z]{2}$/i.test(value.trim()) ? value.trim().toUpperCase() : ''), hashed: false },
  EXTERNAL_ID: { normalize: (value) => value.trim(), hashed: false },
  MOBILE_AD_ID: { normalize: (value) => value.trim().toLowerCase(), hashed: false },
};

const encodeContact = mappingEncoder({
  fields: WEBHOOK_FIELDS,
  encodeValue: (field, raw) => encodeByRule(FIELD_RULES[field], raw),
  unknownField: (field) => `Webhooks have no field "${field}"; map to one of ${WEBHOOK_FIELDS.join(', ')}`,
});

/** A stable id for an audience the sync did not name on the receiver: a slug of its name. */
function audienceSlug(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 64)
    .replace(/^-+|-+$/g, '');
  return slug || `audience-${sha256Hex(name).slice(0, 12)}`;
}

/** The same UUID for every attempt at one batch of one upload, so receivers can drop repeats. */
function deliveryId(session: UploadSession): string {
  const hex = sha256Hex(`${session.id}:${session.batchSeq}`);
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Retry-After as seconds or an HTTP date, in ms. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

const replySchema = z.object({
  rejected: z
    .array(z.object({ index: z.number().int().nonnegative(), reason: z.string() }))
    .optional(),
});

class ReplyTooLargeError extends Error {}

/** The reply body, refusing to hold more than MAX_REPLY_BYTES of it in memory. */
async function readReply(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
    size += read.value.byteLength;
    if (size > MAX_REPLY_BYTES) {
      await reader?.cancel();
      throw new ReplyTooLargeError();
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type WebhookEvent =
  | { type: 'ping'; id: string }
  | {
      type: 'audience.members.added' | 'audience.members.removed';
      id: string;
      audience: { id: string; name: string | null };
      batch: { session: string; sequence: number; last: boolean; estimatedTotal: number; size: number };
      members: { identifiers: EncodedIdentifiers }[];
    };

export function createWebhookConnector(config: WebhookConfig, credentials: WebhookCredentials): DestinationConnector {
  const url = new URL(config.url);
  /** Names given to ensureAudience, so that batches can carry them. */
  const audienceNames = new Map<string, string>();
  // Longest first, so a secret containing another is hidden whole; short values are too common to hide.
  const secrets = [credentials.signingSecret, ...Object.values(credentials.headers).flatMap((v) => [v, ...v.split(/\s+/)])]
    .filter((secret) => secret.length >= 8)
    .sort((a, b) => b.length - a.length);

  const fail = (message: string, retryable: boolean, extra: { status?: number; retryAfterMs?: number } = {}) =>
    new DestinationError(message, { platform: Platform.WEBHOOK, retryable, ...extra });

  function redact(text: string): string {
    return secrets.reduce((clean, secret) => clean.replaceAll(secret, '[redacted]'), text);
  }

  function excerpt(text: string): string {
    const clean = redact(text).replace(/\s+/g, ' ').trim();
    return clean.length > MAX_EXCERPT_CHARS ? `${clean.slice(0, MAX_EXCERPT_CHARS - 1)}…` : clean;
  }

  function signedHeaders(body: string, id: string): Record<string, string> {
    return {
      ...credentials.headers,
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'x-delivery-id': id,
      ...signatureHeaders(credentials.signingSecret, body),
    };
  }

  function unreachable(): DestinationError {
    return fail(`Could not reach the webhook at ${url.host} (network error or timeout); the sync will retry`, true);
  }

  function toDestinationError(response: Response, text: string): DestinationError {
    const status = response.status;
    if (status === 401 || status === 403) {
      return fail(
        `The webhook refused our signature or credentials (HTTP ${status}) — check the signing secret, and any headers, ` +
          'match what the receiver expects',
        false,
        { status },
      );
    }
    if (status === 408 || status === 429 || status >= 500) {
      const wait = retryAfterMs(response.headers.get('retry-after'));
      const what = status === 429 ? 'is rate-limiting the gateway' : 'had a temporary problem';
      const hint = wait ? ` in about ${Math.ceil(wait / 1000)} s` : '';
      return fail(`The webhook ${what} (HTTP ${status}); the sync will retry${hint}`, true, {
        status,
        ...(wait ? { retryAfterMs: wait } : {}),
      });
    }
    if (status >= 300 && status < 400) {
      return fail(`The webhook answered with a redirect (HTTP ${status}); set the URL it redirects to`, false, { status });
    }
    const detail = excerpt(text);
    return fail(`The webhook rejected the request (HTTP ${status})${detail ? `: ${detail}` : ''}`, false, { status });
  }

  /** POSTs a signed event; returns the reply body of a 2xx answer. */
  async function deliver(event: WebhookEvent): Promise<string> {
    const body = JSON.stringify(event);
    let response: Response;
    let text: string;
    try {
      response = await outboundFetch(url, {
        method: 'POST',
        headers: signedHeaders(body, event.id),
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await readReply(response);
    } catch (error) {
      if (error instanceof ReplyTooLargeError) {
        throw fail('The webhook replied with more than 1 MB; reply with an empty body or a short JSON object', false);
      }
      if (isForbiddenAddress(error)) {
        throw fail(
          `The webhook host ${url.host} is or resolves to a private, loopback or link-local address, which this gateway ` +
            'does not send to — use a public URL',
          false,
        );
      }
      throw unreachable();
    }
    if (response.status < 200 || response.status > 299) throw toDestinationError(response, text);
    return text;
  }

  /** The members a receiver rejected, from a 2xx reply `{ "rejected": [{ "index", "reason" }] }`. */
  function batchOutcome(reply: string, size: number): BatchOutcome {
    const json = parseJson(reply);
    if (typeof json !== 'object' || json === null || !('rejected' in json)) {
      return { invalid: 0, invalidSamples: [] };
    }
    const rejected = replySchema.safeParse(json).data?.rejected;
    const indexes = new Set(rejected?.map((entry) => entry.index));
    if (!rejected || indexes.size !== rejected.length || rejected.some((entry) => entry.index >= size)) {
      throw fail(
        `The webhook's reply has an invalid "rejected" list: it must be [{ "index": n, "reason": "…" }] with distinct ` +
          `indexes of the batch's ${size} members`,
        false,
      );
    }
    return {
      invalid: rejected.length,
      invalidSamples: rejected
        .slice(0, MAX_INVALID_SAMPLES)
        .map((entry) => `member ${entry.index}: ${excerpt(entry.reason)}`),
    };
  }

  async function sendMembers(
    type: 'audience.members.added' | 'audience.members.removed',
    audienceId: string,
    members: EncodedMember[],
    session: UploadSession,
  ): Promise<BatchOutcome> {
    if (members.length > config.batchSize) {
      throw new RangeError(`This webhook takes at most ${config.batchSize} members per request, got ${members.length}`);
    }
    const reply = await deliver({
      type,
      id: deliveryId(session),
      audience: { id: audienceId, name: audienceNames.get(audienceId) ?? null },
      batch: {
        session: session.id,
        sequence: session.batchSeq,
        last: session.lastBatch,
        estimatedTotal: session.estimatedTotal,
        size: members.length,
      },
      members: members.map((member) => ({ identifiers: member.identifiers })),
    });
    return batchOutcome(reply, members.length);
  }

  return {
    platform: Platform.WEBHOOK,
    maxBatchSize: config.batchSize,
    destinationFields: WEBHOOK_FIELDS,

    encode: encodeContact,

    async checkAccess() {
      await deliver({ type: 'ping', id: randomUUID() });
      return `The webhook at ${url.host} accepted a signed ping`;
    },

    async ensureAudience({ platformAudienceId, name }) {
      const id = platformAudienceId ?? audienceSlug(name);
      audienceNames.set(id, name);
      return id;
    },

    addMembers: (audienceId, members, session) => sendMembers('audience.members.added', audienceId, members, session),
    removeMembers: (audienceId, members, session) =>
      sendMembers('audience.members.removed', audienceId, members, session),
  };
}
