import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_QUOTED_CHARS, quoteForeignText } from '../../src/destinations/foreign-text.js';
import { platformSpec } from '../../src/destinations/registry.js';
import type { Platform } from '../../src/generated/prisma/enums.js';
import { rejection, useLoopbackFakes } from '../support/connectors.js';

// A server that is no platform — an internal service a destination's baseUrl was pointed at — answers
// whatever the test sets. The gateway may quote the fields a platform documents, trimmed, and nothing else.

useLoopbackFakes();

const MARKER = 'INTERNAL-SERVICE-BODY-7f3a';
let reply: { status: number; contentType: string; body: string };
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    response.writeHead(reply.status, { 'content-type': reply.contentType }).end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const TOKEN = 'access-token-0123456789';
const PLATFORMS: { platform: Platform; config: Record<string, unknown>; credentials: Record<string, unknown>; documented: (message: string) => unknown }[] = [
  {
    platform: 'META',
    config: { adAccountId: 'act_9' },
    credentials: { accessToken: TOKEN },
    documented: (message) => ({ error: { message, code: 100, fbtrace_id: 'A1b2' } }),
  },
  {
    platform: 'LINKEDIN',
    config: { adAccountId: '9' },
    credentials: { accessToken: TOKEN },
    documented: (message) => ({ status: 400, code: 'INVALID', message }),
  },
  {
    platform: 'X',
    config: { accountId: 'abc9' },
    credentials: { consumerKey: 'ck', consumerSecret: 'cs', accessToken: TOKEN, accessTokenSecret: 'ats' },
    documented: (message) => ({ errors: [{ code: 'INVALID_PARAMETER', message }] }),
  },
  {
    platform: 'GOOGLE',
    config: {
      operatingAccount: { accountId: '123-456-7890' },
      consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
      customerMatchTermsAccepted: true,
    },
    credentials: { accessToken: TOKEN },
    documented: (message) => ({ error: { code: 400, message, status: 'INVALID_ARGUMENT' } }),
  },
];

function connectorOf(platform: (typeof PLATFORMS)[number]) {
  const spec = platformSpec(platform.platform);
  return spec.create(spec.configSchema.parse({ ...platform.config, baseUrl }), spec.credentialsSchema.parse(platform.credentials));
}

describe.each(PLATFORMS)('$platform, pointed at a service that is not the platform', (platform) => {
  it.each([
    ['an HTML page', 'text/html', `<html><body><h1>Admin console</h1><pre>${MARKER}</pre></body></html>`],
    ['plain text', 'text/plain', `root:x:0:0:${MARKER}`],
    ['JSON of another shape', 'application/json', JSON.stringify({ detail: MARKER, message: { text: MARKER }, errors: MARKER })],
    ['cloud metadata', 'application/json', JSON.stringify({ AccessKeyId: MARKER, SecretAccessKey: MARKER, Token: MARKER })],
  ])('never quotes the body of %s', async (_kind, contentType, body) => {
    reply = { status: 400, contentType, body };
    const error = await rejection(connectorOf(platform).checkAccess());
    expect(error.message).not.toContain(MARKER);
    expect(error.message).not.toContain('Admin console');
  });

  it('quotes a documented error message only trimmed: one line, at most 200 characters, secrets blanked', async () => {
    const message = `first line\n\tsecond ${TOKEN}\r\n${MARKER.repeat(400)}`;
    reply = { status: 400, contentType: 'application/json', body: JSON.stringify(platform.documented(message)) };
    const error = await rejection(connectorOf(platform).checkAccess());
    expect(error.message).toContain('first line second [redacted]');
    expect(error.message).not.toMatch(/[\r\n\t]/);
    expect(error.message).not.toContain(TOKEN);
    expect(error.message).not.toContain(MARKER.repeat(8));
    expect(error.message.length).toBeLessThan(MAX_QUOTED_CHARS + 200);
  });
});

describe('quoteForeignText', () => {
  it('blanks secrets longest first, makes control characters and whitespace one space, and cuts at 200 characters', () => {
    expect(quoteForeignText('a\u0000b\u001b[31m  c\n\n d', [])).toBe('a b [31m c d');
    expect(quoteForeignText('token abcdef and abc', ['abc', 'abcdef'])).toBe('token [redacted] and [redacted]');
    const long = quoteForeignText('🙂'.repeat(500));
    expect([...long]).toHaveLength(MAX_QUOTED_CHARS);
    expect(long.endsWith('…')).toBe(true);
    expect(quoteForeignText('x'.repeat(MAX_QUOTED_CHARS))).toBe('x'.repeat(MAX_QUOTED_CHARS));
  });
});
