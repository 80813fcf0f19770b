import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addressKind,
  guardedAgent,
  isForbiddenAddress,
  outboundFetch,
  platformUrlProblem,
  setAddressPolicy,
  urlProblem,
  type AddressPolicy,
} from '../../src/infra/address-policy.js';
import { ConfigError, loadConfig } from '../../src/infra/config.js';
import { PRIVATE_DNS_ANSWERS, PRIVATE_HOSTS, PUBLIC_HOSTS, disguisedUrls } from '../support/hostile-inputs.js';

const STRICT: AddressPolicy = { allowPrivate: false, allowCustomPlatformUrls: false };
const PRIVATE_ALLOWED: AddressPolicy = { allowPrivate: true, allowCustomPlatformUrls: false };
const CUSTOM_ALLOWED: AddressPolicy = { allowPrivate: false, allowCustomPlatformUrls: true };
const OPEN: AddressPolicy = { allowPrivate: true, allowCustomPlatformUrls: true };

describe('addressKind', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['::ffff:0:7f00:1', 'loopback'],
    ['10.0.0.5', 'private'],
    ['169.254.169.254', 'private'],
    ['64:ff9b::a9fe:a9fe', 'private'],
    ['64:ff9b:1::808:808', 'private'],
    ['2002:7f00:1::', 'private'],
    ['2002:5db8:d822::', 'private'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'private'],
    ['100::1', 'private'],
    ['::7f00:1', 'private'],
    ['4000::1', 'private'],
    ['93.184.216.34', 'public'],
    ['2606:2800:220:1:248:1893:25c8:1946', 'public'],
    ['::ffff:93.184.216.34', 'public'],
    // A DNS64 network maps every IPv4 host into 64:ff9b::/96: its public hosts stay reachable.
    ['64:ff9b::5db8:d822', 'public'],
  ])('%s is %s', (address, kind) => {
    expect(addressKind(address)).toBe(kind);
  });
});

describe('urlProblem', () => {
  it.each(PUBLIC_HOSTS.flatMap((host) => [`https://${host}/hook`, `https://${host}/a?b=c#d`]))('accepts %s', (url) => {
    expect(urlProblem(url, STRICT)).toBeNull();
  });

  it.each(PRIVATE_HOSTS.flatMap(disguisedUrls))('refuses %s by default', (url) => {
    expect(urlProblem(url, STRICT)).toMatch(/private, loopback or link-local|must use https|user name or password/);
  });

  it.each([
    ['http://hooks.example.com/a', /must use https/],
    ['ftp://hooks.example.com/a', /must use https/],
    ['javascript:alert(1)', /must use https/],
    ['hooks.example.com/a', /absolute https URL/],
    ['//hooks.example.com/a', /absolute https URL/],
    ['https://user:secret@hooks.example.com/a', /user name or password/],
    ['https://hooks.example.com/a\r\nX-Injected: 1', /spaces or control characters/],
    ['https://hooks.example.com/\u0000', /spaces or control characters/],
    [`https://hooks.example.com/${'a'.repeat(2048)}`, /at most 2048 characters/],
  ])('refuses %j', (url, problem) => {
    expect(urlProblem(url, OPEN)).toMatch(problem);
  });

  it.each(['http://127.0.0.1:8080/a', 'http://localhost:3000/a', 'http://[::1]:8080/a', 'https://10.1.2.3/a', 'https://[fd00::1]/a'])(
    'accepts %s when private URLs are allowed',
    (url) => {
      expect(urlProblem(url, PRIVATE_ALLOWED)).toBeNull();
    },
  );

  it.each(['http://10.1.2.3/a', 'http://hooks.example.com/a', 'http://[fd00::1]/a'])(
    'still refuses plain http off loopback when private URLs are allowed: %s',
    (url) => {
      expect(urlProblem(url, PRIVATE_ALLOWED)).toMatch(/must use https/);
    },
  );
});

describe('platformUrlProblem', () => {
  const META = ['https://graph.facebook.com'];

  it('accepts the platform’s own URL under any policy, with or without a final slash', () => {
    for (const policy of [STRICT, PRIVATE_ALLOWED, CUSTOM_ALLOWED, OPEN]) {
      expect(platformUrlProblem('https://graph.facebook.com', META, policy)).toBeNull();
      expect(platformUrlProblem('https://graph.facebook.com/', META, policy)).toBeNull();
    }
  });

  it.each(['https://graph.example.com', 'http://127.0.0.1:4000', 'https://169.254.169.254/latest', 'https://graph.facebook.com.evil.example'])(
    'refuses %s unless the operator allows custom platform URLs, naming the setting',
    (url) => {
      expect(platformUrlProblem(url, META, STRICT)).toMatch(/can only be https:\/\/graph\.facebook\.com.*ALLOW_CUSTOM_PLATFORM_URLS=true/);
      expect(platformUrlProblem(url, META, PRIVATE_ALLOWED)).toMatch(/ALLOW_CUSTOM_PLATFORM_URLS=true/);
    },
  );

  it('applies the private-address rules to custom URLs unless private URLs are allowed too', () => {
    expect(platformUrlProblem('https://graph.example.com', META, CUSTOM_ALLOWED)).toBeNull();
    for (const url of PRIVATE_HOSTS.flatMap(disguisedUrls)) {
      expect(platformUrlProblem(url, META, CUSTOM_ALLOWED), url).not.toBeNull();
    }
    expect(platformUrlProblem('http://127.0.0.1:4000', META, OPEN)).toBeNull();
  });
});

