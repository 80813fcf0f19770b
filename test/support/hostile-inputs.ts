import { encodeGlobalID } from '@pothos/plugin-relay';
import { MALFORMED_INNER_IDS, unknownId } from './global-ids.js';

// Generators of invalid and hostile requests for the fuzz test. Everything is drawn from one seeded
// PRNG, so a seed reproduces a run exactly.

/** A small seeded PRNG (mulberry32) with the helpers the generators need. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)]!;
  }
}

export type NodeType = 'Destination' | 'Audience' | 'AudienceSync' | 'SyncRun' | 'Task';

/** One workspace as the fuzzer knows it: its keys and the global id of one object of each type. */
export interface FuzzWorkspace {
  writeKey: string;
  readKey: string;
  ids: Record<NodeType, string>;
}

/** Who calls: the workspace whose key is sent (if any), and the other one, whose ids are "foreign". */
export interface Caller {
  name: string;
  authorization: string | null;
  /** Whether the key may write: then every mutation it sends must be invalid, or it would change data. */
  canWrite: boolean;
  own: FuzzWorkspace;
  other: FuzzWorkspace;
}

/** A request to send. `tags` name the hostile ingredients, so that findings can be grouped. */
export interface HostileRequest {
  label: string;
  tags: string[];
  /** `http` goes through the gateway's real port instead of yoga.fetch. */
  transport: 'fetch' | 'http';
  method: string;
  headers: Record<string, string>;
  /** Appended to the endpoint, e.g. `?query=…`. */
  search?: string;
  body?: string | Uint8Array;
}

/** A request sent with an id under test (of another workspace, or with a malformed inner id), and the same
 * request with an id that names nothing: the two answers must be the same. */
export interface TwinRequests {
  label: string;
  probe: HostileRequest;
  unknown: HostileRequest;
  /** The two ids, which the responses may echo. */
  ids: [string, string];
}

const NODE_TYPES: NodeType[] = ['Destination', 'Audience', 'AudienceSync', 'SyncRun', 'Task'];

// ---- Values -------------------------------------------------------------------------------------

export const MEGABYTE = 1_000_000;

const PLAIN_TEXT = ['Leads', 'Q3 buyers', 'Newsletter', 'VIP customers', 'Churned 2025', 'a', 'x y z'];

const UNICODE_ODDITIES = [
  '\ud800', // lone high surrogate
  'x\udfffy', // lone low surrogate
  '\u202eevil\u202c', // right-to-left override
  'مرحبا بالعالم', // Arabic, RTL
  '\u200f\u200e\u200b\u2060', // direction marks, zero-width
  '\ufeffBOM',
  '👩‍👩‍👧‍👦🏳️‍🌈🙂',
  'Z̷̧̛̙̟a̸̡̛l̴̢̛g̷̡̛o̶̢̧',
  '\u2028\u2029',
  '\u001b[31mred\u001b[0m\u0007',
  '\uffff\ufffe',
  'ǅǈǋ ﬃ İ ß',
];

/** Strings whose only oddity is a NUL character, which PostgreSQL text cannot hold. */
export const NUL_TEXT = ['\u0000', 'a\u0000b', 'Leads\u0000; DROP TABLE audience'];

export const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE audience; --",
  "1; SELECT pg_sleep(10); --",
  '" OR ""="',
  "') UNION SELECT key_hash, 1 FROM api_key --",
  '$1::text',
  '{"$ne": null}',
  '{"$gt": ""}',
  '{"$where": "sleep(1000)"}',
  '") { id } } mutation { deleteAudienceSync(id: "x") { __typename } } #',
  '{ __schema { types { name } } }',
  '${jndi:ldap://127.0.0.1/a}',
  '{{7*7}}<%= 7*7 %>',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '%00%27%22',
  '\\x00\\u0000',
  '__proto__',
  'constructor.prototype',
  '`id`; $(id)',
];

/** Values of no GraphQL input type the schema expects where a string, an id or an input object goes. */
export const WRONG_TYPES: unknown[] = [123, -1, 1.5, 1e308, true, false, [], [null], [1, 2], { $ne: null }, { $gt: '' }];

export function text(random: Random): string {
  const kind = random.int(4);
  if (kind === 0) return random.pick(PLAIN_TEXT);
  if (kind === 1) return random.pick(UNICODE_ODDITIES);
  if (kind === 2) return random.pick(INJECTIONS);
  return `${random.pick(PLAIN_TEXT)} ${random.pick(UNICODE_ODDITIES)} ${random.pick(INJECTIONS)}`;
}

export function hugeString(random: Random): string {
  return random.pick(['n', '🙂', 'ß', "'", '\\']).repeat(random.pick([256, 2001, 10_000, 100_000, MEGABYTE]));
}

/** Names no mutation accepts: empty, blank, too long (up to 1 MB), or not a string. */
function invalidName(random: Random): unknown {
  return random.pick<() => unknown>([
    () => '',
    () => '   \t\n ',
    () => 'x'.repeat(256),
    () => '🙂'.repeat(256),
    () => hugeString(random),
    () => random.pick(WRONG_TYPES),
  ])();
}

const base64 = (value: string) => Buffer.from(value).toString('base64');

/** An id that is not of the caller's workspace: another workspace's, unknown, malformed or hostile. */
export function foreignOrBadId(random: Random, caller: Caller, type: NodeType): { value: unknown; tag: string } {
  const otherType = random.pick(NODE_TYPES.filter((candidate) => candidate !== type));
  return random.pick<() => { value: unknown; tag: string }>([
    () => ({ value: caller.other.ids[type], tag: 'foreign-id' }),
    () => ({ value: caller.other.ids[type], tag: 'foreign-id' }),
    () => ({ value: unknownId(type), tag: 'unknown-id' }),
    () => ({ value: caller.own.ids[otherType], tag: 'id-of-another-type' }),
    () => ({ value: caller.other.ids[otherType], tag: 'foreign-id-of-another-type' }),
    () => ({ value: encodeGlobalID(type, text(random)), tag: 'global-id-of-hostile-text' }),
    () => ({ value: base64(`${type}:${random.pick(INJECTIONS)}`), tag: 'global-id-of-injection' }),
    () => ({ value: base64(`${type}:${'0'.repeat(36)}`), tag: 'global-id-not-uuid' }),
    () => ({ value: encodeGlobalID(type, random.pick(MALFORMED_INNER_IDS)), tag: 'global-id-not-uuid' }),
    () => ({ value: text(random), tag: 'hostile-text-id' }),
    () => ({ value: hugeString(random), tag: 'huge-id' }),
    () => ({ value: random.pick([0, -1, 2 ** 53, 1.5]), tag: 'numeric-id' }),
    () => ({ value: random.pick([{}, [], true, { $ne: null }]), tag: 'wrong-type-id' }),
    () => ({ value: '', tag: 'empty-id' }),
  ])();
}

// ---- Requests -----------------------------------------------------------------------------------

export const RESULT = '__typename ... on Error { code message } ... on ValidationError { field issues { field message } }';

const MUTATIONS = {
  createAudience: `mutation CreateAudience($input: CreateAudienceInput!) { createAudience(input: $input) { ${RESULT} } }`,
  addAudienceMembers: `mutation AddMembers($audienceId: ID!, $members: [AudienceMemberInput!]!) { addAudienceMembers(audienceId: $audienceId, members: $members) { ${RESULT} } }`,
  removeAudienceMembers: `mutation RemoveMembers($audienceId: ID!, $members: [AudienceMemberInput!]!) { removeAudienceMembers(audienceId: $audienceId, members: $members) { ${RESULT} } }`,
  createDestination: `mutation CreateDestination($input: CreateDestinationInput!) { createDestination(input: $input) { ${RESULT} } }`,
  updateDestination: `mutation UpdateDestination($id: ID!, $input: UpdateDestinationInput!) { updateDestination(id: $id, input: $input) { ${RESULT} } }`,
  deleteDestination: `mutation DeleteDestination($id: ID!) { deleteDestination(id: $id) { ${RESULT} } }`,
  testDestination: `mutation TestDestination($id: ID!) { testDestination(id: $id) { ${RESULT} } }`,
  createAudienceSync: `mutation CreateSync($input: CreateAudienceSyncInput!) { createAudienceSync(input: $input) { ${RESULT} } }`,
  updateAudienceSync: `mutation UpdateSync($id: ID!, $input: UpdateAudienceSyncInput!) { updateAudienceSync(id: $id, input: $input) { ${RESULT} } }`,
  deleteAudienceSync: `mutation DeleteSync($id: ID!) { deleteAudienceSync(id: $id) { ${RESULT} } }`,
  triggerAudienceSync: `mutation Trigger($id: ID!, $dryRun: Boolean) { triggerAudienceSync(id: $id, dryRun: $dryRun) { ${RESULT} } }`,
} as const;

