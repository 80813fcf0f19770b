import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';

/**
 * Where the gateway's outbound calls (webhooks, task notifications, platform APIs) may go. Set once
 * by the app factory from the configuration; until then everything private is refused.
 */
export interface AddressPolicy {
  /** ALLOW_PRIVATE_URLS: private, loopback and link-local addresses may be reached (and plain http on loopback). */
  allowPrivate: boolean;
  /** ALLOW_CUSTOM_PLATFORM_URLS: platform destinations may replace their API's URLs (baseUrl, tokenUrl). */
  allowCustomPlatformUrls: boolean;
}

let processPolicy: AddressPolicy = { allowPrivate: false, allowCustomPlatformUrls: false };

export function setAddressPolicy(policy: AddressPolicy): void {
  processPolicy = { ...policy };
}

export function addressPolicy(): AddressPolicy {
  return processPolicy;
}

export type AddressKind = 'loopback' | 'private' | 'public';

// ipaddr.js names the special-purpose ranges of the IANA registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry/, .../iana-ipv6-special-registry/):
// private, CGN, link-local, multicast, documentation, benchmarking, discard, NAT64 (64:ff9b::/96 and the
// local-use 64:ff9b:1::/48), 6to4, Teredo, ULA, IPv4-mapped and -translated… Only plain `unicast` is public.
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');
// The IANA IPv6 Address Space registry (https://www.iana.org/assignments/ipv6-address-space/) allocates
// only 2000::/3 as global unicast: anything else (IPv4-compatible ::/96, fec0::/10, unassigned space) is not public.
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

/** The IPv4 address an IPv6 address reaches through a translator: IPv4-mapped, IPv4-translated
 * (RFC 6145) and the NAT64 well-known prefix (RFC 6052), where a DNS64 network maps every IPv4 host. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const range = address.range();
  const translated = range === 'ipv4Mapped' || range === 'rfc6145' || address.match(NAT64_WELL_KNOWN);
  return translated ? new ipaddr.IPv4(address.toByteArray().slice(12)) : null;
}

function kindOf(address: ipaddr.IPv4 | ipaddr.IPv6): AddressKind {
  if (address.kind() === 'ipv6') {
    const ipv6 = address as ipaddr.IPv6;
    const ipv4 = embeddedIPv4(ipv6);
    if (ipv4) return kindOf(ipv4);
    if (!ipv6.match(GLOBAL_UNICAST) && ipv6.range() !== 'loopback') return 'private';
  }
  const range = address.range();
  return range === 'loopback' ? 'loopback' : range === 'unicast' ? 'public' : 'private';
}

/** What an IP address (in any form Node or the URL parser writes) is; throws for anything else. */
export function addressKind(address: string): AddressKind {
  return kindOf(ipaddr.parse(address));
}

/** A URL's host as an address or a name, without IPv6 brackets or a final dot. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

/** Names that lead to local networks wherever they resolve: `local` (mDNS, RFC 6762), `home.arpa` (RFC 8375),
 * `internal` (reserved by ICANN for private use in 2024, e.g. metadata.google.internal) and `ipv4only.arpa`
 * (RFC 7050, answers with 192.0.0.170). */
const PRIVATE_NAME = /(^|\.)(local|home\.arpa|internal|ipv4only\.arpa)$/;

/** The kind of a host: an IP literal's, loopback for `localhost` names (RFC 6761), private for private-use
 * names, else `name` (resolved when connecting). */
function hostKind(host: string): AddressKind | 'name' {
  if (isIP(host)) return addressKind(host);
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  return PRIVATE_NAME.test(host) ? 'private' : 'name';
}

const MAX_URL_LENGTH = 2048;

const PRIVATE_REFUSED =
  'must not point to a private, loopback or link-local address (the operator can allow them with ALLOW_PRIVATE_URLS=true)';

/**
 * Why `value` cannot be the URL of an outbound call under `policy`, or null when it can: an absolute
 * https URL without a user name or password, whose host is no private, loopback or link-local address
 * unless the policy allows them — and then plain http only on loopback. Names are resolved when connecting.
 */
