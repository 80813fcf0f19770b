import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { graphql } from '../generated/gql.js';
import type {
  AudienceMemberInput,
  CreateAudienceInput,
  SegmentRuleInput,
  SplitGroupInput,
  UpdateAudienceInput,
} from '../generated/graphql.js';
import { answersToForeignAndUnknownId, unknownId } from '../support/global-ids.js';
import { AddAudienceMembers } from '../support/operations.js';
import { createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';
import { expectNothingWritten } from '../support/tables.js';

const suite = useGatewaySuite({ reset: true });

const SegCreateAudience = graphql(`
  mutation SegCreateAudience($input: CreateAudienceInput!) {
    createAudience(input: $input) {
      __typename
      ... on CreateAudienceSuccess { audience { id name kind segmentRule memberCount splitGroups { name percent memberCount } } }
      ... on ValidationError { field message issues { field message } }
    }
  }
`);

const SegUpdateAudience = graphql(`
  mutation SegUpdateAudience($id: ID!, $input: UpdateAudienceInput!) {
    updateAudience(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSuccess { audience { id name description kind segmentRule memberCount splitGroups { name percent memberCount } } }
      ... on ValidationError { field message issues { field message } }
      ... on NotFoundError { field message }
    }
  }
`);

const SegUpsertContacts = graphql(`
  mutation SegUpsertContacts($contacts: [AudienceMemberInput!]!) {
    upsertContacts(contacts: $contacts) {
      __typename
      ... on UpsertContactsSuccess { created updated }
      ... on ValidationError { field message issues { field message } }
    }
  }
`);

const SegContacts = graphql(`
  query SegContacts($after: String) {
    contacts(first: 2, after: $after) {
      edges { node { id key email phone country attributes } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const SegTemplates = graphql(`
  query SegTemplates {
    segmentTemplates { key name description rule }
  }
`);

const SegPreview = graphql(`
  query SegPreview($rule: SegmentRuleInput!) {
    previewSegment(rule: $rule)
  }
`);

const SegCreateSync = graphql(`
  mutation SegCreateSync($input: CreateAudienceSyncInput!) {
    createAudienceSync(input: $input) {
      __typename
      ... on CreateAudienceSyncSuccess { audienceSync { id splitGroup suppressionAudiences { id name kind } } }
      ... on ValidationError { field message }
      ... on NotFoundError { field message }
      ... on Error { code message }
    }
  }
`);

const SegUpdateSync = graphql(`
  mutation SegUpdateSync($id: ID!, $input: UpdateAudienceSyncInput!) {
    updateAudienceSync(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSyncSuccess { audienceSync { id splitGroup suppressionAudiences { id name } } }
      ... on ValidationError { field message }
      ... on NotFoundError { field message }
    }
  }
`);

const createAudience = async (input: CreateAudienceInput, apiKey?: string) =>
  dataOf(await suite.gateway.execute(SegCreateAudience, { input }, { apiKey })).createAudience;
const updateAudience = async (id: string, input: UpdateAudienceInput) =>
  dataOf(await suite.gateway.execute(SegUpdateAudience, { id, input })).updateAudience;
const upsertContacts = async (contacts: AudienceMemberInput[], apiKey?: string) =>
  dataOf(await suite.gateway.execute(SegUpsertContacts, { contacts }, { apiKey })).upsertContacts;
const preview = async (rule: SegmentRuleInput) => dataOf(await suite.gateway.execute(SegPreview, { rule })).previewSegment;

async function createSegment(segmentRule: SegmentRuleInput, splitGroups?: SplitGroupInput[]) {
  return expectType(await createAudience({ name: 'Segment', segmentRule, splitGroups }), 'CreateAudienceSuccess').audience;
}

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY).toISOString();

/** Contacts whose attributes mix JSON types under the same keys. */
const CONTACTS: AudienceMemberInput[] = [
  { email: 'ada@example.com', country: 'gb', attributes: { score: 12.5, plan: { tier: 'gold' }, lastOrder: daysAgo(2) } },
  { email: 'grace@example.com', phone: '+14155550100', attributes: { score: 5, plan: { tier: 'silver' }, lastOrder: '2025-06-01' } },
  { email: 'linus@example.org', attributes: { score: '7', lastOrder: 'not a date' } },
  { phone: '+14155550101', attributes: { score: true, lastOrder: '2023-02-29' } },
  { externalId: 'crm-5', mobileAdId: 'AEBE52E7-03EE-455A-B3C4-E57283966239', attributes: { score: null, vip: false } },
];

describe('segment rules', () => {
  test.each<[string, string, SegmentRuleInput]>([
    ['a text attribute compared with a number', 'input.segmentRule.and.1.value', {
      and: [{ field: 'email', operator: 'EXISTS' }, { field: 'attributes.score', operator: 'GT', value: 'abc' }],
    }],
    ['an unknown field', 'input.segmentRule.or.0.field', { or: [{ field: 'nickname', operator: 'EQ', value: 'x' }] }],
    ['an attribute key with a space', 'input.segmentRule.field', { field: 'attributes.a b', operator: 'EXISTS' }],
    ['an operator the field does not take', 'input.segmentRule.operator', { field: 'email', operator: 'GT', value: 'a' }],
    ['a condition and a combinator in one node', 'input.segmentRule', {
      field: 'email', operator: 'EXISTS', and: [{ field: 'phone', operator: 'EXISTS' }],
    }],
    ['an empty and', 'input.segmentRule.and', { and: [] }],
    ['six levels of nesting', 'input.segmentRule.not.not.not.not.not', {
      not: { not: { not: { not: { not: { field: 'email', operator: 'EXISTS' } } } } },
    }],
    ['51 conditions', 'input.segmentRule', { or: Array.from({ length: 51 }, () => ({ field: 'email', operator: 'EXISTS' as const })) }],
    ['an IN list of 1,001 values', 'input.segmentRule.value', {
      field: 'country', operator: 'IN', value: Array.from({ length: 1001 }, (_, i) => `C${i}`),
    }],
    ['an IN list holding an object', 'input.segmentRule.value.1', { field: 'attributes.tier', operator: 'IN', value: ['a', { b: 1 }] }],
    ['BETWEEN with its bounds reversed', 'input.segmentRule.value.1', {
      field: 'createdAt', operator: 'BETWEEN', value: ['2026-02-01T00:00:00Z', '2026-01-01T00:00:00Z'],
    }],
    ['BETWEEN mixing a number and a date', 'input.segmentRule.value.1', {
      field: 'attributes.score', operator: 'BETWEEN', value: [1, '2026-01-01'],
    }],
    ['EXISTS with a value', 'input.segmentRule.value', { field: 'phone', operator: 'EXISTS', value: 'x' }],
    ['WITHIN_LAST_DAYS of a fraction', 'input.segmentRule.value', { field: 'createdAt', operator: 'WITHIN_LAST_DAYS', value: 1.5 }],
    ['a date that is not one', 'input.segmentRule.value', { field: 'updatedAt', operator: 'GTE', value: '2026-13-01' }],
  ])('%s is a ValidationError on %s and creates nothing', async (_case, field, segmentRule) => {
    const result = await expectNothingWritten(() => createAudience({ name: 'Bad', segmentRule }));

    expect(expectType(result, 'ValidationError').field).toBe(field);
  });

  test('five levels of nesting and 50 conditions are accepted', async () => {
    const deep = await createSegment({ not: { not: { not: { not: { field: 'email', operator: 'EXISTS' } } } } });
    expect(deep.segmentRule).toEqual({ not: { not: { not: { not: { field: 'email', operator: 'EXISTS' } } } } });
    const wide = await createSegment({ or: Array.from({ length: 50 }, () => ({ field: 'email', operator: 'EXISTS' as const })) });
    expect(wide.kind).toBe('SEGMENT');
  });

  test('conditions over text fields, attributes of mixed JSON types and dates count the right contacts', async () => {
    expect(expectType(await upsertContacts(CONTACTS), 'UpsertContactsSuccess')).toEqual({
      __typename: 'UpsertContactsSuccess',
      created: 5,
      updated: 0,
    });
    const cases: [SegmentRuleInput, number][] = [
      [{ field: 'email', operator: 'EQ', value: ' ADA@example.com ' }, 1],
      [{ field: 'email', operator: 'NEQ', value: 'ada@example.com' }, 4],
      [{ field: 'country', operator: 'IN', value: ['GB', 'fr'] }, 1],
      [{ field: 'country', operator: 'NOT_IN', value: ['GB'] }, 4],
      [{ field: 'phone', operator: 'NOT_EXISTS' }, 3],
      [{ field: 'mobileAdId', operator: 'EQ', value: 'aebe52e7-03ee-455a-b3c4-e57283966239' }, 1],
      // Only numbers compare with a number: "7" (text) and true (boolean, above numbers in jsonb's order) do not.
      [{ field: 'attributes.score', operator: 'GT', value: 6 }, 1],
      [{ field: 'attributes.score', operator: 'LTE', value: 12.5 }, 2],
      [{ field: 'attributes.score', operator: 'BETWEEN', value: [5, 5] }, 1],
      [{ field: 'attributes.score', operator: 'EQ', value: '7' }, 1],
      [{ field: 'attributes.score', operator: 'EQ', value: 7 }, 0],
      [{ field: 'attributes.score', operator: 'IN', value: [5, true, 'x'] }, 2],
      [{ field: 'attributes.score', operator: 'EXISTS' }, 4],
      [{ field: 'attributes.score', operator: 'NOT_EXISTS' }, 1],
      [{ field: 'attributes.vip', operator: 'EQ', value: false }, 1],
      [{ field: 'attributes.plan.tier', operator: 'EQ', value: 'gold' }, 1],
      [{ field: 'attributes.plan.tier', operator: 'NEQ', value: 'gold' }, 4],
      // Dates in strings: the invalid ones ("not a date", 2023-02-29) match no range and raise no error.
      [{ field: 'attributes.lastOrder', operator: 'WITHIN_LAST_DAYS', value: 30 }, 1],
      [{ field: 'attributes.lastOrder', operator: 'LT', value: '2026-01-01T00:00:00Z' }, 1],
      [{ field: 'attributes.lastOrder', operator: 'BETWEEN', value: ['2020-01-01', daysAgo(-1)] }, 2],
      [{ field: 'createdAt', operator: 'WITHIN_LAST_DAYS', value: 1 }, 5],
      [{ field: 'createdAt', operator: 'LT', value: daysAgo(1) }, 0],
      [{ and: [{ field: 'email', operator: 'EXISTS' }, { not: { field: 'phone', operator: 'EXISTS' } }] }, 2],
      [{ or: [{ field: 'attributes.score', operator: 'GT', value: 10 }, { field: 'externalId', operator: 'EXISTS' }] }, 2],
    ];
    for (const [rule, expected] of cases) expect(await preview(rule), JSON.stringify(rule)).toBe(expected);
  });

  test('an invalid preview rule is an error naming the path', async () => {
    const result = await suite.gateway.execute(SegPreview, { rule: { and: [{ field: 'zip', operator: 'LT', value: '1' }] } });
    expect(result.errors?.[0]?.message).toMatch(/^rule\.and\.0\.operator: /);
  });

  test('a rule nested thousands of levels deep is refused as too complex, not an internal error', async () => {
    let rule: SegmentRuleInput = { field: 'email', operator: 'EXISTS' };
    for (let level = 0; level < 3000; level++) rule = { not: rule };
    const result = await suite.gateway.execute(SegPreview, { rule });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 'nesting' });
  });

  test('templates are listed and create segment audiences whose member count follows the contacts', async () => {
    const { segmentTemplates } = dataOf(await suite.gateway.execute(SegTemplates, {}));
    expect(segmentTemplates.map((template) => template.key)).toEqual(
      expect.arrayContaining(['WITH_EMAIL', 'WITH_PHONE', 'WITH_MOBILE_AD_ID', 'NEW_LAST_30_DAYS']),
    );
    expectType(await upsertContacts(CONTACTS), 'UpsertContactsSuccess');

    const withPhone = expectType(await createAudience({ name: 'Phones', segmentTemplate: 'WITH_PHONE' }), 'CreateAudienceSuccess')
      .audience;
    expect(withPhone).toMatchObject({ kind: 'SEGMENT', memberCount: 2 });
    expect(withPhone.segmentRule).toEqual(segmentTemplates.find((template) => template.key === 'WITH_PHONE')!.rule);

    expectType(await upsertContacts([{ email: 'new@example.com', phone: '+14155550199' }]), 'UpsertContactsSuccess');
    const again = expectType(await updateAudience(withPhone.id, {}), 'UpdateAudienceSuccess').audience;
    expect(again.memberCount).toBe(3);

    const both = await expectNothingWritten(() =>
      createAudience({ name: 'Both', segmentTemplate: 'WITH_EMAIL', segmentRule: { field: 'email', operator: 'EXISTS' } }),
    );
    expect(expectType(both, 'ValidationError').field).toBe('input.segmentTemplate');
  });
});

describe('upsertContacts and contacts', () => {
  test('creates then updates contacts, normalized, without touching any audience; lists them by page', async () => {
    await createAudienceWith(suite.gateway, ['ada@example.com']);
    expect(expectType(await upsertContacts([{ email: ' Grace@Example.com ', country: 'us' }, { phone: '(415) 555-0100', country: 'US' }]), 'UpsertContactsSuccess'))
      .toMatchObject({ created: 2, updated: 0 });
    expect(expectType(await upsertContacts([{ email: 'ada@example.com', attributes: { vip: true } }, { email: 'grace@example.com', zip: '94110' }]), 'UpsertContactsSuccess'))
      .toMatchObject({ created: 0, updated: 2 });
    expect(await db().audienceMember.count()).toBe(1);

    const first = dataOf(await suite.gateway.execute(SegContacts, {})).contacts;
    expect(first.edges.map((edge) => edge.node.key)).toEqual(['email:ada@example.com', 'email:grace@example.com']);
    expect(first.edges[0]!.node.attributes).toEqual({ vip: true });
    const second = dataOf(await suite.gateway.execute(SegContacts, { after: first.pageInfo.endCursor })).contacts;
    expect(second.edges.map((edge) => edge.node)).toEqual([
      expect.objectContaining({ key: 'phone:+14155550100', phone: '+14155550100', country: 'US' }),
    ]);
    expect(second.pageInfo.hasNextPage).toBe(false);
  });

  test('updatedAt moves only when a value changes, whichever call writes the contact; unchanged contacts still join', async () => {
    const ada = { email: 'ada@example.com', country: 'GB', attributes: { plan: 'gold' } };
    expectType(await upsertContacts([ada]), 'UpsertContactsSuccess');
    await db().$executeRaw`UPDATE contact SET updated_at = '2026-01-01T00:00:00Z'`;
    const updatedAt = async () => (await db().contact.findFirstOrThrow({ where: { email: 'ada@example.com' } })).updatedAt.toISOString();

    expect(expectType(await upsertContacts([ada, { email: 'ADA@example.com', attributes: { plan: 'gold' } }]), 'UpsertContactsSuccess'))
      .toMatchObject({ created: 0, updated: 0 });
    const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
    expect(await db().audienceMember.count({ where: { audienceId: decodeGlobalID(audience.id).id } })).toBe(1);
    expect(await updatedAt()).toBe('2026-01-01T00:00:00.000Z');

    expect(expectType(await upsertContacts([{ email: 'ada@example.com', attributes: { since: 2020 } }]), 'UpsertContactsSuccess'))
      .toMatchObject({ created: 0, updated: 1 });
    expect(Date.parse(await updatedAt())).toBeGreaterThan(Date.now() - 60_000);
  });

  test('an invalid contact is a ValidationError on its path and stores none of the list', async () => {
    const result = await expectNothingWritten(() => upsertContacts([{ email: 'ada@example.com' }, { email: 'nope' }]));
    expect(expectType(result, 'ValidationError').field).toBe('contacts.1.email');
    const tooMany = await expectNothingWritten(() => upsertContacts(new Array<AudienceMemberInput>(100_001).fill({})));
    expect(expectType(tooMany, 'ValidationError').field).toBe('contacts');
  });

  test('an attribute number too large for JSON (1e400) is a ValidationError, not stored as null', async () => {
    const body = JSON.stringify({
      query: 'mutation SegUpsertHuge($contacts: [AudienceMemberInput!]!) { upsertContacts(contacts: $contacts) { __typename ... on ValidationError { field } } }',
      variables: { contacts: [{ email: 'ada@example.com', attributes: { score: '@@huge@@' } }] },
    }).replace('"@@huge@@"', '1e400');
    const response = await expectNothingWritten(async () =>
      suite.gateway.app.yoga!.fetch('http://gateway/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${suite.gateway.apiKey}` }, body }),
    );
    expect(await response.json()).toEqual({ data: { upsertContacts: { __typename: 'ValidationError', field: 'contacts.0.attributes' } } });
  });

  test('contacts of another workspace are not listed', async () => {
    const other = await suite.gateway.createWorkspace();
    expectType(await upsertContacts([{ email: 'theirs@example.com' }], other.apiKey), 'UpsertContactsSuccess');
    expect(dataOf(await suite.gateway.execute(SegContacts, {})).contacts.edges).toEqual([]);
  });
});

