import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import type { AudienceMemberInput, CreateAudienceInput } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToForeignAndUnknownId, answersToMalformedAndUnknownId, malformedIds } from '../support/global-ids.js';
import { AddAudienceMembers, CreateAudience, NodeById, RemoveAudienceMembers } from '../support/operations.js';
import { createAudienceWith, dataOf, expectType, sha256 } from '../support/scenario.js';
import { expectNothingWritten } from '../support/tables.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway();
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(() => gateway.reset());

async function createAudience(input: CreateAudienceInput) {
  return dataOf(await gateway.execute(CreateAudience, { input })).createAudience;
}

async function addMembers(audienceId: string, members: AudienceMemberInput[]) {
  return dataOf(await gateway.execute(AddAudienceMembers, { audienceId, members })).addAudienceMembers;
}

async function removeMembers(audienceId: string, members: AudienceMemberInput[]) {
  return dataOf(await gateway.execute(RemoveAudienceMembers, { audienceId, members })).removeAudienceMembers;
}

/** The audience's contacts as stored, sorted by key. */
async function storedMembers(audienceId: string) {
  const members = await db().audienceMember.findMany({
    where: { audienceId: decodeGlobalID(audienceId).id },
    select: { contact: { select: { key: true, email: true, phone: true, country: true } } },
  });
  return members.map((member) => member.contact).sort((a, b) => (a.key < b.key ? -1 : 1));
}

describe('createAudience', () => {
  test('creates an empty audience', async () => {
    const audience = expectType(await createAudience({ name: ' Buyers ', description: 'Bought twice' }), 'CreateAudienceSuccess')
      .audience;

    expect(audience).toMatchObject({ name: 'Buyers', memberCount: 0 });
    expect(dataOf(await gateway.execute(NodeById, { id: audience.id })).node).toEqual({ __typename: 'Audience', id: audience.id });
  });

  test.each<[string, string, CreateAudienceInput]>([
    ['a blank name', 'input.name', { name: '   ' }],
    ['a name of 256 characters', 'input.name', { name: 'n'.repeat(256) }],
    ['a description of 2,001 characters', 'input.description', { name: 'Buyers', description: 'd'.repeat(2001) }],
  ])('%s is a ValidationError on %s and creates nothing', async (_case, field, input) => {
    const result = await expectNothingWritten(() => createAudience(input));

    expect(expectType(result, 'ValidationError').field).toBe(field);
  });
});

describe('addAudienceMembers', () => {
  test('normalizes identifiers: emails trimmed and lowercased, phones to E.164 with a country, hashes kept', async () => {
    const audience = await createAudienceWith(gateway, []);
    const hashedEmail = sha256('hidden@example.com');

    const result = await addMembers(audience.id, [
      { email: '  Ada.Lovelace@Example.COM ' },
      { phone: '(415) 555-0100', country: 'us' },
      { phone: '06 12 34 56 78', country: 'FR' },
      { email: hashedEmail },
    ]);

    expect(expectType(result, 'AddAudienceMembersSuccess')).toMatchObject({ added: 4, audience: { memberCount: 4 } });
    expect(await storedMembers(audience.id)).toEqual([
      { key: `email:${hashedEmail}`, email: hashedEmail, phone: null, country: null },
      { key: 'email:ada.lovelace@example.com', email: 'ada.lovelace@example.com', phone: null, country: null },
      { key: 'phone:+14155550100', email: null, phone: '+14155550100', country: 'US' },
      { key: 'phone:+33612345678', email: null, phone: '+33612345678', country: 'FR' },
    ]);
  });

  test('members already in the audience are not counted twice, in one call or across calls', async () => {
    const audience = await createAudienceWith(gateway, []);

    const first = await addMembers(audience.id, [{ email: 'ada@example.com' }, { email: 'grace@example.com' }]);
    expect(expectType(first, 'AddAudienceMembersSuccess')).toMatchObject({ added: 2, audience: { memberCount: 2 } });

    const second = await addMembers(audience.id, [
      { email: ' ADA@example.com ' },
      { email: 'linus@example.org' },
      { email: 'Linus@Example.org' },
    ]);
    expect(expectType(second, 'AddAudienceMembersSuccess')).toMatchObject({ added: 1, audience: { memberCount: 3 } });
    expect(await db().contact.count()).toBe(3);
  });

  test.each<[string, string, AudienceMemberInput[]]>([
    ['a phone number that is not one', 'members.1.phone', [{ email: 'ada@example.com' }, { phone: '12345', country: 'US' }]],
    ['an email address that is not one', 'members.2.email', [{ email: 'ada@example.com' }, { email: 'grace@example.com' }, { email: 'grace@' }]],
    ['a member without any identifier', 'members.0.email', [{ firstName: 'Ada', lastName: 'Lovelace' }, { email: 'ada@example.com' }]],
  ])('%s is a ValidationError on %s and adds no member of the list', async (_case, field, members) => {
    const audience = await createAudienceWith(gateway, ['linus@example.org']);

    const result = await expectNothingWritten(() => addMembers(audience.id, members));

    expect(expectType(result, 'ValidationError').field).toBe(field);
  });

  test('every invalid member is listed in the issues', async () => {
    const audience = await createAudienceWith(gateway, []);

    const result = await addMembers(audience.id, [{ email: 'nope' }, { email: 'ada@example.com' }, { phone: '12345' }]);

    expect(expectType(result, 'ValidationError').issues.map((issue) => issue.field)).toEqual([
      'members.0.email',
      'members.2.phone',
    ]);
  });

  test('more than 100,000 members in one call is a ValidationError on members', async () => {
    const audience = await createAudienceWith(gateway, []);
    const members = new Array<AudienceMemberInput>(100_001).fill({});

    const result = await expectNothingWritten(() => addMembers(audience.id, members));

    expect(expectType(result, 'ValidationError')).toMatchObject({ field: 'members', message: expect.stringMatching(/at most 100000/) });
  });
});

