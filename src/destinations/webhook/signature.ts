import { createHmac } from 'node:crypto';

/** Shortest and longest shared secret accepted for signing (webhook destinations, task notifications). */
export const SIGNING_SECRET_LENGTH = { min: 32, max: 1024 } as const;

/**
 * The headers that let a receiver trust a POST from the gateway: `x-timestamp` (Unix seconds) and
 * `x-signature`, `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the shared secret.
 * Receivers recompute it over the raw body and refuse old timestamps (replays).
 */
export function signatureHeaders(secret: string, body: string): { 'x-timestamp': string; 'x-signature': string } {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return { 'x-timestamp': timestamp, 'x-signature': `sha256=${signature}` };
}