describe('updateAudience', () => {
  test('changes the name, description and rule; the member count follows the rule', async () => {
    expectType(await upsertContacts(CONTACTS), 'UpsertContactsSuccess');
    const audience = await createSegment({ field: 'email', operator: 'EXISTS' });
    expect(audience.memberCount).toBe(3);

    const updated = expectType(
      await updateAudience(audience.id, { name: 'Gold', description: 'Gold plan', segmentRule: { field: 'attributes.plan.tier', operator: 'EQ', value: 'gold' } }),
      'UpdateAudienceSuccess',
    ).audience;
    expect(updated).toMatchObject({ name: 'Gold', description: 'Gold plan', memberCount: 1 });
    expect(updated.segmentRule).toEqual({ field: 'attributes.plan.tier', operator: 'EQ', value: 'gold' });
  });

  test('a rule for a STATIC audience, and an invalid rule, are ValidationErrors that change nothing', async () => {
    const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
    const onStatic = await expectNothingWritten(() => updateAudience(audience.id, { name: 'X', segmentRule: { field: 'email', operator: 'EXISTS' } }));
    expect(expectType(onStatic, 'ValidationError').field).toBe('input.segmentRule');

    const segment = await createSegment({ field: 'email', operator: 'EXISTS' });
    const invalid = await expectNothingWritten(() => updateAudience(segment.id, { segmentRule: { field: 'email', operator: 'IN', value: [] } }));
    expect(expectType(invalid, 'ValidationError').field).toBe('input.segmentRule.value');
  });

  test('another workspace’s audience is the same NotFoundError as an unknown id', async () => {
    const other = await suite.gateway.createWorkspace();
    const theirs = expectType(await createAudience({ name: 'Theirs', segmentTemplate: 'WITH_EMAIL' }, other.apiKey), 'CreateAudienceSuccess').audience;
    const [foreign, unknown] = await answersToForeignAndUnknownId((id) => updateAudience(id, { name: 'Mine' }), theirs.id);
    expect(foreign).toMatchObject({ __typename: 'NotFoundError' });
    expect(foreign).toEqual(unknown);
  });

  test('members cannot be added to a SEGMENT audience', async () => {
    const segment = await createSegment({ field: 'email', operator: 'EXISTS' });
    const result = await expectNothingWritten(async () =>
      dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId: segment.id, members: [{ email: 'ada@example.com' }] })).addAudienceMembers,
    );
    expect(expectType(result, 'ValidationError').field).toBe('audienceId');
  });
});