describe('removeAudienceMembers', () => {
  test('removes the members found the way they were added, keeping their contacts', async () => {
    const audience = await createAudienceWith(gateway, ['ada@example.com', 'grace@example.com', 'linus@example.org']);

    const result = await removeMembers(audience.id, [{ email: ' Grace@Example.com ' }, { email: 'nobody@example.com' }]);

    expect(expectType(result, 'RemoveAudienceMembersSuccess')).toMatchObject({ removed: 1, audience: { memberCount: 2 } });
    expect((await storedMembers(audience.id)).map((contact) => contact.email)).toEqual(['ada@example.com', 'linus@example.org']);
    expect(await db().contact.count()).toBe(3);

    const again = await removeMembers(audience.id, [{ email: 'grace@example.com' }]);
    expect(expectType(again, 'RemoveAudienceMembersSuccess')).toMatchObject({ removed: 0, audience: { memberCount: 2 } });
  });
});

describe('ids that name nothing of the caller', () => {
  const mutations = {
    addAudienceMembers: (audienceId: string) => addMembers(audienceId, [{ email: 'ada@example.com' }]),
    removeAudienceMembers: (audienceId: string) => removeMembers(audienceId, [{ email: 'ada@example.com' }]),
  };

  test.each(Object.entries(mutations))('%s on another workspace’s audience is the same NotFoundError as an unknown id', async (_name, mutate) => {
    const other = await gateway.createWorkspace();
    const theirs = await createAudienceWith(gateway, ['ada@example.com'], other.apiKey);

    const [ofOtherWorkspace, unknown] = await answersToForeignAndUnknownId(mutate, theirs.id);

    expect(ofOtherWorkspace).toMatchObject({ __typename: 'NotFoundError', field: 'audienceId' });
    expect(ofOtherWorkspace).toEqual(unknown);
  });

  test.each(Object.entries(mutations))('%s with a malformed audience id is a ValidationError on audienceId', async (_name, mutate) => {
    const results = await expectNothingWritten(() => Promise.all(malformedIds('Audience').map((id) => mutate(id))));

    for (const result of results) expect(expectType(result, 'ValidationError').field).toBe('audienceId');
  });

  test.each(Object.entries(mutations))('%s with an audience id whose inner id is not a UUID answers as an unknown id', async (_name, mutate) => {
    const { malformed, unknown } = await answersToMalformedAndUnknownId(mutate, 'Audience');

    expect(unknown).toMatchObject({ __typename: 'NotFoundError', field: 'audienceId' });
    for (const answer of malformed) expect(answer).toEqual(unknown);
  });
});