type MutationName = keyof typeof MUTATIONS;

/** The names of the mutations the fuzzer covers. */
export const FUZZED_MUTATIONS = Object.keys(MUTATIONS) as MutationName[];

export function graphqlRequest(
  caller: Caller,
  label: string,
  tags: string[],
  query: string,
  variables?: unknown,
  extra: Partial<HostileRequest> = {},
): HostileRequest {
  return {
    label: `${caller.name}: ${label}`,
    tags,
    transport: 'fetch',
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(caller.authorization ? { authorization: caller.authorization } : {}),
    },
    body: JSON.stringify({ query, variables }),
    ...extra,
  };
}

/** A change to a mutation's variables that makes them invalid; returns the tag it adds. */
export type Fault = (variables: Record<string, any>, random: Random, caller: Caller) => string;

export const idFault =
  (field: string, type: NodeType): Fault =>
  (variables, random, caller) => {
    const { value, tag } = foreignOrBadId(random, caller, type);
    setPath(variables, field, value);
    return tag;
  };

/** Puts one of `invalid` at a random place in the list `field` (made a list if it is not). */
export const invalidMemberFault =
  (field: string, invalid: readonly unknown[]): Fault =>
  (variables, random) => {
    const list = Array.isArray(variables[field]) ? (variables[field] as unknown[]) : [];
    list.splice(random.int(list.length + 1), 0, random.pick(invalid));
    variables[field] = list;
    return 'invalid-member';
  };

/** Sets `value` at a dotted path, creating objects on the way (a numeric key indexes into a list). */
export function setPath(target: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const [index, key] of keys.slice(0, -1).entries()) {
    const intoList = /^\d+$/.test(keys[index + 1]!);
    if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key]) !== intoList) node[key] = intoList ? [] : {};
    node = node[key];
  }
  node[keys.at(-1)!] = value;
}

export const nameFault =
  (path: string): Fault =>
  (variables, random) => {
    setPath(variables, path, invalidName(random));
    return 'invalid-name';
  };

export const extraFieldFault =
  (path: string): Fault =>
  (variables, random) => {
    setPath(variables, `${path}.${random.pick(['__proto__x', 'workspaceId', 'id', 'isAdmin', '$where'])}`, text(random));
    return 'unknown-input-field';
  };

export const wrongTypeFault =
  (path: string): Fault =>
  (variables, random) => {
    setPath(variables, path, random.pick([...WRONG_TYPES, 'a string', null]));
    return 'wrong-type-input';
  };

/** A NUL character in a text that is otherwise valid: PostgreSQL cannot store it. */
export const nulFault =
  (path: string): Fault =>
  (variables, random) => {
    setPath(variables, path, random.pick(NUL_TEXT));
    return 'nul-in-stored-text';
  };

export const INVALID_MEMBERS: unknown[] = [
  {},
  { email: 'not-an-email' },
  { email: "' OR 1=1 --@" },
  { email: `${'x'.repeat(300)}@example.com` },
  { phone: '123' },
  { phone: '+1 (555) DROP TABLE' },
  { email: 'ok@example.com', country: 'USA' },
  { email: 'ok@example.com', country: '🙂🙂' },
  { email: 'ok@example.com', attributes: [1, 2] },
  { email: 'ok@example.com', attributes: 'a string' },
  { externalId: 'x'.repeat(256) },
  { mobileAdId: 'm'.repeat(MEGABYTE) },
  { email: 'ok@example.com', ssn: '078-05-1120' },
  { email: { $ne: null } },
  'ada@example.com',
  42,
];

const memberFaults: Fault[] = [
  idFault('audienceId', 'Audience'),
  idFault('audienceId', 'Audience'),
  (variables) => {
    variables.members = [];
    return 'no-members';
  },
  invalidMemberFault('members', INVALID_MEMBERS),
  (variables, random) => {
    variables.members = random.pick([123, 'x', true, [[]], [null]]);
    return 'wrong-type-members';
  },
  (variables, random) => {
    variables.members = [{ email: 'nul@example.com', externalId: random.pick(NUL_TEXT) }];
    return 'nul-in-stored-text';
  },
  (variables) => {
    variables.members = [{ externalId: 'nul\u0000', attributes: { note: 'a\u0000b' } }];
    return 'nul-in-stored-text';
  },
];

const BAD_PLATFORMS: unknown[] = ['FOO', 'meta', '', ' META', 'META; DROP TABLE destination', 1, null, ['META']];

/** Meta settings the connector, or GraphQL's typed input, must refuse. */
const BAD_META_SETTINGS: unknown[] = [
  {},
  { adAccountId: 'abc' },
  { adAccountId: "1' OR '1'='1" },
  { adAccountId: '1', baseUrl: 'javascript:alert(1)' },
  { adAccountId: '1', baseUrl: 'ftp://127.0.0.1/' },
  { adAccountId: '1', baseUrl: 'not a url' },
  { adAccountId: '1', apiVersion: 'latest' },
  { adAccountId: '1', apiVersion: 'v27.0' },
  { adAccountId: '1', baseURL: 'https://graph.example.com' },
  { adAccountId: '1', accessToken: 'EAAB-in-config' },
  { adAccountId: { $ne: null } },
  'a string',
  [1, 2],
  42,
];

/** Configs for a Meta destination that must be refused: bad Meta settings, and @oneOf inputs with no member,
 * several, an unknown one, or another platform's. */
const BAD_META_CONFIGS: unknown[] = [
  ...BAD_META_SETTINGS.map((meta) => ({ meta })),
  {},
  { meta: null },
  { meta: { adAccountId: '1' }, webhook: { url: 'https://hooks.example.com/a' } },
  { META: { adAccountId: '1' } },
  { tiktok: { adAccountId: '1' } },
  { linkedin: { adAccountId: '123', apiVersion: 'V202510' } },
  'a string',
  [{ meta: { adAccountId: '1' } }],
  42,
];

const BAD_META_CREDENTIALS: unknown[] = [
  ...[{}, { accessToken: '' }, { accessToken: 5 }, 'token', [], { accessToken: { $gt: '' } }].map((meta) => ({ meta })),
  {},
  { meta: { accessToken: 't' }, x: { consumerKey: 'k', consumerSecret: 's', accessToken: 't', accessTokenSecret: 'u' } },
  { webhook: { signingSecret: 's'.repeat(40), headers: [{ name: '__proto__', value: 'x' }] } },
  'token',
];

const BAD_API_VERSIONS: unknown[] = ['v27.0', 'V99_0', 'latest', '', 'V27_0; DROP TABLE destination', 27, ['V27_0']];

