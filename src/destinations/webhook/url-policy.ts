import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Whether webhooks may target private networks (ALLOW_PRIVATE_WEBHOOK_URLS). */
export interface WebhookUrlPolicy {
  allowPrivate: boolean;
}

let processPolicy: WebhookUrlPolicy = { allowPrivate: false };

/** Set by the app factory from the configuration; private addresses are refused until then. */
export function setWebhookUrlPolicy(policy: WebhookUrlPolicy): void {
  processPolicy = policy;
}

export function webhookUrlPolicy(): WebhookUrlPolicy {
  return processPolicy;
}

function blockList(subnets: string[]): BlockList {
  const list = new BlockList();
  for (const subnet of subnets) {
    const [address = '', prefix] = subnet.split('/');
    list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

// IPv4 rules also match IPv4-mapped IPv6 addresses (::ffff:10.0.0.1).
const LOOPBACK = blockList(['127.0.0.0/8', '::1/128']);
const NOT_PUBLIC = blockList([
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8',
  '100.64.0.0/10', // carrier-grade NAT
  '169.254.0.0/16', // link-local, cloud metadata services
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/3', // multicast, reserved, broadcast
  '::/96', // unspecified and IPv4-compatible
  'fc00::/7', // unique local
  'fe80::/10', // link-local
  'ff00::/8', // multicast
]);

type AddressKind = 'loopback' | 'private' | 'public' | 'name';

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

function addressKind(host: string): AddressKind {
  const version = isIP(host);
  if (version === 0) return host === 'localhost' || host.endsWith('.localhost') ? 'loopback' : 'name';
  const type = version === 4 ? 'ipv4' : 'ipv6';
  if (LOOPBACK.check(host, type)) return 'loopback';
  return NOT_PUBLIC.check(host, type) ? 'private' : 'public';
}

/**
 * Why `value` cannot be a webhook URL under `policy`, or null when it can: https only, no user
 * name or password, and no private, loopback or link-local host unless the policy allows them —
 * and then plain http only on loopback.
 */
export function webhookUrlProblem(value: string, policy: WebhookUrlPolicy): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https URL';
  }
  if (url.username !== '' || url.password !== '') {
    return 'must not contain a user name or password: send secrets as headers, in the credentials';
  }
  const kind = addressKind(hostOf(url));
  if (url.protocol === 'http:') {
    if (!policy.allowPrivate || kind !== 'loopback') {
      return 'must use https (plain http is allowed only for loopback addresses, when the operator allows private webhook URLs)';
    }
  } else if (url.protocol !== 'https:') {
    return 'must use https';
  }
  if (!policy.allowPrivate && (kind === 'loopback' || kind === 'private')) {
    return 'must not point to a private, loopback or link-local address (the operator can allow them with ALLOW_PRIVATE_WEBHOOK_URLS=true)';
  }
  return null;
}

/**
 * Resolves the URL's host and tells whether it leads somewhere the policy forbids: a public name
 * may resolve to a private address. Throws what the resolver throws when the name does not resolve.
 */
export async function resolvesToForbiddenAddress(url: URL, policy: WebhookUrlPolicy): Promise<boolean> {
  if (policy.allowPrivate) return false;
  const addresses = await lookup(hostOf(url), { all: true });
  return addresses.some(({ address }) => addressKind(address) !== 'public');
}