export function urlProblem(value: string, policy: AddressPolicy = processPolicy): string | null {
  if (value.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  // The URL parser would silently drop or encode them: what is stored must be what is called.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return 'must not contain spaces or control characters';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https URL';
  }
  if (url.username !== '' || url.password !== '') {
    return 'must not contain a user name or password: send secrets as headers, in the credentials';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must use https';
  const kind = url.hostname === '' ? 'name' : hostKind(hostOf(url));
  if (url.protocol === 'http:' && (!policy.allowPrivate || kind !== 'loopback')) {
    return 'must use https (plain http is allowed only for loopback addresses, when the operator allows private URLs)';
  }
  if (!policy.allowPrivate && (kind === 'loopback' || kind === 'private')) return PRIVATE_REFUSED;
  return null;
}

const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/**
 * Why `value` cannot replace a platform's API URL, or null when it can: the platform's own URLs always
 * can; others only when the operator allows custom platform URLs, and then under the rules of `urlProblem`.
 */
export function platformUrlProblem(
  value: string,
  officialUrls: readonly string[],
  policy: AddressPolicy = processPolicy,
): string | null {
  if (officialUrls.some((official) => sameUrl(value, official))) return null;
  if (!policy.allowCustomPlatformUrls) {
    return (
      `can only be ${officialUrls.join(' or ')} on this gateway (leave it out): the operator can allow other ` +
      'endpoints with ALLOW_CUSTOM_PLATFORM_URLS=true'
    );
  }
  return urlProblem(value, policy);
}

/** A connection refused because its host is, or resolves to, an address the policy forbids. */
export class ForbiddenAddressError extends Error {
  override name = 'ForbiddenAddressError';
  constructor(readonly host: string) {
    super(`${host} is, or resolves to, a private, loopback or link-local address, which this gateway does not call`);
  }
}

/** Whether a fetch failed because the address policy refused its connection. */
export function isForbiddenAddress(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ForbiddenAddressError) return true;
  }
  return false;
}

type Lookup = typeof dnsLookup;

/** `dns.lookup` refusing names with any answer the policy forbids (every answer, since the socket may try each). */
function guardedLookup(resolve: Lookup): Lookup {
  const guarded = (hostname: string, options: object, callback: (...args: unknown[]) => void) => {
    resolve(hostname, { ...options, all: true }, (error, answers: LookupAddress[]) => {
      if (error) return callback(error);
      if (!processPolicy.allowPrivate && answers.some(({ address }) => addressKind(address) !== 'public')) {
        return callback(new ForbiddenAddressError(hostname));
      }
      if ((options as { all?: boolean }).all) return callback(null, answers);
      const [first] = answers;
      return first ? callback(null, first.address, first.family) : callback(new ForbiddenAddressError(hostname));
    });
  };
  return guarded as unknown as Lookup;
}

/**
 * An HTTP dispatcher that applies the policy to every connection it opens: IP literals before
 * connecting, names on every DNS answer (a public name may resolve to a private address, and its
 * answers may change between the check when saved and the call). `resolve` is replaceable for tests.
 */
export function guardedAgent(resolve: Lookup = dnsLookup): Agent {
  const connect = buildConnector({ lookup: guardedLookup(resolve) } as buildConnector.BuildOptions);
  return new Agent({
    connect: (options, callback) => {
      const { hostname } = options;
      const kind = hostKind(hostname.toLowerCase().replace(/\.$/, ''));
      if (!processPolicy.allowPrivate && kind !== 'public' && kind !== 'name') {
        callback(new ForbiddenAddressError(hostname), null);
        return;
      }
      connect(options, callback);
    },
  });
}

const outboundAgent = guardedAgent();

/** `fetch` for every call the gateway makes to a URL outside itself, under the address policy. */
export function outboundFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  return fetch(input, { ...init, dispatcher: outboundAgent } as RequestInit);
}