/** Webhook URLs the gateway must refuse (private webhook URLs are not allowed in the fuzz gateway). */
export const BAD_WEBHOOK_URLS = [
  'http://127.0.0.1/hook',
  'https://127.0.0.1/hook',
  'https://localhost/hook',
  'https://sub.localhost/hook',
  'https://[::1]/hook',
  'https://[::ffff:127.0.0.1]/hook',
  'https://[::ffff:169.254.169.254]/hook',
  'https://0x7f000001/hook',
  'https://2130706433/hook',
  'https://127.1/hook',
  'https://0.0.0.0/hook',
  'https://169.254.169.254/latest/meta-data/',
  'https://10.0.0.5/hook',
  'https://172.16.3.4/hook',
  'https://192.168.1.1/hook',
  'https://100.64.0.1/hook',
  'https://[fd00::1]/hook',
  'https://[fe80::1]/hook',
  'https://user:pass@hooks.example.com/hook',
  'http://hooks.example.com/hook',
  'ftp://hooks.example.com/hook',
  'file:///etc/passwd',
  'gopher://127.0.0.1:25/_HELO',
  'javascript:alert(1)',
  'not a url',
  '',
  '//hooks.example.com/hook',
];

// ---- Outbound URLs ------------------------------------------------------------------------------

/**
 * Hosts, as a URL writes them, that reach no public address. IPv4: loopback, "this network", private,
 * CGN, link-local (cloud metadata), IETF protocol assignments, documentation, benchmarking, reserved,
 * multicast and broadcast — also as one decimal, octal or hex number, in short forms, percent-encoded or
 * in full-width digits. IPv6: loopback, unspecified, ULA, link-local, site-local, multicast, discard,
 * documentation, IPv4-compatible, IPv4-mapped and -translated, NAT64 (well-known and local-use), 6to4
 * and Teredo. Names: `localhost` and private-use domains.
 */
export const PRIVATE_HOSTS: readonly string[] = [
  '127.0.0.1', '127.255.255.254', '2130706433', '0x7f000001', '0x7f.0.0.1', '0177.0.0.1', '017700000001', '127.1',
  '%31%32%37.0.0.1', '\uff11\uff12\uff17.\uff10.\uff10.\uff11',
  '0.0.0.0', '0', '10.0.0.5', '012.0.0.5', '172.16.3.4', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0xa9fea9fe',
  '2852039166', '192.0.0.8', '192.0.2.1', '198.18.0.1', '198.51.100.7', '203.0.113.9', '240.0.0.1', '224.0.0.1',
  '255.255.255.255',
  '[::1]', '[0:0:0:0:0:0:0:1]', '[::]', '[fd00::1]', '[fc00::1]', '[fe80::1]', '[febf::1]', '[fec0::1]', '[ff02::1]',
  '[100::1]', '[2001:db8::1]', '[3fff::1]', '[::7f00:1]',
  '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::ffff:169.254.169.254]', '[::ffff:10.0.0.1]', '[::ffff:0:7f00:1]',
  '[::ffff:0:a9fe:a9fe]',
  '[64:ff9b::7f00:1]', '[64:ff9b::127.0.0.1]', '[64:ff9b::a9fe:a9fe]', '[64:ff9b::a00:5]', '[64:ff9b:1::a00:5]',
  '[64:ff9b:1::808:808]',
  '[2002:7f00:1::]', '[2002:a9fe:a9fe::]', '[2002:a00:5::1]', '[2001:0:4136:e378:8000:63bf:3fff:fdd2]',
  'localhost', 'LOCALHOST', 'localhost.', 'api.localhost', 'a.b.localhost.', 'metadata.google.internal', 'printer.local',
  'router.home.arpa', 'ipv4only.arpa',
];

/** Hosts that are public (so that the rules are seen to let something through): names, public IPv4 and
 * IPv6 addresses, and the IPv4-mapped and NAT64 forms of a public IPv4 address. */
export const PUBLIC_HOSTS: readonly string[] = [
  'hooks.example.com', 'hooks.example.com:8443', '93.184.216.34', '[2606:2800:220:1:248:1893:25c8:1946]',
  '[::ffff:93.184.216.34]', '[64:ff9b::5db8:d822]',
];

/** Ways of writing a URL to `host` that hide it: a port, a fragment or a backslash that makes the URL read
 * as if it went to a public host, a user name that does, and plain http. */
export function disguisedUrls(host: string): string[] {
  return [
    `https://${host}/hook`,
    `https://${host}:8443/hook?a=b`,
    `https://${host}#@hooks.example.com/`,
    `https://${host}\\@hooks.example.com/`,
    `https://hooks.example.com@${host}/`,
    `http://${host}/hook`,
  ];
}

/** What a hostile DNS server answers for a public-looking name (checked on every connection). */
export const PRIVATE_DNS_ANSWERS: readonly string[] = [
  '127.0.0.1', '10.0.0.5', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1',
  '::ffff:127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '100::1',
];

/** Every setting that holds a URL the gateway calls, as the variables of a mutation putting `url` there. */
export const URL_SETTINGS: { label: string; mutation: string; variables: (url: string, caller: Caller) => Record<string, unknown> }[] = [
  {
    label: 'WEBHOOK config.url',
    mutation: 'createDestination',
    variables: (url) => ({
      input: { name: 'Hook', config: { webhook: { url } }, credentials: { webhook: { signingSecret: 's'.repeat(40) } } },
    }),
  },
  {
    label: 'META config.baseUrl',
    mutation: 'createDestination',
    variables: (url) => ({
      input: { name: 'Meta', config: { meta: { adAccountId: 'act_1', baseUrl: url } }, credentials: { meta: { accessToken: 't' } } },
    }),
  },
  {
    label: 'META config.baseUrl (update)',
    mutation: 'updateDestination',
    variables: (url, caller) => ({ id: caller.own.ids.Destination, input: { config: { meta: { adAccountId: 'act_1', baseUrl: url } } } }),
  },
  {
    label: 'LINKEDIN config.baseUrl',
    mutation: 'createDestination',
    variables: (url) => ({
      input: { name: 'LinkedIn', config: { linkedin: { adAccountId: '123', baseUrl: url } }, credentials: { linkedin: { accessToken: 't' } } },
    }),
  },
  {
    label: 'X config.baseUrl',
    mutation: 'createDestination',
    variables: (url) => ({
      input: {
        name: 'X',
        config: { x: { accountId: 'abc123', baseUrl: url } },
        credentials: { x: { consumerKey: 'k', consumerSecret: 's', accessToken: 't', accessTokenSecret: 'u' } },
      },
    }),
  },
  ...(['baseUrl', 'tokenUrl'] as const).map((setting) => ({
    label: `GOOGLE config.${setting}`,
    mutation: 'createDestination',
    variables: (url: string) => ({
      input: {
        name: 'Google',
        config: {
          google: {
            operatingAccount: { accountId: '123-456-7890' },
            consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
            customerMatchTermsAccepted: true,
            [setting]: url,
          },
        },
        credentials: { google: { accessToken: 't' } },
      },
    }),
  })),
  {
    label: 'syncAudiences notifyUrl',
    mutation: 'syncAudiences',
    variables: (url) => ({ input: { audiences: [{ audienceId: 'ext-1', add: [{ externalId: 'p-1', hashedEmail: 'a'.repeat(64) }] }], notifyUrl: url } }),
  },
];

const URL_MUTATIONS: Record<string, string> = {
  createDestination: `mutation CreateDestination($input: CreateDestinationInput!) { createDestination(input: $input) { ${RESULT} } }`,
  updateDestination: `mutation UpdateDestination($id: ID!, $input: UpdateDestinationInput!) { updateDestination(id: $id, input: $input) { ${RESULT} } }`,
  syncAudiences: `mutation SyncAudiences($input: SyncAudiencesInput!) { syncAudiences(input: $input) { ${RESULT} } }`,
};

/**
 * Every URL setting with every private host, each in one of its disguises (taken in turn, so that every
 * setting meets every disguise): each must be refused when private URLs are not allowed. The rules all
 * these settings share are checked on every host × disguise in test/infra/address-policy.test.ts.
 */
export function privateUrlRequests(caller: Caller): HostileRequest[] {
  return URL_SETTINGS.flatMap((setting, settingIndex) =>
    PRIVATE_HOSTS.map((host, hostIndex) => {
      const disguises = disguisedUrls(host);
      const url = disguises[(settingIndex + hostIndex) % disguises.length]!;
      return graphqlRequest(caller, `${setting.label} = ${url}`, ['mutation', 'private-url'], URL_MUTATIONS[setting.mutation]!, setting.variables(url, caller));
    }),
  );
}

