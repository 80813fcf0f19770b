import { encodeGlobalID } from '@pothos/plugin-relay';
import { unknownId } from './global-ids.js';
import {
  BAD_SCHEDULES,
  BAD_WEBHOOK_URLS,
  INJECTIONS,
  INVALID_MEMBERS,
  MEGABYTE,
  NUL_TEXT,
  RESULT,
  WRONG_TYPES,
  extraFieldFault,
  foreignOrBadId,
  graphqlRequest,
  hugeString,
  idFault,
  invalidMemberFault,
  nameFault,
  nulFault,
  pageArguments,
  setPath,
  text,
  validMember,
  wrongTypeFault,
  type Caller,
  type Fault,
  type HostileRequest,
  type Random,
} from './hostile-inputs.js';

// Generators of hostile requests for the engine's API surface: segment rules, split groups,
// suppressions, frequency schedules, contacts, syncAudiences and CSV imports (multipart).

/** Stands for a JSON number JavaScript cannot hold; replaced in the serialized body. */
const HUGE_NUMBER = '@@1e400@@';
const withHugeNumbers = (body: string) => body.split(JSON.stringify(HUGE_NUMBER)).join('1e400');

// ---- Segment rules ------------------------------------------------------------------------------

function validRule(random: Random): Record<string, unknown> {
  return random.pick<() => Record<string, unknown>>([
    () => ({ field: 'email', operator: 'EXISTS' }),
    () => ({ field: 'country', operator: 'IN', value: ['US', 'FR'] }),
    () => ({ and: [{ field: 'createdAt', operator: 'WITHIN_LAST_DAYS', value: 30 }, { not: { field: 'attributes.plan', operator: 'EQ', value: 'free' } }] }),
    () => ({ or: [{ field: 'attributes.score', operator: 'GT', value: 10 }, { field: 'phone', operator: 'EXISTS' }] }),
  ])();
}

const nest = (depth: number, leaf: Record<string, unknown>, combinator: 'not' | 'and' | 'or') => {
  let rule = leaf;
  for (let level = 0; level < depth; level++) rule = combinator === 'not' ? { not: rule } : { [combinator]: [rule] };
  return rule;
};

const BAD_FIELDS = [
  '',
  'attributes',
  'attributes.',
  'attributes..a',
  'attributes.a b',
  "attributes.x'; DROP TABLE contact; --",
  'attributes.a.b.c.d.e.f',
  `attributes.${'k'.repeat(65)}`,
  'attributes.a\u0000b',
  'email\u0000',
  'workspace_id',
  'password',
  'key_hash',
  'Email',
  ' email',
  'attributes->>\'a\'',
  'attributes.🙂',
];

const BAD_DATES = ['2023-02-30', '2023-13-01', '0000-00-00', 'not a date', '+275760-09-13T00:00:00Z', '2023-01-01T25:00:00Z', '1e400', 'infinity', '-infinity', 'epoch', 'now', 'today', 'allballs'];

