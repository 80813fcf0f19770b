import { expect, test } from 'vitest';
import type { FakeMeta } from '../fakes/meta-server.js';
import { graphql } from '../generated/gql.js';
import type { AudienceMemberInput, CreateAudienceInput } from '../generated/graphql.js';
import { AddAudienceMembers } from '../support/operations.js';
import {
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { runSync, uploadedEmails, usersRequests } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

const suite = useGatewaySuite({ reset: true });

const SssCreateAudience = graphql(`
  mutation SssCreateAudience($input: CreateAudienceInput!) {
    createAudience(input: $input) {
      __typename
      ... on CreateAudienceSuccess { audience { id splitGroups { name memberCount } } }
      ... on ValidationError { field message }
    }
  }
`);

const SssUpdateAudience = graphql(`
  mutation SssUpdateAudience($id: ID!, $input: UpdateAudienceInput!) {
    updateAudience(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSuccess { audience { id splitGroups { name memberCount } } }
      ... on ValidationError { field message }
    }
  }
`);

const SssUpsertContacts = graphql(`
  mutation SssUpsertContacts($contacts: [AudienceMemberInput!]!) {
    upsertContacts(contacts: $contacts) {
      __typename
      ... on UpsertContactsSuccess { created updated }
      ... on ValidationError { field message }
    }
  }
`);

const SssUpdateSync = graphql(`
  mutation SssUpdateSync($id: ID!, $input: UpdateAudienceSyncInput!) {
    updateAudienceSync(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSyncSuccess { audienceSync { id splitGroup suppressionAudiences { id } } }
      ... on ValidationError { field message }
      ... on NotFoundError { field message }
    }
  }
`);

async function createAudience(input: CreateAudienceInput) {
  const result = dataOf(await suite.gateway.execute(SssCreateAudience, { input })).createAudience;
  return expectType(result, 'CreateAudienceSuccess').audience;
}

async function upsertContacts(contacts: AudienceMemberInput[]) {
  expectType(dataOf(await suite.gateway.execute(SssUpsertContacts, { contacts })).upsertContacts, 'UpsertContactsSuccess');
}

async function addMembers(audienceId: string, emails: string[]) {
  const result = dataOf(
    await suite.gateway.execute(AddAudienceMembers, { audienceId, members: emails.map((email) => ({ email })) }),
  );
  expectType(result.addAudienceMembers, 'AddAudienceMembersSuccess');
}

async function updateSync(id: string, input: { splitGroup?: string; suppressionAudienceIds?: string[] }) {
  const result = dataOf(await suite.gateway.execute(SssUpdateSync, { id, input })).updateAudienceSync;
  return expectType(result, 'UpdateAudienceSyncSuccess').audienceSync;
}

/** A fake Meta, its destination and a MIRROR sync of the audience to it. */
async function syncTo(audienceId: string, extra: { splitGroup?: string; suppressionAudienceIds?: string[] } = {}) {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  let sync = await createSync(suite.gateway, { audienceId, destinationId: destination.id, mode: 'MIRROR' });
  if (Object.keys(extra).length > 0) sync = { ...sync, ...(await updateSync(sync.id, extra)) };
  return { fake, sync };
}

async function runAndRecord(fake: FakeMeta, syncId: string) {
  const before = fake.requests.length;
  const { run } = await runSync(suite.gateway, syncId);
  expect(run.status, run.errorMessage ?? undefined).toBe('SUCCEEDED');
  return { run, uploads: usersRequests(fake.requests.slice(before)) };
}

test('a segment audience in MIRROR sends exactly its matching contacts, and removes one that stops matching', async () => {
  await upsertContacts([
    { email: 'ada@example.com', attributes: { plan: 'gold', spend: 420 } },
    { email: 'grace@example.com', attributes: { plan: 'gold', spend: 120 } },
    { email: 'linus@example.org', attributes: { plan: 'silver', spend: 900 } },
    { email: 'ken@example.net', attributes: { plan: 'gold', spend: '500' } },
  ]);
  const audience = await createAudience({
    name: 'Gold spenders',
    segmentRule: {
      and: [
        { field: 'attributes.plan', operator: 'EQ', value: 'gold' },
        { field: 'attributes.spend', operator: 'GTE', value: 100 },
      ],
    },
  });
  const { fake, sync } = await syncTo(audience.id);

  const first = await runAndRecord(fake, sync.id);
  expect(first.run).toMatchObject({ membersAdded: 2, membersRemoved: 0, totalMembers: 2 });
  expect(heldEmails(fake)).toEqual(hashedEmails(['ada@example.com', 'grace@example.com']));

  await upsertContacts([{ email: 'grace@example.com', attributes: { plan: 'silver' } }, { email: 'ken@example.net', attributes: { spend: 700 } }]);
  const second = await runAndRecord(fake, sync.id);
  expect(second.run).toMatchObject({ membersAdded: 1, membersRemoved: 1, totalMembers: 2 });
  expect(uploadedEmails(second.uploads)).toEqual([
    { method: 'POST', emails: hashedEmails(['ken@example.net']) },
    { method: 'DELETE', emails: hashedEmails(['grace@example.com']) },
  ]);
  expect(heldEmails(fake)).toEqual(hashedEmails(['ada@example.com', 'ken@example.net']));
});

test('two syncs of complementary split groups partition the audience exactly, and members keep their group', async () => {
  const emails = Array.from({ length: 300 }, (_, i) => `member${i}@example.com`);
  const audience = await createAudienceWith(suite.gateway, emails.slice(0, 200));
  const split = dataOf(
    await suite.gateway.execute(SssUpdateAudience, {
      id: audience.id,
      input: { splitGroups: [{ name: 'control', percent: 30 }, { name: 'exposed', percent: 70 }] },
    }),
  ).updateAudience;
  const groups = expectType(split, 'UpdateAudienceSuccess').audience.splitGroups;
  const control = await syncTo(audience.id, { splitGroup: 'control' });
  const exposed = await syncTo(audience.id, { splitGroup: 'exposed' });

  await runAndRecord(control.fake, control.sync.id);
  await runAndRecord(exposed.fake, exposed.sync.id);
  const firstControl = heldEmails(control.fake);
  const firstExposed = heldEmails(exposed.fake);
  expect(firstControl.length).toBe(groups[0]!.memberCount);
  expect(firstExposed.length).toBe(groups[1]!.memberCount);
  expect(firstControl.length).toBeGreaterThan(30);
  expect(firstExposed.length).toBeGreaterThan(100);
  expect(firstControl.filter((email) => firstExposed.includes(email))).toEqual([]);
  expect([...firstControl, ...firstExposed].sort()).toEqual(hashedEmails(emails.slice(0, 200)));

  await addMembers(audience.id, emails.slice(200));
  const secondControl = await runAndRecord(control.fake, control.sync.id);
  const secondExposed = await runAndRecord(exposed.fake, exposed.sync.id);
  expect(secondControl.run.membersRemoved).toBe(0);
  expect(secondExposed.run.membersRemoved).toBe(0);
  const nowControl = heldEmails(control.fake);
  const nowExposed = heldEmails(exposed.fake);
  expect(nowControl).toEqual(expect.arrayContaining(firstControl));
  expect(nowExposed).toEqual(expect.arrayContaining(firstExposed));
  expect(nowControl.filter((email) => nowExposed.includes(email))).toEqual([]);
  expect([...nowControl, ...nowExposed].sort()).toEqual(hashedEmails(emails));

  // Unchanged percentages, unchanged groups: a third run sends nothing.
  const third = await runAndRecord(control.fake, control.sync.id);
  expect(third.uploads).toEqual([]);
});

test('a suppressed member is never sent, and is removed in MIRROR when it joins a static or segment suppression list', async () => {
  const members = ['ada@example.com', 'grace@example.com', 'linus@example.org', 'ken@example.net'];
  const audience = await createAudienceWith(suite.gateway, members);
  const optOuts = await createAudienceWith(suite.gateway, ['grace@example.com']);
  const unsubscribed = await createAudience({
    name: 'Unsubscribed',
    segmentRule: { field: 'attributes.unsubscribed', operator: 'EQ', value: true },
  });
  const { fake, sync } = await syncTo(audience.id, { suppressionAudienceIds: [optOuts.id, unsubscribed.id] });

  const first = await runAndRecord(fake, sync.id);
  expect(first.run).toMatchObject({ membersAdded: 3, totalMembers: 3 });
  expect(heldEmails(fake)).toEqual(hashedEmails(['ada@example.com', 'linus@example.org', 'ken@example.net']));

  await addMembers(optOuts.id, ['linus@example.org']);
  await upsertContacts([{ email: 'ken@example.net', attributes: { unsubscribed: true } }]);
  const second = await runAndRecord(fake, sync.id);
  expect(second.run).toMatchObject({ membersAdded: 0, membersRemoved: 2, totalMembers: 1 });
  expect(uploadedEmails(second.uploads)).toEqual([
    { method: 'DELETE', emails: hashedEmails(['linus@example.org', 'ken@example.net']) },
  ]);
  expect(heldEmails(fake)).toEqual(hashedEmails(['ada@example.com']));

  const sentGrace = fake.requests.some((request) => JSON.stringify(request.body).includes(hashedEmails(['grace@example.com'])[0]!));
  expect(sentGrace).toBe(false);
});