const destinationConfigFaults: Fault[] = [
  (variables, random) => {
    setPath(variables, 'input.config', random.pick(BAD_META_CONFIGS));
    return 'invalid-config';
  },
  (variables, random) => {
    setPath(variables, 'input.credentials', random.pick(BAD_META_CREDENTIALS));
    return 'invalid-credentials';
  },
];

const BAD_MODES: unknown[] = ['mirror', 'DELETE', '', 1, ['ADD']];
const BAD_STATUSES: unknown[] = ['ERROR', 'DELETED', 'active', 3, 'PAUSED; DROP'];

/** Schedules every sync mutation must refuse. */
export const BAD_SCHEDULES: unknown[] = [
  { cron: '* * *' },
  { cron: '61 * * * *' },
  { cron: '* 25 * * *' },
  { cron: '@reboot' },
  { cron: '* * * * * *' },
  { cron: "'; DROP TABLE audience_sync; --" },
  { cron: 'x'.repeat(100_000) },
  { cron: '' },
  { cron: '0 * * * *', timezone: 'Mars/Olympus_Mons' },
  { cron: '0 * * * *', timezone: '../../etc/passwd' },
  { cron: '0 * * * *', timezone: 'UTC; DROP TABLE audience_sync' },
  { cron: '0 * * * *', timezone: '' },
  { cron: '0 * * * *', timezone: '🙂' },
  { timezone: 'Europe/Paris' },
  { cron: '0 * * * *', cadenceHours: 5 },
  { frequency: 'DAILY', cron: '0 * * * *' },
  { frequency: 'HOURLY', cadenceHours: 3 },
  { frequency: 'WEEKLY', timezone: 'Mars/Olympus_Mons' },
  { frequency: 'MONTHLY' },
  { cadenceHours: -1 },
  { cadenceHours: 721 },
  { cadenceHours: 2 ** 31 },
  { cadenceHours: -(2 ** 31) - 1 },
  { cadenceHours: 1.5 },
  { cadenceHours: '24' },
  { cadenceHours: 1e308 },
  { cron: 0 },
  'daily',
];

const BAD_FIELD_MAPPINGS: unknown[] = [
  [],
  Array.from({ length: 21 }, () => ({ sourceField: 'email', destinationField: 'EMAIL' })),
  [{ sourceField: 'ssn', destinationField: 'EMAIL' }],
  [{ sourceField: 'email', destinationField: 'SSN' }],
  [{ sourceField: 'email', destinationField: '' }],
  [{ sourceField: 'email' }],
  [{ sourceField: "email' OR 1=1", destinationField: 'EMAIL' }],
  [{ sourceField: 'email', destinationField: 'EMAIL', extra: true }],
  'EMAIL',
];

function syncFieldFaults(prefix: string): Fault[] {
  return [
    nameFault(`${prefix}.name`),
    (variables, random) => {
      setPath(variables, `${prefix}.description`, random.pick(['d'.repeat(2001), 'd'.repeat(MEGABYTE), ...WRONG_TYPES]));
      return 'invalid-description';
    },
    (variables, random) => {
      setPath(variables, `${prefix}.mode`, random.pick(BAD_MODES));
      return 'invalid-enum';
    },
    (variables, random) => {
      setPath(variables, `${prefix}.fieldMapping`, random.pick(BAD_FIELD_MAPPINGS));
      return 'invalid-field-mapping';
    },
    (variables, random) => {
      setPath(variables, `${prefix}.schedule`, random.pick(BAD_SCHEDULES));
      return 'invalid-schedule';
    },
    (variables, random) => {
      setPath(variables, `${prefix}.status`, random.pick(BAD_STATUSES));
      return 'invalid-status';
    },
    (variables, random) => {
      setPath(variables, `${prefix}.platformAudienceName`, random.pick(['', 'p'.repeat(256), hugeString(random), ...WRONG_TYPES]));
      return 'invalid-platform-audience-name';
    },
    extraFieldFault(prefix),
    wrongTypeFault(prefix),
  ];
}

export function validMember(random: Random): Record<string, unknown> {
  const word = random.pick(['ada', 'grace', 'linus', 'barbara', 'edsger']);
  return random.pick([
    { email: `${word}${random.int(1000)}@example.com` },
    { phone: '+14155550100', firstName: text(random).slice(0, 100) },
    { externalId: `${word}-${random.int(1000)}`, attributes: { note: text(random) } },
  ]);
}

interface MutationPlan {
  /** Variables that would succeed (or, for some, be refused by a conflict) when sent by the owner. */
  valid(random: Random, caller: Caller): Record<string, any>;
  /** Faults, each of which alone makes the variables invalid. */
  faults: Fault[];
}

const MUTATION_PLANS: Record<MutationName, MutationPlan> = {
  createAudience: {
    valid: (random) => ({ input: { name: text(random), description: random.chance(0.5) ? text(random) : undefined } }),
    faults: [
      nameFault('input.name'),
      (variables, random) => {
        setPath(variables, 'input.description', random.pick(['d'.repeat(2001), 'd'.repeat(MEGABYTE), ...WRONG_TYPES]));
        return 'invalid-description';
      },
      (variables) => {
        setPath(variables, 'input', { description: 'no name' });
        return 'missing-field';
      },
      extraFieldFault('input'),
      wrongTypeFault('input'),
      nulFault('input.name'),
    ],
  },
  addAudienceMembers: {
    valid: (random, caller) => ({
      audienceId: caller.own.ids.Audience,
      members: Array.from({ length: 1 + random.int(random.chance(0.1) ? 2000 : 5) }, () => validMember(random)),
    }),
    faults: memberFaults,
  },
  removeAudienceMembers: {
    valid: (random, caller) => ({ audienceId: caller.own.ids.Audience, members: [validMember(random)] }),
    faults: memberFaults,
  },
  createDestination: {
    valid: (random) => ({
      input: {
        name: text(random),
        config: { meta: { adAccountId: `act_${random.int(1e9)}`, baseUrl: 'https://graph.example.com' } },
        credentials: { meta: { accessToken: `token-${random.int(1e9)}` } },
      },
    }),
    faults: [
      nameFault('input.name'),
      (variables, random) => {
        setPath(variables, 'input.config.meta.apiVersion', random.pick(BAD_API_VERSIONS));
        return 'invalid-enum';
      },
      ...destinationConfigFaults,
      (variables, random) => {
        setPath(variables, 'input.config', { webhook: { url: random.pick(BAD_WEBHOOK_URLS) } });
        setPath(variables, 'input.credentials', { webhook: { signingSecret: 's'.repeat(40) } });
        return 'forbidden-webhook-url';
      },
      extraFieldFault('input'),
      wrongTypeFault('input'),
      nulFault('input.name'),
    ],
  },
  updateDestination: {
    valid: (random, caller) => ({ id: caller.own.ids.Destination, input: { name: text(random) } }),
    faults: [idFault('id', 'Destination'), nameFault('input.name'), ...destinationConfigFaults, extraFieldFault('input'), wrongTypeFault('input')],
  },
  // The caller's destination has a sync: deleting it is refused with a conflict, so no fault is needed.
  deleteDestination: { valid: (_random, caller) => ({ id: caller.own.ids.Destination }), faults: [idFault('id', 'Destination')] },
  // Checking a destination reads it and calls the (fake) platform; it writes nothing.
  testDestination: { valid: (_random, caller) => ({ id: caller.own.ids.Destination }), faults: [idFault('id', 'Destination')] },
  // The caller's audience already syncs to its destination: a valid creation is refused with a conflict.
  createAudienceSync: {
    valid: (random, caller) => ({
      input: {
        name: text(random),
        audienceId: caller.own.ids.Audience,
        destinationId: caller.own.ids.Destination,
        mode: random.pick(['MIRROR', 'ADD', undefined]),
        schedule: random.pick([{ cron: '0 */4 * * *', timezone: 'Europe/Paris' }, { cadenceHours: 12 }, undefined]),
        runOnCreate: random.pick([true, false, undefined]),
      },
    }),
    faults: [idFault('input.audienceId', 'Audience'), idFault('input.destinationId', 'Destination'), ...syncFieldFaults('input')],
  },
  updateAudienceSync: {
    valid: (random, caller) => ({ id: caller.own.ids.AudienceSync, input: { name: text(random) } }),
    faults: [idFault('id', 'AudienceSync'), idFault('id', 'AudienceSync'), ...syncFieldFaults('input')],
  },
  deleteAudienceSync: { valid: (_random, caller) => ({ id: caller.own.ids.AudienceSync }), faults: [idFault('id', 'AudienceSync')] },
  triggerAudienceSync: {
    valid: (random, caller) => ({ id: caller.own.ids.AudienceSync, dryRun: random.pick([true, false, undefined]) }),
    faults: [
      idFault('id', 'AudienceSync'),
      (variables, random) => {
        variables.dryRun = random.pick(['true', 1, 'yes', {}, [true]]);
        return 'wrong-type-argument';
      },
    ],
  },
};