/** A rule the gateway must refuse, and the tag naming what is wrong with it. */
export function badRule(random: Random): { rule: unknown; tag: string } {
  return random.pick<() => { rule: unknown; tag: string }>([
    () => ({ rule: nest(random.pick([6, 50, 500]), { field: 'email', operator: 'EXISTS' }, random.pick(['not', 'and', 'or'] as const)), tag: 'deep-rule' }),
    () => ({ rule: { or: Array.from({ length: random.pick([51, 1000]) }, () => ({ field: 'email', operator: 'EXISTS' })) }, tag: 'too-many-conditions' }),
    () => ({ rule: { field: 'country', operator: random.pick(['IN', 'NOT_IN']), value: Array.from({ length: random.pick([1001, 100_000]) }, (_, index) => `C${index}`) }, tag: 'huge-in-list' }),
    () => ({ rule: { field: random.pick(BAD_FIELDS), operator: 'EQ', value: 'x' }, tag: 'bad-rule-field' }),
    () => ({ rule: { field: 'email', operator: random.pick(['EQ', 'NEQ', 'GT', 'IN']), value: random.pick(NUL_TEXT) }, tag: 'nul-in-rule' }),
    () => ({ rule: { field: 'attributes.note', operator: random.pick(['EQ', 'NEQ', 'LT']), value: random.pick(NUL_TEXT) }, tag: 'nul-in-rule' }),
    () => ({ rule: { field: 'attributes.note', operator: 'IN', value: ['ok', random.pick(NUL_TEXT)] }, tag: 'nul-in-rule' }),
    () => ({ rule: { field: random.pick(['createdAt', 'updatedAt', 'attributes.signedUpAt']), operator: random.pick(['GT', 'LTE', 'EQ']), value: random.pick(BAD_DATES) }, tag: 'bad-rule-date' }),
    () => ({ rule: { field: random.pick(['createdAt', 'attributes.signedUpAt']), operator: 'BETWEEN', value: [random.pick(BAD_DATES), '2024-01-01'] }, tag: 'bad-rule-date' }),
    () => ({ rule: { field: random.pick(['attributes.score', 'createdAt', 'email']), operator: random.pick(['GT', 'EQ', 'BETWEEN']), value: random.pick([HUGE_NUMBER, [HUGE_NUMBER, 1]]) }, tag: 'huge-number' }),
    () => ({ rule: { field: 'createdAt', operator: random.pick(['GT', 'EQ']), value: random.pick([1e308, -1e308, 2 ** 63, true]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: 'email', operator: random.pick(['EQ', 'NEQ', 'GT']), value: random.pick([{}, { $ne: null }, [1], null, ['a', 'b'], 'x'.repeat(256)]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: 'country', operator: random.pick(['IN', 'NOT_IN']), value: random.pick(['US', [], [{}], [['US']], [null], 5, null]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: random.pick(['attributes.score', 'createdAt']), operator: 'BETWEEN', value: random.pick([[1], [1, 2, 3], ['a', 2], [{}, {}], [true, false], 'x', [2, 1], null]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: random.pick(['createdAt', 'email', 'attributes.at']), operator: 'WITHIN_LAST_DAYS', value: random.pick([0, -1, 1.5, 36_501, 1e308, '30', null, [30]]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: 'email', operator: random.pick(['EXISTS', 'NOT_EXISTS']), value: random.pick(['x', 1, [], {}]) }, tag: 'bad-rule-value' }),
    () => ({ rule: { field: 'email', operator: random.pick(['LIKE', 'eq', '', 'EQ; DROP', 7, null]), value: 'x' }, tag: 'bad-rule-operator' }),
    () => ({ rule: random.pick([{}, { field: 'email' }, { operator: 'EXISTS' }, { and: [] }, { or: [] }, { and: [{}] }, { not: {} }, { and: [{ field: 'email', operator: 'EXISTS' }], field: 'email', operator: 'EXISTS' }, { not: { field: 'email', operator: 'EXISTS' }, or: [{ field: 'phone', operator: 'EXISTS' }] }]), tag: 'malformed-rule' }),
    () => ({ rule: { field: 'email', operator: 'EQ', value: 'x', extra: random.pick(INJECTIONS) }, tag: 'unknown-input-field' }),
    () => ({ rule: random.pick([...WRONG_TYPES, 'email EXISTS', null]), tag: 'wrong-type-rule' }),
    () => ({ rule: { field: 'attributes.tags', operator: random.pick(['EQ', 'IN']), value: random.pick([[{ a: 1 }], { a: [1, 2] }, [[1]]]) }, tag: 'bad-rule-value' }),
  ])();
}

const segmentRuleFault =
  (path: string): Fault =>
  (variables, random) => {
    const { rule, tag } = badRule(random);
    setPath(variables, path, rule);
    return tag;
  };

// ---- Split groups -------------------------------------------------------------------------------

export const BAD_SPLIT_GROUPS: (() => unknown)[] = [
  () => [{ name: 'A', percent: 50 }, { name: 'B', percent: 49.99 }],
  () => [{ name: 'A', percent: 50 }, { name: 'B', percent: 50.01 }],
  () => [{ name: 'A', percent: 33.333 }, { name: 'B', percent: 66.667 }],
  () => [{ name: 'A', percent: -10 }, { name: 'B', percent: 110 }],
  () => [{ name: 'A', percent: 0 }, { name: 'B', percent: 100 }],
  () => [{ name: 'A', percent: 'NaN' }, { name: 'B', percent: 50 }],
  () => [{ name: 'A', percent: HUGE_NUMBER }, { name: 'B', percent: 50 }],
  () => [{ name: 'A', percent: 1e308 }, { name: 'B', percent: -1e308 }],
  () => [{ name: 'A', percent: 5e-324 }, { name: 'B', percent: 100 }],
  () => [{ name: 'A', percent: null }],
  () => [{ name: 'A', percent: 50 }, { name: 'A', percent: 50 }],
  () => [{ name: '', percent: 100 }],
  () => [{ name: '   ', percent: 100 }],
  () => [{ name: 'g'.repeat(65), percent: 100 }],
  () => [{ name: 'A\u0000', percent: 100 }],
  () => [{ name: "A'; DROP TABLE audience; --", percent: 50 }, { name: 'B', percent: 50.001 }],
  () => [{ name: 'A', percent: 100, extra: 1 }],
  () => [{ percent: 100 }],
  () => Array.from({ length: 101 }, (_, index) => ({ name: `g${index}`, percent: index === 0 ? 0 : 1 })),
  () => Array.from({ length: 10_000 }, (_, index) => ({ name: `g${index}`, percent: 0.01 })),
  () => 'A:50,B:50',
  () => [null],
];

const splitGroupsFault =
  (path: string): Fault =>
  (variables, random) => {
    setPath(variables, path, random.pick(BAD_SPLIT_GROUPS)());
    return 'invalid-split-groups';
  };

// ---- Syncs: split group, suppressions, schedules ------------------------------------------------

const BAD_FREQUENCY_SCHEDULES: unknown[] = [
  { frequency: 'hourly' },
  { frequency: 'YEARLY' },
  { frequency: 'DAILY', cadenceHours: 24 },
  { frequency: 'WEEKLY', cron: '0 0 * * 1' },
  { frequency: 'HOURLY', timezone: 'x'.repeat(10_000) },
  { frequency: 'DAILY', timezone: 'UTC\u0000' },
  { frequency: 'DAILY', timezone: "Europe/Paris'; DROP TABLE audience_sync; --" },
  { frequency: 'DAILY', timezone: 'Etc/GMT+99' },
  { frequency: 'DAILY', timezone: '+25:00' },
  { frequency: ['DAILY'] },
  { frequency: 'DAILY', timezone: 7 },
];

function suppressionFault(random: Random, caller: Caller): { value: unknown; tag: string } {
  const own = caller.own.ids.Audience;
  return random.pick<() => { value: unknown; tag: string }>([
    () => {
      const { value, tag } = foreignOrBadId(random, caller, 'Audience');
      return { value: [value], tag: `suppression-${tag}` };
    },
    () => ({ value: [caller.other.ids.Audience, caller.other.ids.Audience], tag: 'suppression-foreign-id' }),
    () => ({ value: [own], tag: 'suppression-self' }),
    () => ({ value: [own, own], tag: 'suppression-self' }),
    () => ({ value: Array.from({ length: 21 }, () => unknownId('Audience')), tag: 'suppression-too-many' }),
    () => ({ value: Array.from({ length: random.pick([21, 1000]) }, () => own), tag: 'suppression-too-many' }),
    () => {
      const id = unknownId('Audience');
      return { value: [id, id], tag: 'suppression-unknown-id' };
    },
    () => ({ value: [caller.own.ids.Destination], tag: 'suppression-id-of-another-type' }),
    () => ({ value: [encodeGlobalID('Audience', random.pick(NUL_TEXT))], tag: 'suppression-nul-id' }),
    () => ({ value: random.pick(['x', 5, [null], [[own]]]), tag: 'wrong-type-suppression' }),
  ])();
}

function engineSyncFaults(prefix: string): Fault[] {
  return [
    (variables, random) => {
      setPath(variables, `${prefix}.splitGroup`, random.pick(['A', 'nope', '', ' ', 'g'.repeat(65), hugeString(random), ...NUL_TEXT, ...INJECTIONS, 5, ['A']]));
      return 'invalid-split-group';
    },
    (variables, random, caller) => {
      const { value, tag } = suppressionFault(random, caller);
      setPath(variables, `${prefix}.suppressionAudienceIds`, value);
      return tag;
    },
    (variables, random) => {
      setPath(variables, `${prefix}.schedule`, random.pick([...BAD_FREQUENCY_SCHEDULES, ...BAD_SCHEDULES]));
      return 'invalid-schedule';
    },
    nameFault(`${prefix}.name`),
    nulFault(`${prefix}.name`),
  ];
}

// ---- Contacts -----------------------------------------------------------------------------------

export const BAD_CONTACTS: unknown[] = [
  ...INVALID_MEMBERS,
  { email: 'a@b' },
  { email: 'two@@example.com' },
  { email: 'space in@example.com' },
  { email: 'ada@example.com\u0000' },
  { phone: '+1555555555555555555' },
  { phone: '0' },
  { phone: '++14155550100' },
  { phone: '+1415555\u00000100' },
  { email: 'ok@example.com', country: "U'" },
  { email: 'ok@example.com', country: 'U\u0000' },
  { email: 'ok@example.com', zip: 'z'.repeat(10_000) },
  { email: 'ok@example.com', attributes: { note: 'a\u0000b' } },
  { email: 'ok@example.com', attributes: { 'a\u0000': 1 } },
  { email: 'ok@example.com', firstName: 'f'.repeat(10_000) },
  { email: 'ok@example.com', attributes: { n: HUGE_NUMBER } },
  { email: 'ok@example.com', attributes: { deep: [{ n: HUGE_NUMBER }] } },
];

const contactsFaults: Fault[] = [
  invalidMemberFault('contacts', BAD_CONTACTS),
  (variables, random) => {
    // (A single object would be valid: GraphQL coerces it to a list of one.)
    variables.contacts = random.pick([[], 'x', 5, [null], [[]]]);
    return 'wrong-type-members';
  },
];

/** Over the 100,000 limit (a ~3 MB body); sent by largeEngineRequests. */
let tooManyContacts: { email: string }[] | undefined;
const tooManyContactsFault: Fault = (variables) => {
  tooManyContacts ??= Array.from({ length: 100_001 }, (_, index) => ({ email: `c${index}@example.com` }));
  variables.contacts = tooManyContacts;
  return 'too-many-members';
};

// ---- syncAudiences ------------------------------------------------------------------------------

const HASH = 'a'.repeat(64);
const BAD_HASHES: unknown[] = [
  'a'.repeat(63),
  'a'.repeat(65),
  'A'.repeat(64),
  'g'.repeat(64),
  'ada@example.com',
  '+14155550100',
  '',
  `${'a'.repeat(63)}\u0000`,
  `${'a'.repeat(60)}' --`,
  5,
  ['a'.repeat(64)],
];

const BAD_NOTIFY_URLS = [...BAD_WEBHOOK_URLS, 'http://169.254.169.254/', 'https://169.254.169.254/latest/meta-data/iam/', 'https://metadata.google.internal/', 'https://[fd00:ec2::254]/', 'https://127.0.0.1:9/x', 'https://0177.0.0.1/', 'https://hooks.example.com/\u0000', 'https://hooks.example.com/\r\nX-Injected: 1', 'h'.repeat(10_000)];

const BAD_NOTIFY_SECRETS: unknown[] = ['', 'short', 's'.repeat(31), 's'.repeat(1025), `${'s'.repeat(40)}\u0000`, `${'s'.repeat(40)}\n`, `${'s'.repeat(40)}\r\nX: 1`, `${'é'.repeat(40)}`, '🙂'.repeat(20), 5, ['s'.repeat(40)], { $ne: null }];

function validSyncAudiences(random: Random): Record<string, any> {
  return {
    input: {
      audiences: [
        {
          audienceId: `ext-${random.int(1000)}`,
          name: random.chance(0.5) ? text(random).slice(0, 200) : undefined,
          add: [{ externalId: `p-${random.int(1000)}`, hashedEmail: HASH, uids: random.chance(0.3) ? [{ type: 'MOBILE_AD_ID', value: '6d2b79f5-0000-4000-8000-000000000000' }] : undefined }],
          remove: random.chance(0.3) ? ['p-old'] : undefined,
        },
      ],
      notifyUrl: random.chance(0.3) ? 'https://hooks.example.com/done' : undefined,
      notifySecret: random.chance(0.2) ? 's'.repeat(40) : undefined,
    },
  };
}

let tooManySyncMembers: unknown[] | undefined;

const syncAudiencesFaults: Fault[] = [
  (variables, random) => {
    setPath(variables, 'input.audiences.0.add', [{ externalId: 'p-1', [random.pick(['hashedEmail', 'hashedPhone'])]: random.pick(BAD_HASHES) }]);
    return 'malformed-hash';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.add', [
      {
        externalId: 'p-1',
        uids: random.pick([
          [{ type: 'MOBILE_AD_ID', value: 'not-a-uuid' }],
          [{ type: 'MOBILE_AD_ID', value: '' }],
          [{ type: 'MOBILE_AD_ID', value: `6d2b79f5-0000-4000-8000-00000000000\u0000` }],
          [{ type: 'IDFA', value: '6d2b79f5-0000-4000-8000-000000000000' }],
          [{ type: 'MOBILE_AD_ID', value: '6d2b79f5-0000-4000-8000-000000000000' }, { type: 'MOBILE_AD_ID', value: '6d2b79f5-0000-4000-8000-000000000001' }],
          [{ type: 'MOBILE_AD_ID' }],
          [{ value: 'x'.repeat(MEGABYTE) }],
          'uid',
        ]),
      },
    ]);
    return 'bad-uids';
  },
  (variables) => {
    const audienceId = typeof variables.input?.audiences?.[0]?.audienceId === 'string' ? variables.input.audiences[0].audienceId : 'ext-1';
    setPath(variables, 'input.audiences', [{ audienceId, name: 'One' }, { audienceId, remove: ['p-2'] }]);
    return 'duplicate-audience-id';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.audienceId', random.pick(['', ' ', 'a'.repeat(256), ...NUL_TEXT, 5, null]));
    return 'invalid-audience-external-id';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.add.0.externalId', random.pick(['', 'x'.repeat(256), ...NUL_TEXT, 5]));
    return 'invalid-member';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.remove', random.pick([[''], ['x'.repeat(256)], [NUL_TEXT[1]], [null], 'p-1']));
    return 'invalid-member';
  },
  (variables) => {
    setPath(variables, 'input.audiences.0.delete', true);
    return 'delete-with-add';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.consentBasis', random.pick(['YES', '', 5]));
    return 'invalid-enum';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences', random.pick([[], null, 'x', [null], [{}]]));
    return 'no-audiences';
  },
  (variables, random) => {
    setPath(variables, 'input.notifyUrl', random.pick(BAD_NOTIFY_URLS));
    return 'forbidden-webhook-url';
  },
  (variables, random) => {
    setPath(variables, 'input.notifyUrl', 'https://hooks.example.com/done');
    setPath(variables, 'input.notifySecret', random.pick(BAD_NOTIFY_SECRETS));
    return 'invalid-notify-secret';
  },
  (variables) => {
    setPath(variables, 'input.notifyUrl', undefined);
    setPath(variables, 'input.notifySecret', 's'.repeat(40));
    return 'notify-secret-without-url';
  },
  (variables, random) => {
    setPath(variables, 'input.audiences.0.name', random.pick(['n'.repeat(256), ...NUL_TEXT, 5]));
    return 'invalid-name';
  },
  extraFieldFault('input'),
  wrongTypeFault('input'),
];

/** Over the 100,000-member limit (a ~9 MB body); sent by largeEngineRequests. */
const tooManySyncMembersFault: Fault = (variables) => {
  tooManySyncMembers ??= Array.from({ length: 100_001 }, (_, index) => ({ externalId: `p${index}`, hashedEmail: HASH }));
  setPath(variables, 'input.audiences.0.add', tooManySyncMembers);
  return 'too-many-members';
};

// ---- Mutations ----------------------------------------------------------------------------------

const ENGINE_MUTATIONS = {
  createAudience: `mutation EngineCreateAudience($input: CreateAudienceInput!) { createAudience(input: $input) { ${RESULT} } }`,
  updateAudience: `mutation EngineUpdateAudience($id: ID!, $input: UpdateAudienceInput!) { updateAudience(id: $id, input: $input) { ${RESULT} } }`,
  deleteAudience: `mutation EngineDeleteAudience($id: ID!) { deleteAudience(id: $id) { ${RESULT} } }`,
  upsertContacts: `mutation EngineUpsertContacts($contacts: [AudienceMemberInput!]!) { upsertContacts(contacts: $contacts) { ${RESULT} } }`,
  createAudienceSync: `mutation EngineCreateSync($input: CreateAudienceSyncInput!) { createAudienceSync(input: $input) { ${RESULT} } }`,
  updateAudienceSync: `mutation EngineUpdateSync($id: ID!, $input: UpdateAudienceSyncInput!) { updateAudienceSync(id: $id, input: $input) { ${RESULT} } }`,
  syncAudiences: `mutation EngineSyncAudiences($input: SyncAudiencesInput!) { syncAudiences(input: $input) { ${RESULT} } }`,
} as const;

type EngineMutationName = keyof typeof ENGINE_MUTATIONS;

/** The mutations this corpus covers (besides importAudienceMembers, sent as multipart). */
export const ENGINE_FUZZED_MUTATIONS = [...Object.keys(ENGINE_MUTATIONS), 'importAudienceMembers'];

interface EnginePlan {
  valid(random: Random, caller: Caller): Record<string, any>;
  faults: Fault[];
}

const ENGINE_PLANS: Record<EngineMutationName, EnginePlan> = {
  createAudience: {
    valid: (random) => ({
      input: {
        name: text(random),
        ...random.pick([{ segmentRule: validRule(random) }, { segmentTemplate: random.pick(['WITH_EMAIL', 'REACHABLE']) }, {}]),
        splitGroups: random.chance(0.4) ? [{ name: 'A', percent: 12.5 }, { name: 'B', percent: 87.5 }] : undefined,
      },
    }),
    faults: [
      segmentRuleFault('input.segmentRule'),
      segmentRuleFault('input.segmentRule'),
      segmentRuleFault('input.segmentRule'),
      splitGroupsFault('input.splitGroups'),
      splitGroupsFault('input.splitGroups'),
      (variables, random) => {
        setPath(variables, 'input.segmentTemplate', random.pick(['with_email', 'ALL', '', 5, ['REACHABLE'], "REACHABLE'--"]));
        return 'invalid-enum';
      },
      (variables, random) => {
        setPath(variables, 'input.segmentTemplate', 'WITH_EMAIL');
        setPath(variables, 'input.segmentRule', validRule(random));
        return 'rule-and-template';
      },
      nameFault('input.name'),
    ],
  },
  updateAudience: {
    valid: (random, caller) => ({ id: caller.own.ids.Audience, input: { name: text(random) } }),
    faults: [
      idFault('id', 'Audience'),
      // The caller's audience is STATIC: a rule is refused even when it is valid.
      (variables, random) => {
        setPath(variables, 'input.segmentRule', validRule(random));
        return 'rule-on-static-audience';
      },
      segmentRuleFault('input.segmentRule'),
      splitGroupsFault('input.splitGroups'),
      splitGroupsFault('input.splitGroups'),
      nameFault('input.name'),
      nulFault('input.description'),
      wrongTypeFault('input'),
    ],
  },
  deleteAudience: { valid: (_random, caller) => ({ id: caller.own.ids.Audience }), faults: [idFault('id', 'Audience')] },
  upsertContacts: {
    valid: (random) => ({ contacts: Array.from({ length: 1 + random.int(5) }, () => validMember(random)) }),
    faults: contactsFaults,
  },
  // The caller's audience already syncs to its destination: a valid creation is refused with a conflict.
  createAudienceSync: {
    valid: (random, caller) => ({
      input: {
        name: text(random),
        audienceId: caller.own.ids.Audience,
        destinationId: caller.own.ids.Destination,
        schedule: random.pick([{ frequency: 'DAILY', timezone: 'Europe/Paris' }, { frequency: 'HOURLY' }, undefined]),
      },
    }),
    faults: [...engineSyncFaults('input'), idFault('input.audienceId', 'Audience')],
  },
  updateAudienceSync: {
    valid: (random, caller) => ({ id: caller.own.ids.AudienceSync, input: { schedule: { frequency: random.pick(['DAILY', 'WEEKLY']), timezone: 'Asia/Tokyo' } } }),
    faults: [...engineSyncFaults('input'), idFault('id', 'AudienceSync')],
  },
  syncAudiences: { valid: validSyncAudiences, faults: syncAudiencesFaults },
};

/** A mutation of the engine's surface; a caller that may write only ever sends invalid variables. */
export function engineMutationRequest(random: Random, caller: Caller): HostileRequest {
  const name = random.pick(Object.keys(ENGINE_MUTATIONS) as EngineMutationName[]);
  const plan = ENGINE_PLANS[name];
  const variables = plan.valid(random, caller);
  const faultCount = caller.canWrite ? 1 + random.int(2) : random.int(3);
  const tags = Array.from({ length: faultCount }, () => random.pick(plan.faults)(variables, random, caller));
  const request = graphqlRequest(caller, `${name} [${tags.join(', ') || 'valid input'}]`, ['mutation', 'engine', ...tags], ENGINE_MUTATIONS[name], variables);
  request.body = withHugeNumbers(request.body as string);
  return request;
}

// ---- Queries ------------------------------------------------------------------------------------

/** contacts with hostile paging, and previewSegment with hostile (or valid) rules: reads only. */
export function engineQueryRequest(random: Random, caller: Caller): HostileRequest {
  if (random.chance(0.6)) {
    const { rule, tag } = random.pick<() => { rule: unknown; tag: string }>([
      () => ({ rule: validRule(random), tag: 'valid-rule' }),
      // Valid rules with hostile text or extreme numbers as values: compared as plain values, never as SQL.
      () => ({ rule: { field: `attributes.${random.pick(['a', '__proto__', 'constructor'])}`, operator: random.pick(['EQ', 'GT', 'IN']), value: random.pick(INJECTIONS) }, tag: 'rule-injection' }),
      () => ({ rule: { field: 'attributes.score', operator: random.pick(['GT', 'LT', 'EQ']), value: random.pick([1e308, -1e308, 5e-324, 2 ** 63, -(2 ** 63)]) }, tag: 'extreme-number' }),
      () => badRule(random),
      () => badRule(random),
      () => badRule(random),
    ])();
    const request = graphqlRequest(caller, `previewSegment(${tag})`, ['query', 'engine', tag], 'query EnginePreview($rule: SegmentRuleInput!) { previewSegment(rule: $rule) }', { rule });
    request.body = withHugeNumbers(request.body as string);
    return request;
  }
  const { variables, tags } = pageArguments(random, caller, { first: 0.6, last: 0.3, cursor: 0.5 });
  return graphqlRequest(
    caller,
    `contacts(${JSON.stringify(variables).slice(0, 120)})`,
    ['query', 'engine', ...tags],
    'query EngineContacts($first: Int, $last: Int, $after: String, $before: String) { contacts(first: $first, last: $last, after: $after, before: $before) { pageInfo { hasNextPage endCursor } edges { cursor node { id key email attributes } } } }',
    variables,
  );
}

// ---- CSV imports (multipart) --------------------------------------------------------------------

const IMPORT_QUERY = `mutation EngineImport($audienceId: ID!, $file: File!) { importAudienceMembers(audienceId: $audienceId, file: $file) { ${RESULT} } }`;
const VALID_CSV = 'email,first_name\nada@example.com,Ada\ngrace@example.com,Grace\n';

interface MultipartPart {
  name: string;
  filename?: string;
  content: string | Uint8Array;
}

function multipartBody(boundary: string, parts: MultipartPart[]): Uint8Array {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`;
    const type = part.filename === undefined ? '' : 'Content-Type: text/csv\r\n';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.content), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return new Uint8Array(Buffer.concat(chunks));
}

let tenMegabyteHeader: string | undefined;

/** CSV files importAudienceMembers must refuse (their header row is checked before the task is queued), with their tags. */
const BAD_FILES: [string, () => string | Uint8Array][] = [
  ['empty-file', () => ''],
  ['empty-file', () => '\ufeff \r\n'],
  ['header-only', () => 'email,first_name\n'],
  ['header-only', () => 'email'],
  ['no-identifier-column', () => 'first_name,last_name\nAda,Lovelace\n'],
  ['binary-garbage', () => Uint8Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) % 256)],
  ['binary-garbage', () => new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0xff, 0xfe])],
  ['nul-in-csv', () => 'em\u0000ail\nada@example.com\n'],
  ['nul-in-csv', () => '\u0000\u0000\u0000'],
  ['huge-field', () => (tenMegabyteHeader ??= `"${'x'.repeat(10 * MEGABYTE)}",email\nada@example.com\n`)],
  ['unterminated-quote', () => '"email,note\nada@example.com,x\n'],
  ['duplicate-header', () => 'email,email\nada@example.com,grace@example.com\n'],
];

/** Files with a valid header whose rows are bad: the task counts those rows as unusable, so these go
 * only with a fault that makes the request itself invalid. */
let tenMegabyteField: string | undefined;
const BAD_ROW_FILES: [string, () => string | Uint8Array][] = [
  ['nul-in-csv', () => 'email,first_name\nada@example.com,A\u0000da\n'],
  ['huge-field', () => (tenMegabyteField ??= `email,note\nada@example.com,"${'x'.repeat(10 * MEGABYTE)}"\n`)],
  ['unterminated-quote', () => 'email,note\nada@example.com,"never closed\n'],
  ['utf16-csv', () => new Uint8Array(Buffer.from(`\ufeff${VALID_CSV}`, 'utf16le'))],
  ['csv-injection', () => `email,note\n"=cmd|' /C calc'!A0",x\n${INJECTIONS.map((value) => `"${value.replace(/"/g, '""')}",x`).join('\n')}\n`],
];

/** A hostile importAudienceMembers request over HTTP: a broken multipart request, or a valid one with a bad file or audience. */
export function importRequest(random: Random, caller: Caller): HostileRequest {
  const boundary = `fuzz${random.int(1e9)}`;
  let audienceId: unknown = caller.own.ids.Audience;
  let operations: string | undefined = JSON.stringify({ query: IMPORT_QUERY, variables: { audienceId, file: null } });
  let map: string | undefined = JSON.stringify({ 0: ['variables.file'] });
  let files: MultipartPart[] = [{ name: '0', filename: 'members.csv', content: VALID_CSV }];
  const tags = ['mutation', 'engine', 'multipart'];
  // Ingredients that leave a request valid (yoga ignores an unmapped file and keeps the last of two
  // files mapped to one variable): each goes with a fault.
  const ingredients: (() => string)[] = [
    () => {
      map = JSON.stringify({ 0: ['variables.file'], 1: ['variables.file'] });
      files = [...files, { name: '1', filename: 'second.csv', content: VALID_CSV }];
      return 'two-files';
    },
    () => {
      files = [...files, { name: '1', filename: 'unmapped.csv', content: VALID_CSV }];
      return 'unmapped-file';
    },
    () => {
      const [tag, content] = random.pick(BAD_ROW_FILES);
      files = [{ name: '0', filename: random.pick(['members.csv', '../../etc/passwd', 'a\u0000.csv', '']), content: content() }];
      return tag;
    },
  ];
  const faults: (() => string)[] = [
    () => {
      map = undefined;
      return 'missing-map';
    },
    () => {
      map = JSON.stringify(random.pick([{ 0: ['variables.audienceId'] }, { 0: ['variables.nope'] }, { 0: ['variables.file.x'] }, { 9: ['variables.file'] }, { 0: [] }, [], { 0: ['variables.__proto__.polluted'] }, { 0: 5 }, { 0: [5] }, { 0: [null] }, null, 7]));
      return 'map-wrong-variable';
    },
    () => {
      files = [];
      return 'missing-file';
    },
    () => {
      operations = random.pick([undefined, '{bad', 'null', '5', '"x"', 'true', '[]', JSON.stringify({ query: IMPORT_QUERY })]);
      return 'bad-operations';
    },
    () => {
      operations = JSON.stringify({ query: IMPORT_QUERY, variables: { audienceId, file: null } });
      map = JSON.stringify({ 0: ['variables.file'] });
      files = [{ name: '0', content: 'email\nada@example.com\n' }];
      return 'file-as-text-field';
    },
    () => {
      const [tag, content] = random.pick(BAD_FILES);
      files = [{ name: '0', filename: random.pick(['members.csv', '../../etc/passwd', 'a\u0000.csv', '']), content: content() }];
      return tag;
    },
    () => {
      const { value, tag } = foreignOrBadId(random, caller, 'Audience');
      audienceId = value;
      operations = JSON.stringify({ query: IMPORT_QUERY, variables: { audienceId, file: null } });
      return tag;
    },
  ];
  if (random.chance(0.4)) tags.push(random.pick(ingredients)());
  const faultCount = caller.canWrite ? 1 + random.int(2) : random.int(2);
  for (let index = 0; index < faultCount; index++) tags.push(random.pick(faults)());
  const parts: MultipartPart[] = [
    ...(operations === undefined ? [] : [{ name: 'operations', content: operations }]),
    ...(map === undefined ? [] : [{ name: 'map', content: map }]),
    ...files,
  ];
  return {
    label: `${caller.name}: importAudienceMembers [${tags.slice(3).join(', ') || 'valid input'}]`,
    tags,
    transport: 'http',
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      ...(caller.authorization ? { authorization: caller.authorization } : {}),
    },
    body: multipartBody(boundary, parts),
  };
}

/** The largest inputs, each sent once by `caller` (who may write): over the 100,000-member limits,
 * 10,000 split groups, IN lists of 100,000 values, and 10 MB CSV fields (in the header, and in a row
 * of a file sent to another workspace's audience). */
export function largeEngineRequests(random: Random, caller: Caller): HostileRequest[] {
  const hugeInList = { field: 'country', operator: 'IN', value: Array.from({ length: 100_000 }, (_, index) => `C${index}`) };
  const mutation = (name: EngineMutationName, tag: string, fault: (variables: Record<string, any>) => void) => {
    const variables = ENGINE_PLANS[name].valid(random, caller);
    fault(variables);
    return graphqlRequest(caller, `${name} [${tag}]`, ['mutation', 'engine', 'large', tag], ENGINE_MUTATIONS[name], variables);
  };
  const upload = (audienceId: string, content: string, tag: string): HostileRequest => {
    const boundary = `large${random.int(1e9)}`;
    return {
      label: `${caller.name}: importAudienceMembers [${tag}]`,
      tags: ['mutation', 'engine', 'multipart', 'large', tag],
      transport: 'http',
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...(caller.authorization ? { authorization: caller.authorization } : {}) },
      body: multipartBody(boundary, [
        { name: 'operations', content: JSON.stringify({ query: IMPORT_QUERY, variables: { audienceId, file: null } }) },
        { name: 'map', content: JSON.stringify({ 0: ['variables.file'] }) },
        { name: '0', filename: 'members.csv', content },
      ]),
    };
  };
  return [
    mutation('upsertContacts', 'too-many-members', (variables) => tooManyContactsFault(variables, random, caller)),
    mutation('syncAudiences', 'too-many-members', (variables) => tooManySyncMembersFault(variables, random, caller)),
    mutation('createAudience', 'invalid-split-groups', (variables) =>
      setPath(variables, 'input.splitGroups', Array.from({ length: 10_000 }, (_, index) => ({ name: `g${index}`, percent: 0.01 }))),
    ),
    mutation('createAudience', 'huge-in-list', (variables) => setPath(variables, 'input.segmentRule', hugeInList)),
    graphqlRequest(caller, 'previewSegment(huge-in-list)', ['query', 'engine', 'large', 'huge-in-list'], 'query EnginePreviewLarge($rule: SegmentRuleInput!) { previewSegment(rule: $rule) }', {
      rule: { not: hugeInList },
    }),
    upload(caller.own.ids.Audience, (tenMegabyteHeader ??= `"${'x'.repeat(10 * MEGABYTE)}",email\nada@example.com\n`), 'huge-field'),
    upload(caller.other.ids.Audience, (tenMegabyteField ??= `email,note\nada@example.com,"${'x'.repeat(10 * MEGABYTE)}"\n`), 'huge-field'),
  ];
}
