import { z } from 'zod';
import { Platform } from '../../generated/prisma/enums.js';
import { DestinationError } from '../destination.js';
import { sha256Hex } from '../hashing.js';
import { outboundFetch } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';

export const DATA_MANAGER_SCOPE = 'https://www.googleapis.com/auth/datamanager';
export const ADS_SCOPE = 'https://www.googleapis.com/auth/adwords';

/** Only the Google Ads API (config api: ADS_API) takes a developer token. */
const developerToken = z.string().min(1).optional();

export const googleCredentialsSchema = z.union(
  [
    z.object({ accessToken: z.string().min(1), developerToken }),
    z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1), refreshToken: z.string().min(1), developerToken }),
  ],
  {
    error:
      'give either { accessToken } or { clientId, clientSecret, refreshToken } of an OAuth client ' +
      '(with developerToken for the Google Ads API)',
  },
);
export type GoogleCredentials = z.infer<typeof googleCredentialsSchema>;

/** The secrets a message must never show. */
export function secretsOf(credentials: GoogleCredentials): string[] {
  const secrets = 'refreshToken' in credentials ? [credentials.refreshToken, credentials.clientSecret] : [credentials.accessToken];
  return credentials.developerToken ? [...secrets, credentials.developerToken] : secrets;
}

/** A token is refreshed this long before Google says it expires, so no request carries one that
 * expires in flight. */
const EXPIRY_MARGIN_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** Access tokens by OAuth client and refresh token (hashed): shared by every connector of the
 * process, so runs and checks do not each exchange the refresh token. */
const tokenCache = new Map<string, Promise<CachedToken>>();

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  scope: z.string().optional(),
});
const tokenErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

function credentialsError(message: string, status?: number, code?: string): DestinationError {
  return new DestinationError(message, { platform: Platform.GOOGLE, status, code, retryable: false });
}

async function exchangeRefreshToken(
  tokenUrl: string,
  credentials: { clientId: string; clientSecret: string; refreshToken: string },
  requiredScope: string,
): Promise<CachedToken> {
  let response: Response;
  let text: string;
  try {
    response = await outboundFetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: credentials.clientId,
        client_secret: credentials.clientSecret,
        refresh_token: credentials.refreshToken,
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await response.text();
  } catch {
    throw new DestinationError('Could not reach Google sign-in (network error or timeout); the sync will retry', {
      platform: Platform.GOOGLE,
      retryable: true,
    });
  }
  const json = parseJson(text);
  if (!response.ok) {
    const error = tokenErrorSchema.safeParse(json).data?.error;
    if (response.status === 429 || response.status >= 500) {
      throw new DestinationError('Google sign-in had a temporary problem; the sync will retry', {
        platform: Platform.GOOGLE,
        status: response.status,
        retryable: true,
      });
    }
    if (error === 'invalid_client' || error === 'unauthorized_client') {
      throw credentialsError(
        'Google rejected the credentials: the OAuth client id or secret is wrong — reconnect the destination',
        response.status,
        error,
      );
    }
    throw credentialsError(
      'Google rejected the credentials: the refresh token has expired or been revoked — reconnect the destination',
      response.status,
      error,
    );
  }
  const token = tokenResponseSchema.safeParse(json);
  if (!token.success) {
    throw new DestinationError('Google sign-in returned a response this gateway does not understand', {
      platform: Platform.GOOGLE,
      retryable: false,
    });
  }
  const { scope } = token.data;
  if (scope !== undefined && !scope.split(' ').includes(requiredScope)) {
    throw credentialsError(
      `Google rejected the credentials: they were not granted the scope ${requiredScope} — reconnect the destination and allow it`,
    );
  }
  return { value: token.data.access_token, expiresAt: Date.now() + token.data.expires_in * 1000 };
}

/**
 * Gives the access token to send: the one in the credentials, or one exchanged for the refresh
 * token and cached until shortly before it expires. `refresh()` drops the cached token (Google
 * refused it) and says whether a new one can be had.
 */
export function googleAccessTokens(credentials: GoogleCredentials, tokenUrl: string, requiredScope: string) {
  if (!('refreshToken' in credentials)) {
    return { get: async () => credentials.accessToken, refresh: () => false };
  }
  const key = sha256Hex(JSON.stringify([tokenUrl, credentials.clientId, credentials.refreshToken, requiredScope]));
  return {
    async get(): Promise<string> {
      const cached = await tokenCache.get(key)?.catch(() => undefined);
      if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return cached.value;
      const exchange = exchangeRefreshToken(tokenUrl, credentials, requiredScope);
      tokenCache.set(key, exchange);
      exchange.catch(() => {
        if (tokenCache.get(key) === exchange) tokenCache.delete(key);
      });
      return (await exchange).value;
    },
    refresh(): boolean {
      tokenCache.delete(key);
      return true;
    },
  };
}