/** A mutation with variables a caller that may write must see refused; other callers get valid ones too. */
export function mutationRequest(random: Random, caller: Caller): HostileRequest {
  const name = random.pick(FUZZED_MUTATIONS);
  const plan = MUTATION_PLANS[name];
  const variables = plan.valid(random, caller);
  const faultCount = caller.canWrite ? 1 + random.int(2) : random.int(3);
  const tags = Array.from({ length: faultCount }, () => random.pick(plan.faults)(variables, random, caller));
  return graphqlRequest(caller, `${name} [${tags.join(', ') || 'valid input'}]`, ['mutation', ...tags], MUTATIONS[name], variables);
}

// ---- Queries ------------------------------------------------------------------------------------

const CONNECTION_SIZES: unknown[] = [-1, 0, 1, 100, 101, 1000, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 1.5, '10', true, null];

/** Paging arguments of a connection, each present with its own chance: sizes from CONNECTION_SIZES,
 * cursors from `cursor`; `tags` names the cursors' faults. */
export function pageArguments(
  random: Random,
  caller: Caller,
  chances: { first: number; last: number; cursor: number },
): { variables: Record<string, unknown>; tags: string[] } {
  const variables: Record<string, unknown> = {};
  const tags: string[] = [];
  if (random.chance(chances.first)) variables.first = random.pick(CONNECTION_SIZES);
  if (random.chance(chances.last)) variables.last = random.pick(CONNECTION_SIZES);
  for (const position of ['after', 'before'] as const) {
    if (!random.chance(chances.cursor)) continue;
    const { value, tag } = cursor(random, caller);
    variables[position] = value;
    tags.push(tag);
  }
  return { variables, tags };
}

function cursor(random: Random, caller: Caller): { value: unknown; tag: string } {
  return random.pick<() => { value: unknown; tag: string }>([
    () => ({ value: text(random), tag: 'garbage-cursor' }),
    () => ({ value: '', tag: 'garbage-cursor' }),
    () => ({ value: hugeString(random), tag: 'garbage-cursor' }),
    () => ({ value: base64(`GPC:S:${random.pick([...INJECTIONS, 'not-a-uuid', ''])}`), tag: 'forged-cursor' }),
    () => ({ value: base64(`GPC:N:${random.pick(['1e400', '-1', 'NaN'])}`), tag: 'forged-cursor' }),
    () => ({ value: base64(`GPC:J:${random.pick(['{"a":1}', '[', 'null'])}`), tag: 'forged-cursor' }),
    () => ({ value: base64(`GPC:I:${random.pick(['1', '999999999999999999', '-1', '1e3'])}`), tag: 'forged-cursor' }),
    () => ({ value: base64(`GPC:S:${Buffer.from(caller.other.ids.Audience, 'base64').toString().split(':')[1]}`), tag: 'foreign-cursor' }),
    () => ({ value: random.pick(WRONG_TYPES), tag: 'wrong-type-cursor' }),
  ])();
}

function anyId(random: Random, caller: Caller): { value: unknown; tag: string } {
  const type = random.pick(NODE_TYPES);
  return random.chance(0.25) ? { value: caller.own.ids[type], tag: 'own-id' } : foreignOrBadId(random, caller, type);
}

const NODE_SELECTION =
  '__typename id ... on Audience { name memberCount } ... on AudienceSync { name status schedule { cron timezone } } ' +
  '... on Destination { name config { __typename ... on MetaConfig { adAccountId apiVersion baseUrl } } credentialsConfigured credentialsHint } ... on SyncRun { status errorMessage errorDetails } ' +
  '... on Task { status result error }';

/** Reads with hostile arguments: ids, page sizes, cursors, enum values, filters. */
export function queryRequest(random: Random, caller: Caller): HostileRequest {
  const choice = random.int(6);
  if (choice === 0) {
    const id = anyId(random, caller);
    return graphqlRequest(caller, `node(${id.tag})`, ['query', id.tag], `query Node($id: ID!) { node(id: $id) { ${NODE_SELECTION} } }`, { id: id.value });
  }
  if (choice === 1) {
    const ids = Array.from({ length: random.pick([0, 1, 5, 100, 1000]) }, () => anyId(random, caller));
    const tags = [...new Set(ids.map((id) => id.tag))];
    return graphqlRequest(caller, `nodes(${ids.length} ids: ${tags.join(', ')})`, ['query', ...tags], `query Nodes($ids: [ID!]!) { nodes(ids: $ids) { ${NODE_SELECTION} } }`, {
      ids: ids.map((id) => id.value),
    });
  }
  if (choice === 2) {
    const id = anyId(random, caller);
    return graphqlRequest(caller, `task(${id.tag})`, ['query', id.tag], 'query Task($id: ID!) { task(id: $id) { id status run { id } } }', { id: id.value });
  }
  const connection = random.pick(['audiences', 'destinations', 'audienceSyncs']);
  const { variables, tags } = pageArguments(random, caller, { first: 0.5, last: 0.3, cursor: 0.4 });
  let filters = '';
  let filterArgs = '';
  if (connection === 'destinations') {
    filters = ', $platform: Platform';
    filterArgs = ', platform: $platform';
    if (random.chance(0.5)) variables.platform = random.pick(BAD_PLATFORMS);
  }
  if (connection === 'audienceSyncs') {
    filters = ', $status: SyncStatus, $audienceId: ID, $destinationId: ID';
    filterArgs = ', status: $status, audienceId: $audienceId, destinationId: $destinationId';
    if (random.chance(0.4)) variables.status = random.pick(BAD_STATUSES);
    if (random.chance(0.5)) variables.audienceId = anyId(random, caller).value;
    if (random.chance(0.5)) variables.destinationId = anyId(random, caller).value;
  }
  const nested =
    connection === 'audienceSyncs'
      ? `runs(first: $first, status: $runStatus) { edges { node { id status invalidSamples } } }`
      : connection === 'audiences'
        ? 'syncs(first: $first, after: $after) { edges { node { id } } }'
        : 'credentialsHint';
  if (connection === 'audienceSyncs' && random.chance(0.3)) variables.runStatus = random.pick(['DONE', 'queued', 7]);
  const runStatus = connection === 'audienceSyncs' ? ', $runStatus: SyncRunStatus' : '';
  const query =
    `query List($first: Int, $last: Int, $after: String, $before: String${filters}${runStatus}) { ` +
    `${connection}(first: $first, last: $last, after: $after, before: $before${filterArgs}) { ` +
    `pageInfo { hasNextPage endCursor } edges { cursor node { id ${nested} } } } }`;
  return graphqlRequest(caller, `${connection}(${JSON.stringify(variables).slice(0, 120)})`, ['query', ...tags], query, variables);
}

// ---- Hostile documents --------------------------------------------------------------------------