describe('configuration', () => {
  it('refuses private addresses and custom platform URLs unless told otherwise', () => {
    expect(loadConfig({})).toMatchObject({ ALLOW_PRIVATE_URLS: false, ALLOW_CUSTOM_PLATFORM_URLS: false });
    expect(loadConfig({ ALLOW_PRIVATE_URLS: 'true', ALLOW_CUSTOM_PLATFORM_URLS: 'true' })).toMatchObject({
      ALLOW_PRIVATE_URLS: true,
      ALLOW_CUSTOM_PLATFORM_URLS: true,
    });
    expect(() => loadConfig({ ALLOW_PRIVATE_URLS: 'yes' })).toThrow(/ALLOW_PRIVATE_URLS/);
    expect(() => loadConfig({ ALLOW_CUSTOM_PLATFORM_URLS: '1' })).toThrow(/ALLOW_CUSTOM_PLATFORM_URLS/);
  });

  it('still reads ALLOW_PRIVATE_WEBHOOK_URLS, the former name, and refuses the two names saying different things', () => {
    expect(loadConfig({ ALLOW_PRIVATE_WEBHOOK_URLS: 'true' }).ALLOW_PRIVATE_URLS).toBe(true);
    expect(loadConfig({ ALLOW_PRIVATE_WEBHOOK_URLS: 'false' }).ALLOW_PRIVATE_URLS).toBe(false);
    expect(loadConfig({ ALLOW_PRIVATE_WEBHOOK_URLS: 'true', ALLOW_PRIVATE_URLS: 'true' }).ALLOW_PRIVATE_URLS).toBe(true);
    expect(() => loadConfig({ ALLOW_PRIVATE_WEBHOOK_URLS: 'true', ALLOW_PRIVATE_URLS: 'false' })).toThrow(ConfigError);
    expect(() => loadConfig({ ALLOW_PRIVATE_WEBHOOK_URLS: 'yes' })).toThrow(/ALLOW_PRIVATE_WEBHOOK_URLS/);
  });
});

describe('on every connection', () => {
  let server: Server;
  let port: number;
  const received: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      received.push(request);
      response.end('reached');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => {
    received.length = 0;
    setAddressPolicy(STRICT);
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  /** A resolver that gives every name the `answers`, as a hostile DNS server would. */
  const resolvingTo = (answers: string[]) =>
    ((_host: string, _options: object, callback: (error: null, addresses: { address: string; family: number }[]) => void) =>
      callback(null, answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))) as never;

  it.each(['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]'])(
    'refuses to connect to %s, a saved URL’s host, once private addresses are not allowed',
    async (host) => {
      setAddressPolicy(STRICT);
      const error = await outboundFetch(`http://${host}:${port}/`).catch((e: unknown) => e);
      expect(isForbiddenAddress(error)).toBe(true);
      expect(received).toEqual([]);
    },
  );

  it('connects to loopback when private addresses are allowed', async () => {
    setAddressPolicy(PRIVATE_ALLOWED);
    const response = await outboundFetch(`http://127.0.0.1:${port}/`);
    expect(await response.text()).toBe('reached');
  });

  it.each(PRIVATE_DNS_ANSWERS)('refuses a public-looking name that resolves to %s', async (answer) => {
    setAddressPolicy(STRICT);
    const agent = guardedAgent(resolvingTo([answer]));
    const error = await fetch(`http://hooks.example.com:${port}/`, { dispatcher: agent } as RequestInit).catch((e: unknown) => e);
    expect(isForbiddenAddress(error)).toBe(true);
    expect(received).toEqual([]);
    await agent.close();
  });

  it('refuses a name when any of its answers is private, since the socket may try each', async () => {
    setAddressPolicy(STRICT);
    const agent = guardedAgent(resolvingTo(['93.184.216.34', '127.0.0.1']));
    const error = await fetch(`http://hooks.example.com:${port}/`, { dispatcher: agent } as RequestInit).catch((e: unknown) => e);
    expect(isForbiddenAddress(error)).toBe(true);
    await agent.close();
  });

  it('connects a name to the address DNS gave when the policy allows it', async () => {
    setAddressPolicy(PRIVATE_ALLOWED);
    const agent = guardedAgent(resolvingTo(['127.0.0.1']));
    const response = await fetch(`http://hooks.example.com:${port}/`, { dispatcher: agent } as RequestInit);
    expect(await response.text()).toBe('reached');
    expect(received.map((request) => request.headers.host)).toEqual([`hooks.example.com:${port}`]);
    await agent.close();
  });
});