describe('split groups', () => {
  test.each<[string, string, SplitGroupInput[]]>([
    ['percentages adding up to 99.99', 'input.splitGroups', [{ name: 'A', percent: 50 }, { name: 'B', percent: 49.99 }]],
    ['a name given twice', 'input.splitGroups.1.name', [{ name: 'A', percent: 50 }, { name: 'A', percent: 50 }]],
    ['three decimals', 'input.splitGroups.0.percent', [{ name: 'A', percent: 33.333 }, { name: 'B', percent: 66.667 }]],
    ['a zero share', 'input.splitGroups.1.percent', [{ name: 'A', percent: 100 }, { name: 'B', percent: 0 }]],
    ['a share too small for a bucket (5e-324)', 'input.splitGroups.0.percent', [{ name: 'A', percent: 5e-324 }, { name: 'B', percent: 100 }]],
    ['a name of 65 characters', 'input.splitGroups.0.name', [{ name: 'n'.repeat(65), percent: 100 }]],
  ])('%s is a ValidationError on %s', async (_case, field, splitGroups) => {
    const result = await expectNothingWritten(() => createAudience({ name: 'Split', splitGroups }));
    expect(expectType(result, 'ValidationError').field).toBe(field);
  });

  test('members fall in groups by their share, and counts add up to the audience', async () => {
    const emails = Array.from({ length: 2000 }, (_, i) => `member${i}@example.com`);
    const audience = await createAudienceWith(suite.gateway, emails);
    const updated = expectType(
      await updateAudience(audience.id, { splitGroups: [{ name: 'control', percent: 10 }, { name: 'test', percent: 89.5 }, { name: 'tiny', percent: 0.5 }] }),
      'UpdateAudienceSuccess',
    ).audience;
    const counts = updated.splitGroups.map((group) => group.memberCount);
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(2000);
    expect(counts[0]).toBeGreaterThan(140);
    expect(counts[0]).toBeLessThan(260);
    expect(counts[2]).toBeLessThan(30);
    expect(updated.splitGroups.map(({ name, percent }) => [name, percent])).toEqual([['control', 10], ['test', 89.5], ['tiny', 0.5]]);
  });

  test('a group a live sync sends cannot be removed or renamed; its percentage can change', async () => {
    const fake = await suite.fakeMeta();
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
    expectType(await updateAudience(audience.id, { splitGroups: [{ name: 'A', percent: 50 }, { name: 'B', percent: 50 }] }), 'UpdateAudienceSuccess');
    const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
    expectType(dataOf(await suite.gateway.execute(SegUpdateSync, { id: sync.id, input: { splitGroup: 'B' } })).updateAudienceSync, 'UpdateAudienceSyncSuccess');

    const renamed = await expectNothingWritten(() => updateAudience(audience.id, { splitGroups: [{ name: 'A', percent: 50 }, { name: 'C', percent: 50 }] }));
    expect(expectType(renamed, 'ValidationError')).toMatchObject({ field: 'input.splitGroups', message: expect.stringContaining('"Buyers to Meta"') });
    const removed = await expectNothingWritten(() => updateAudience(audience.id, { splitGroups: [] }));
    expect(expectType(removed, 'ValidationError').field).toBe('input.splitGroups');

    const reshaped = expectType(await updateAudience(audience.id, { splitGroups: [{ name: 'B', percent: 70 }, { name: 'A', percent: 30 }] }), 'UpdateAudienceSuccess');
    expect(reshaped.audience.splitGroups.map((group) => group.name)).toEqual(['B', 'A']);
  });
});