/** A valid selection nested `depth` levels deep through audience → syncs → audience → … */
function deepSelection(depth: number): string {
  let selection = 'id';
  for (let level = 0; level < depth; level++) {
    selection = level % 2 === 0 ? `syncs { edges { node { id audience { ${selection} } } } }` : `id ${selection}`;
  }
  return `{ audiences(first: 5) { edges { node { ${selection} } } } }`;
}

const gqlString = (value: string) => JSON.stringify(value);

/** Documents that are themselves the attack: deep, wide, huge, malformed or tricky. */
export function documentRequest(random: Random, caller: Caller): HostileRequest {
  const documents: [string, string, () => string][] = [
    ['deep-selection', 'valid selection nested deep', () => deepSelection(random.pick([3, 11, 40, 120]))],
    ['deep-selection', 'unknown fields nested deep', () => {
      const depth = random.pick([64, 500, 2000, 8000]);
      return `{${'a{'.repeat(depth)}b${'}'.repeat(depth)}}`;
    }],
    ['deep-list-literal', 'list literal nested deep', () => {
      const depth = random.pick([64, 500, 5000]);
      return `{ nodes(ids: ${'['.repeat(depth)}"x"${']'.repeat(depth)}) { id } }`;
    }],
    ['many-aliases', 'many aliases of __typename', () => {
      const count = random.pick([16, 100, 1000, 20_000]);
      return `{ ${Array.from({ length: count }, (_, index) => `a${index}: __typename`).join(' ')} }`;
    }],
    ['many-aliases', 'many aliases of a list', () => {
      const count = random.pick([16, 50, 200]);
      return `{ ${Array.from({ length: count }, (_, index) => `d${index}: destinations(first: 100) { edges { node { id name } } }`).join(' ')} }`;
    }],
    ['fragments', 'fragment cycle', () => 'query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }'],
    ['fragments', 'thousands of fragment spreads', () =>
      `query { ${'...F '.repeat(random.pick([100, 5000]))} } fragment F on Query { audiences(first: 1) { edges { node { id } } } }`],
    ['directives', 'many directives', () => `{ __typename ${'@skip(if: false) '.repeat(random.pick([51, 1000, 10_000]))}}`],
    ['directives', 'bad directives', () => random.pick(['{ __typename @include(if: "yes") }', '{ __typename @drop(table: "audience") }', '{ __typename @skip }'])],
    ['huge-document', '1 MB comment', () => `# ${'x'.repeat(MEGABYTE)}\n{ __typename }`],
    ['huge-document', '1 MB string literal', () => `{ node(id: ${gqlString('A'.repeat(MEGABYTE))}) { id } }`],
    ['malformed-document', 'syntax errors', () =>
      random.pick(['{', '}}}}', '{ __typename', 'query (', '{ node(id: "x" ', '{ node(id: "\\uD800") { id } }', '\u0000{ __typename }', '\ufeff{ __typename }', '{ __typename }\u0007', '""""""', 'mutation', '{ ... }', '{ a: b: c }'])],
    ['malformed-document', 'not a GraphQL document', () => random.pick([...INJECTIONS, ...UNICODE_ODDITIES, 'SELECT * FROM api_key', '<?xml version="1.0"?><query/>'])],
    ['invalid-document', 'invalid operations', () =>
      random.pick([
        '{ doesNotExist }',
        '{ audiences { edges { node { credentials } } } }',
        '{ destinations { edges { node { credentials keyHash } } } }',
        'query Q { __typename } query Q { __typename }',
        '{ __typename } { __typename }',
        'query ($a: Int = "x") { __typename }',
        'query ($id: ID!) { __typename }',
        '{ node(id: $undefined) { id } }',
        '{ node { id } }',
        '{ audiences(first: "ten") { edges { node { id } } } }',
        '{ __type(name: "ApiKey") { fields { name } } }',
        'subscription { taskUpdated(taskId: "x") { id } syncRunUpdated(runId: "y") { id } }',
        '{ ...on Mutation { createAudience(input: { name: "x" }) { __typename } } }',
      ])],
    ['inline-arguments', 'hostile inline arguments', () => {
      const value = random.chance(0.5) ? text(random) : random.pick(INJECTIONS);
      return random.pick([
        `{ node(id: ${gqlString(value)}) { id } }`,
        `{ audiences(first: 5, after: ${gqlString(value)}) { edges { node { id } } } }`,
        `{ __type(name: ${gqlString(value)}) { name } }`,
        `mutation { createAudience(input: { name: "" description: ${gqlString(value)} }) { __typename } }`,
        `mutation { deleteAudienceSync(id: ${gqlString(value)}) { __typename } }`,
      ]);
    }],
    ['introspection', 'nested introspection', () =>
      random.pick([
        '{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }',
        '{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }',
        '{ __schema { queryType { fields { args { type { inputFields { type { inputFields { name } } } } } } } } }',
      ])],
  ];
  const [tag, name, build] = random.pick(documents);
  const query = build();
  const label = `${name} (${query.length} characters)`;
  const operationName = random.chance(0.1) ? random.pick(['Missing', text(random), '__proto__']) : undefined;
  const request = graphqlRequest(caller, label, ['document', tag], query);
  request.body = JSON.stringify({ query, ...(operationName ? { operationName } : {}) });
  return request;
}

// ---- Raw HTTP -----------------------------------------------------------------------------------

const RAW_BODIES: [string, () => string | Uint8Array][] = [
  ['empty', () => ''],
  ['truncated JSON', () => '{"query": '],
  ['JSON null', () => 'null'],
  ['JSON array', () => '[]'],
  ['batched operations', () => JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }])],
  ['JSON number', () => '123'],
  ['JSON string', () => '"{ __typename }"'],
  ['query not a string', () => '{"query": 123}'],
  ['query null', () => '{"query": null}'],
  ['query an object', () => '{"query": {"kind": "Document", "definitions": []}}'],
  ['variables a string', () => '{"query": "query ($id: ID!) { node(id: $id) { id } }", "variables": "x"}'],
  ['variables an array', () => '{"query": "{ __typename }", "variables": [1]}'],
  ['operationName an object', () => '{"query": "{ __typename }", "operationName": {}}'],
  ['extensions a string', () => '{"query": "{ __typename }", "extensions": "x"}'],
  ['persisted query hash', () => '{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}'],
  ['prototype pollution', () => '{"__proto__": {"polluted": "yes"}, "query": "{ __typename }", "variables": {"__proto__": {"polluted": "yes"}}}'],
  ['constructor pollution', () => '{"constructor": {"prototype": {"polluted": "yes"}}, "query": "{ __typename }"}'],
  ['duplicate keys', () => '{"query": "{ __typename }", "query": "mutation { deleteAudienceSync(id: \\"x\\") { __typename } }"}'],
  ['lone surrogate escapes', () => '{"query": "{ node(id: \\"\\ud800\\") { id } }"}'],
  ['NUL bytes', () => '{"query": "{ __typename }\u0000"}\u0000'],
  ['BOM', () => '\ufeff{"query": "{ __typename }"}'],
  ['trailing garbage', () => '{"query": "{ __typename }"} trailing'],
  ['JSON with comments', () => '{/* c */ "query": "{ __typename }"}'],
  ['deeply nested JSON', () => `{"query": "{ __typename }", "variables": {"a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`],
  ['deeply nested JSON, unclosed', () => `{"query": ${'['.repeat(200_000)}`],
  ['1 MB JSON string', () => JSON.stringify({ query: '{ __typename }', variables: { x: 'x'.repeat(MEGABYTE) } })],
  ['invalid UTF-8', () => new Uint8Array([0x7b, 0x22, 0x71, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x3a, 0xed, 0xa0, 0x80, 0x7d])],
  ['random bytes', () => Uint8Array.from({ length: 512 }, (_, index) => (index * 7919 + 13) % 256)],
];

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'application/graphql',
  'application/graphql-response+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'multipart/form-data',
  'application/xml',
  'application/json; boundary=\u00ff',
  '',
];

