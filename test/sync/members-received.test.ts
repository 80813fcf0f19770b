import { expect, test } from 'vitest';
import { graphql } from '../generated/gql.js';
import { AddAudienceMembers } from '../support/operations.js';
import { EMAIL_AND_MADID_MAPPING, changeMembers, createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { runSync, usersRequests } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// membersReceived is the platform's own count (Meta's num_received), summed over a run's batches.
const suite = useGatewaySuite({ reset: true });

const MetaReceivedRun = graphql(`
  query MetaReceivedRun($id: ID!) {
    node(id: $id) { __typename ... on SyncRun { status membersAdded membersRemoved membersInvalid membersReceived } }
  }
`);

const readCounts = async (runId: string) =>
  expectType(dataOf(await suite.gateway.execute(MetaReceivedRun, { id: runId })).node!, 'SyncRun');

test('a Meta run records the rows Meta says it received, rejected ones included, adds and removes alike', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const emails = ['ada@example.com', 'grace@example.com', 'linus@example.org'];
  const audience = await createAudienceWith(suite.gateway, emails);
  // Meta takes any text as a MADID from the gateway, and rejects this one as no mobile ad id.
  const added = dataOf(
    await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: [{ mobileAdId: 'not-a-device-id' }] }),
  );
  expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess');
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, fieldMapping: EMAIL_AND_MADID_MAPPING });

  const first = await runSync(suite.gateway, sync.id);
  const sentFirst = usersRequests(fake.requests).reduce((rows, upload) => rows + upload.rows.length, 0);
  expect(sentFirst).toBe(4);
  expect(await readCounts(first.run.id)).toEqual({
    __typename: 'SyncRun',
    status: 'SUCCEEDED',
    membersAdded: 3,
    membersRemoved: 0,
    membersInvalid: 1,
    membersReceived: 4,
  });

  const before = fake.requests.length;
  await changeMembers(suite.gateway, audience.id, { add: ['margaret@example.com'], remove: ['ada@example.com', 'grace@example.com'] });
  const second = await runSync(suite.gateway, sync.id);
  const uploads = usersRequests(fake.requests.slice(before));
  expect(uploads.map((upload) => [upload.method, upload.rows.length])).toEqual([
    ['POST', 1],
    ['DELETE', 2],
  ]);
  expect(await readCounts(second.run.id)).toMatchObject({ membersAdded: 1, membersRemoved: 2, membersReceived: 3 });
});