describe('sync split group and suppressions', () => {
  async function setUp() {
    const fake = await suite.fakeMeta();
    const destination = await createMetaDestination(suite.gateway, fake);
    const audience = await createAudienceWith(suite.gateway, ['ada@example.com']);
    expectType(await updateAudience(audience.id, { splitGroups: [{ name: 'A', percent: 50 }, { name: 'B', percent: 50 }] }), 'UpdateAudienceSuccess');
    const optOuts = await createAudienceWith(suite.gateway, ['grace@example.com']);
    const segment = await createSegment({ field: 'phone', operator: 'EXISTS' });
    return { destination, audience, optOuts, segment };
  }
  const baseInput = (audienceId: string, destinationId: string) => ({
    name: 'Buyers to Meta',
    audienceId,
    destinationId,
    schedule: { cadenceHours: 0 },
  });
  const suppressionCount = () => db().audienceSyncSuppression.count();

  test('a sync takes a split group and suppression audiences, static or segment, and exposes them', async () => {
    const { destination, audience, optOuts, segment } = await setUp();
    const created = expectType(
      dataOf(await suite.gateway.execute(SegCreateSync, {
        input: { ...baseInput(audience.id, destination.id), splitGroup: 'A', suppressionAudienceIds: [optOuts.id, segment.id] },
      })).createAudienceSync,
      'CreateAudienceSyncSuccess',
    ).audienceSync;
    expect(created.splitGroup).toBe('A');
    expect(created.suppressionAudiences.map((suppression) => suppression.id).sort()).toEqual([optOuts.id, segment.id].sort());

    const updated = expectType(
      dataOf(await suite.gateway.execute(SegUpdateSync, { id: created.id, input: { splitGroup: null, suppressionAudienceIds: [segment.id] } })).updateAudienceSync,
      'UpdateAudienceSyncSuccess',
    ).audienceSync;
    expect(updated).toMatchObject({ splitGroup: null, suppressionAudiences: [{ id: segment.id }] });
    expect(await suppressionCount()).toBe(1);
  });

  test.each([
    ['an unknown split group', 'input.splitGroup', (ids: Awaited<ReturnType<typeof setUp>>) => ({ splitGroup: 'C', suppressionAudienceIds: [ids.optOuts.id] })],
    ['the synced audience as a suppression', 'input.suppressionAudienceIds.1', (ids: Awaited<ReturnType<typeof setUp>>) => ({ suppressionAudienceIds: [ids.optOuts.id, ids.audience.id] })],
    ['a suppression given twice', 'input.suppressionAudienceIds.1', (ids: Awaited<ReturnType<typeof setUp>>) => ({ suppressionAudienceIds: [ids.optOuts.id, ids.optOuts.id] })],
    ['21 suppressions', 'input.suppressionAudienceIds', (ids: Awaited<ReturnType<typeof setUp>>) => ({ suppressionAudienceIds: new Array<string>(21).fill(ids.optOuts.id) })],
    ['a malformed suppression id', 'input.suppressionAudienceIds.0', () => ({ suppressionAudienceIds: ['nope'] })],
  ])('%s is a ValidationError on %s; nothing is created', async (_case, field, extra) => {
    const ids = await setUp();
    const result = await expectNothingWritten(async () =>
      dataOf(await suite.gateway.execute(SegCreateSync, { input: { ...baseInput(ids.audience.id, ids.destination.id), ...extra(ids) } })).createAudienceSync,
    );
    expect(expectType(result, 'ValidationError').field).toBe(field);
    expect(await suppressionCount()).toBe(0);
  });

  test('a suppression audience of another workspace is the same NotFoundError as an unknown one, on create and update', async () => {
    const { destination, audience, optOuts } = await setUp();
    const other = await suite.gateway.createWorkspace();
    const theirs = await createAudienceWith(suite.gateway, ['x@example.com'], other.apiKey);
    const create = async (id: string) =>
      dataOf(await suite.gateway.execute(SegCreateSync, { input: { ...baseInput(audience.id, destination.id), suppressionAudienceIds: [optOuts.id, id] } })).createAudienceSync;
    const [foreign, unknown] = await answersToForeignAndUnknownId(create, theirs.id);
    expect(foreign).toMatchObject({ __typename: 'NotFoundError', field: 'input.suppressionAudienceIds.1' });
    expect(foreign).toEqual(unknown);

    const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
    expectType(dataOf(await suite.gateway.execute(SegUpdateSync, { id: sync.id, input: { suppressionAudienceIds: [optOuts.id] } })).updateAudienceSync, 'UpdateAudienceSyncSuccess');
    const refused = dataOf(await suite.gateway.execute(SegUpdateSync, { id: sync.id, input: { splitGroup: 'A', suppressionAudienceIds: [unknownId('Audience')] } })).updateAudienceSync;
    expect(refused).toMatchObject({ __typename: 'NotFoundError', field: 'input.suppressionAudienceIds.0' });
    // All or nothing: neither the split group nor the suppressions changed.
    const stored = await db().audienceSync.findFirstOrThrow({ where: { name: 'Buyers to Meta' }, include: { suppressions: true } });
    expect(stored.splitGroup).toBeNull();
    expect(stored.suppressions.map((suppression) => suppression.audienceId)).toEqual([decodeGlobalID(optOuts.id).id]);
  });
});