const MULTIPART_BODIES = [
  '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{bad\r\n--x--',
  '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query":"{ __typename }"}\r\n--x\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n--x--',
  '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query":"{ __typename }"}\r\n--x\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["__proto__.polluted"]}\r\n--x\r\nContent-Disposition: form-data; name="0"; filename="../../etc/passwd"\r\n\r\nroot\r\n--x--',
  '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n',
  '--y\r\n\r\n--y--',
];

const GET_SEARCHES: [string, string][] = [
  ['get-variables-not-json', `?query=${encodeURIComponent('query ($id: ID) { node(id: $id) { id } }')}&variables=notjson`],
  ['get-extensions-not-json', `?query=${encodeURIComponent('{ __typename }')}&extensions=${encodeURIComponent('{"a":')}`],
  ['get-mutation', `?query=${encodeURIComponent('mutation { deleteAudienceSync(id: "x") { __typename } }')}`],
  ['get-bad-percent-encoding', `?query=${encodeURIComponent('{ node(id: "x") { id } }')}&extensions=%ZZ`],
  ['get-bad-percent-encoding', '?query=%E0%A4%A'],
  ['get-repeated-parameter', '?query[]=a&query[]=b&query=%7B__typename%7D&query=%7Bx%7D'],
  ['get-huge-query', `?query=${'x'.repeat(10_000)}`],
  ['get-hostile-operation-name', '?operationName=__proto__&query=%7B__typename%7D'],
  ['get-subscription', `?query=${encodeURIComponent('subscription { taskUpdated(taskId: "x") { id } }')}`],
  ['get-no-query', ''],
];

/** Bodies, content types, methods and query strings that are not a well-formed GraphQL request. */
export function rawHttpRequest(random: Random, caller: Caller): HostileRequest {
  const headers: Record<string, string> = caller.authorization ? { authorization: caller.authorization } : {};
  const choice = random.int(4);
  if (choice === 0) {
    const [tag, search] = random.pick(GET_SEARCHES);
    const method = random.pick(['GET', 'GET', 'GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT', 'PATCH']);
    const accept = random.pick(['application/json', 'text/event-stream', 'multipart/mixed', 'text/html', '*/*']);
    return { label: `${caller.name}: ${method} ${search.slice(0, 80)} (${accept})`, tags: ['http-method', tag], transport: 'fetch', method, search, headers: { ...headers, accept } };
  }
  if (choice === 1) {
    const contentType = random.pick(CONTENT_TYPES);
    const body = contentType.startsWith('multipart') ? random.pick(MULTIPART_BODIES) : random.pick(['{"query": "{ __typename }"}', 'query={__typename}', '{ __typename }', text(random)]);
    return { label: `${caller.name}: body as ${contentType || 'no content type'}`, tags: ['content-type'], transport: 'fetch', method: 'POST', headers: { ...headers, 'content-type': contentType }, body };
  }
  const [name, body] = random.pick(RAW_BODIES);
  return {
    label: `${caller.name}: raw body: ${name}`,
    tags: ['raw-body'],
    transport: 'fetch',
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: random.pick(['application/json', 'application/graphql-response+json', 'text/event-stream']) },
    body: body(),
  };
}

/** A valid mutation sent with an Authorization header that does not authenticate (or a READ key). */
export function authRequest(random: Random, workspace: FuzzWorkspace, revokedKey: string): HostileRequest {
  const key = workspace.writeKey;
  const [tag, authorization] = random.pick<[string, string]>([
    ['no-bearer', key],
    ['wrong-scheme', `Basic ${base64(`admin:${key}`)}`],
    ['wrong-scheme', `Token ${key}`],
    ['altered-key', `Bearer ${key}x`],
    ['altered-key', `Bearer ${key.slice(0, -1)}`],
    ['altered-key', `Bearer ${key.toUpperCase()}`],
    ['key-prefix-only', `Bearer ${key.slice(0, 10)}`],
    ['two-credentials', `Bearer ${key} Bearer ${key}`],
    ['two-credentials', `Bearer ${key}, Bearer ${workspace.readKey}`],
    ['empty-bearer', 'Bearer '],
    ['empty-bearer', 'Bearer'],
    ['huge-bearer', `Bearer ${'k'.repeat(random.pick([1000, 60_000]))}`],
    ['latin1-bearer', 'Bearer \u00ff\u00fe\u00e9'],
    ['injection-bearer', `Bearer ${random.pick(["' OR '1'='1", 'asg_%00', '{"$ne":null}']).replace(/\s/g, '')}`],
    ['revoked-key', `Bearer ${revokedKey}`],
    ['read-key', `Bearer ${workspace.readKey}`],
  ]);
  return {
    label: `auth ${tag}: createAudience`,
    tags: ['auth', tag],
    transport: 'fetch',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization, 'x-request-id': random.pick(['req-1', '\u00ff\u00ff', 'x'.repeat(2000), "'; DROP"]) },
    body: JSON.stringify({ query: MUTATIONS.createAudience, variables: { input: { name: 'Should never exist' } } }),
  };
}

// ---- Tenancy twins ------------------------------------------------------------------------------

const TWIN_OPERATIONS: { type: NodeType; label: string; query: string; variables: (id: string, caller: Caller) => Record<string, unknown> }[] = [
  { type: 'Audience', label: 'node', query: `query Node($id: ID!) { node(id: $id) { ${NODE_SELECTION} } }`, variables: (id) => ({ id }) },
  { type: 'SyncRun', label: 'nodes', query: `query Nodes($ids: [ID!]!) { nodes(ids: $ids) { ${NODE_SELECTION} } }`, variables: (id) => ({ ids: [id] }) },
  { type: 'Task', label: 'task', query: 'query Task($id: ID!) { task(id: $id) { id status } }', variables: (id) => ({ id }) },
  { type: 'Destination', label: 'updateDestination', query: MUTATIONS.updateDestination, variables: (id) => ({ id, input: { name: 'Renamed' } }) },
  { type: 'Destination', label: 'deleteDestination', query: MUTATIONS.deleteDestination, variables: (id) => ({ id }) },
  { type: 'Destination', label: 'testDestination', query: MUTATIONS.testDestination, variables: (id) => ({ id }) },
  { type: 'Audience', label: 'addAudienceMembers', query: MUTATIONS.addAudienceMembers, variables: (id) => ({ audienceId: id, members: [{ email: 'eve@example.com' }] }) },
  { type: 'Audience', label: 'removeAudienceMembers', query: MUTATIONS.removeAudienceMembers, variables: (id) => ({ audienceId: id, members: [{ email: 'ada@example.com' }] }) },
  { type: 'Audience', label: 'createAudienceSync(audienceId)', query: MUTATIONS.createAudienceSync, variables: (id, caller) => ({ input: { name: 'x', audienceId: id, destinationId: caller.own.ids.Destination } }) },
  { type: 'Destination', label: 'createAudienceSync(destinationId)', query: MUTATIONS.createAudienceSync, variables: (id, caller) => ({ input: { name: 'x', audienceId: caller.own.ids.Audience, destinationId: id } }) },
  { type: 'AudienceSync', label: 'updateAudienceSync', query: MUTATIONS.updateAudienceSync, variables: (id) => ({ id, input: { name: 'Renamed' } }) },
  { type: 'AudienceSync', label: 'deleteAudienceSync', query: MUTATIONS.deleteAudienceSync, variables: (id) => ({ id }) },
  { type: 'AudienceSync', label: 'triggerAudienceSync', query: MUTATIONS.triggerAudienceSync, variables: (id) => ({ id }) },
  { type: 'Audience', label: 'updateAudience', query: `mutation UpdateAudience($id: ID!) { updateAudience(id: $id, input: { name: "Renamed" }) { ${RESULT} } }`, variables: (id) => ({ id }) },
  { type: 'Audience', label: 'deleteAudience', query: `mutation DeleteAudience($id: ID!) { deleteAudience(id: $id) { ${RESULT} } }`, variables: (id) => ({ id }) },
  {
    type: 'Audience',
    label: 'updateAudienceSync(suppressionAudienceIds)',
    query: MUTATIONS.updateAudienceSync,
    variables: (id, caller) => ({ id: caller.own.ids.AudienceSync, input: { suppressionAudienceIds: [id] } }),
  },
  { type: 'Audience', label: 'audienceSyncs(audienceId)', query: 'query Syncs($id: ID) { audienceSyncs(audienceId: $id) { edges { node { id } } } }', variables: (id) => ({ id }) },
];

