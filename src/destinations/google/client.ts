import { Platform } from '../../generated/prisma/enums.js';
import { DestinationError } from '../destination.js';
import { outboundFetch } from '../../infra/address-policy.js';
import { parseJson } from '../../infra/json.js';
import type { googleAccessTokens } from './oauth.js';
import { toDestinationError, type ErrorContext } from './rpc-status.js';

const REQUEST_TIMEOUT_MS = 60_000;

export interface GoogleRequest {
  method: 'GET' | 'POST';
  /** Path below the API's versioned root, with its query string. */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Names the list in error messages. */
  listId?: string;
}

export type CallGoogle = (request: GoogleRequest) => Promise<unknown>;

/**
 * JSON calls to one Google API with an OAuth access token. A refused token is exchanged again
 * once (it may have been revoked early); failures become DestinationErrors.
 */
export function googleApiClient(options: {
  apiUrl: string;
  tokens: ReturnType<typeof googleAccessTokens>;
  /** Headers every call carries (the Ads API's developer token). */
  headers?: Record<string, string>;
  errors: Omit<ErrorContext, 'listId'>;
}): CallGoogle {
  async function send(request: GoogleRequest) {
    const response = await outboundFetch(`${options.apiUrl}/${request.path}`, {
      method: request.method,
      headers: {
        authorization: `Bearer ${await options.tokens.get()}`,
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
        ...request.headers,
      },
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { response, text: await response.text() };
  }

  return async (request) => {
    let result: Awaited<ReturnType<typeof send>>;
    try {
      result = await send(request);
      if (result.response.status === 401 && options.tokens.refresh()) result = await send(request);
    } catch (error) {
      if (error instanceof DestinationError) throw error;
      throw new DestinationError('Could not reach Google (network error or timeout); the sync will retry', {
        platform: Platform.GOOGLE,
        retryable: true,
      });
    }
    const json = parseJson(result.text);
    if (!result.response.ok) {
      throw toDestinationError(result.response, json, { ...options.errors, listId: request.listId });
    }
    return json;
  };
}

export function unexpectedResponse(): DestinationError {
  return new DestinationError('Google returned a response this gateway does not understand', {
    platform: Platform.GOOGLE,
    retryable: false,
  });
}