/** An otherwise valid operation naming an object of the other workspace, and its twin naming nothing. */
export function twinRequests(random: Random, caller: Caller): TwinRequests {
  const operation = random.pick(TWIN_OPERATIONS);
  const { type } = operation;
  const foreignId = caller.other.ids[type];
  const unknown = unknownId(type);
  const request = (id: string) => graphqlRequest(caller, `${operation.label}`, ['tenancy'], operation.query, operation.variables(id, caller));
  return { label: `${caller.name}: ${operation.label} with another workspace's ${type} id`, probe: request(foreignId), unknown: request(unknown), ids: [foreignId, unknown] };
}

/** Id slots the tenancy twins do not reach (their ids have no object in the fuzz workspaces). */
const MORE_ID_SLOTS: { type: string; label: string; query: string; variables: (id: string, caller: Caller) => Record<string, unknown> }[] = [
  ...['Workspace', 'ApiKey', 'Destination', 'AudienceSync', 'Task'].map((type) => ({
    type,
    label: `node(${type})`,
    query: `query Node($id: ID!) { node(id: $id) { ${NODE_SELECTION} } }`,
    variables: (id: string) => ({ id }),
  })),
  { type: 'Audience', label: 'nodes(Audience, Task)', query: `query Nodes($ids: [ID!]!) { nodes(ids: $ids) { ${NODE_SELECTION} } }`, variables: (id, caller) => ({ ids: [id, caller.own.ids.Task] }) },
  { type: 'ApiKey', label: 'revokeApiKey', query: `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { ${RESULT} } }`, variables: (id) => ({ id }) },
  { type: 'Workspace', label: 'createApiKey(workspaceId)', query: `mutation CreateKey($id: ID!) { createApiKey(input: { name: "k", workspaceId: $id }) { ${RESULT} } }`, variables: (id) => ({ id }) },
  { type: 'Destination', label: 'audienceSyncs(destinationId)', query: 'query Syncs($id: ID) { audienceSyncs(destinationId: $id) { edges { node { id } } } }', variables: (id) => ({ id }) },
];

/** Every id slot with every malformed inner id (a well-formed global id whose id is not a UUID), each beside
 * the same request with an unknown id: they must answer alike, with no error. */
export function malformedInnerIdTwins(caller: Caller): TwinRequests[] {
  return [...TWIN_OPERATIONS, ...MORE_ID_SLOTS].flatMap((operation) =>
    MALFORMED_INNER_IDS.map((inner) => {
      const malformed = encodeGlobalID(operation.type, inner);
      const unknown = unknownId(operation.type);
      const request = (id: string) => graphqlRequest(caller, operation.label, ['malformed-inner-id'], operation.query, operation.variables(id, caller));
      return { label: `${caller.name}: ${operation.label} with the ${operation.type} id ${JSON.stringify(inner)}`, probe: request(malformed), unknown: request(unknown), ids: [malformed, unknown] };
    }),
  );
}

// ---- WebSocket ----------------------------------------------------------------------------------

/** A graphql-ws `subscribe` payload: hostile subscriptions, and invalid operations of every kind. */
export function webSocketOperation(random: Random, caller: Caller): { label: string; tags: string[]; payload: unknown } {
  const choice = random.int(5);
  if (choice <= 1) {
    const [field, argument, type] = random.pick<[string, string, NodeType]>([
      ['syncRunUpdated', 'runId', 'SyncRun'],
      ['audienceSyncRunUpdated', 'syncId', 'AudienceSync'],
      ['taskUpdated', 'taskId', 'Task'],
    ]);
    const { value, tag } = foreignOrBadId(random, caller, type);
    return {
      label: `${field}(${tag})`,
      tags: ['ws-subscription', tag],
      payload: { query: `subscription S($id: ID!) { ${field}(${argument}: $id) { id } }`, variables: { id: value } },
    };
  }
  if (choice === 2) {
    const request = mutationRequest(random, caller);
    return { label: request.label, tags: ['ws-mutation', ...request.tags], payload: JSON.parse(request.body as string) };
  }
  if (choice === 3) {
    const request = queryRequest(random, caller);
    return { label: request.label, tags: ['ws-query', ...request.tags], payload: JSON.parse(request.body as string) };
  }
  const request = documentRequest(random, caller);
  const payload = JSON.parse(request.body as string) as { query: string };
  return { label: request.label, tags: ['ws-document', ...request.tags], payload };
}

/** Raw graphql-ws frames that break the protocol; each is sent on a fresh, acknowledged connection. */
export const WEBSOCKET_PROTOCOL_ABUSE: [string, string | Buffer][] = [
  ['not JSON', 'not json'],
  ['empty object', '{}'],
  ['JSON array', '[]'],
  ['unknown message type', '{"type": "drop_tables"}'],
  ['second connection_init', '{"type": "connection_init", "payload": {}}'],
  ['subscribe without id', '{"type": "subscribe", "payload": {"query": "{ __typename }"}}'],
  ['subscribe with numeric id', '{"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}}'],
  ['subscribe without payload', '{"type": "subscribe", "id": "a"}'],
  ['subscribe with query not a string', '{"type": "subscribe", "id": "a", "payload": {"query": 123}}'],
  ['subscribe with variables a string', '{"type": "subscribe", "id": "a", "payload": {"query": "{ __typename }", "variables": "x"}}'],
  ['client sends next', '{"type": "next", "id": "a", "payload": {}}'],
  ['client sends error', '{"type": "error", "id": "a", "payload": []}'],
  ['complete of an unknown id', '{"type": "complete", "id": "nope"}'],
  ['pong with junk', '{"type": "pong", "payload": "x"}'],
  ['prototype pollution', '{"type": "subscribe", "id": "__proto__", "payload": {"query": "{ __typename }", "variables": {"__proto__": {"polluted": "yes"}}}}'],
  ['huge id', `{"type": "subscribe", "id": "${'i'.repeat(100_000)}", "payload": {"query": "{ __typename }"}}`],
  ['1 MB frame', JSON.stringify({ type: 'subscribe', id: 'big', payload: { query: `# ${'x'.repeat(MEGABYTE)}\n{ __typename }` } })],
  ['binary frame', Buffer.from([0xff, 0x00, 0xfe, 0x01])],
  ['NUL frame', '\u0000'],
];

/** connection_init payloads that must not authenticate. */
export function hostileConnectionParams(random: Random, workspace: FuzzWorkspace, revokedKey: string): { label: string; payload: unknown } {
  return random.pick<() => { label: string; payload: unknown }>([
    () => ({ label: 'no payload', payload: undefined }),
    () => ({ label: 'payload a string', payload: `Bearer ${workspace.writeKey}` }),
    () => ({ label: 'payload an array', payload: [workspace.writeKey] }),
    () => ({ label: 'authorization not a string', payload: { authorization: { $ne: null } } }),
    () => ({ label: 'apiKey not a string', payload: { apiKey: ['x'] } }),
    () => ({ label: 'unknown key', payload: { authorization: `Bearer ${workspace.writeKey}x` } }),
    () => ({ label: 'revoked key', payload: { authorization: `Bearer ${revokedKey}` } }),
    () => ({ label: 'injection', payload: { authorization: `Bearer ${random.pick(INJECTIONS).replace(/\s/g, '')}` } }),
    () => ({ label: 'huge key', payload: { apiKey: 'k'.repeat(100_000) } }),
    () => ({ label: 'unicode key', payload: { apiKey: random.pick(UNICODE_ODDITIES) } }),
  ])();
}
