import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { graphql } from '../generated/gql.js';
import { GOOGLE_LIST_ID, createGoogleDestination } from '../support/google.js';
import { db } from '../../src/infra/db.js';
import {
  changeMembers,
  createAudienceWith,
  createMetaDestination,
  createSync,
  dataOf,
  expectType,
  sha256,
} from '../support/scenario.js';
import { runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// After each successful run, and on demand, a sync shows what the platform reports about its audience.

const suite = useGatewaySuite({ reset: true });

const PlatformAudience = graphql(`
  query PlatformAudience($id: ID!) {
    node(id: $id) {
      ... on AudienceSync {
        platformAudience { sizeLowerBound sizeUpperBound matchRate matchRateLowerBound matchRateUpperBound status statusDetail refreshedAt }
      }
    }
  }
`);

const RefreshPlatformAudience = graphql(`
  mutation RefreshPlatformAudience($id: ID!) {
    refreshPlatformAudience(id: $id) {
      __typename
      ... on RefreshPlatformAudienceSuccess {
        audienceSync { id platformAudience { sizeLowerBound sizeUpperBound matchRate matchRateLowerBound matchRateUpperBound status statusDetail refreshedAt } }
      }
      ... on Error { code message }
    }
  }
`);

async function platformAudienceOf(syncId: string) {
  const { node } = dataOf(await suite.gateway.execute(PlatformAudience, { id: syncId }));
  return node && 'platformAudience' in node ? node.platformAudience : expect.fail('no sync');
}

const refresh = async (syncId: string) =>
  dataOf(await suite.gateway.execute(RefreshPlatformAudience, { id: syncId })).refreshPlatformAudience;

const emails = (count: number) => Array.from({ length: count }, (_, i) => `member${i}@example.com`);

test('Meta: a successful run reads the size range and statuses; before the first run there is nothing to read', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, emails(150));
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });

  expect(await platformAudienceOf(sync.id)).toBeNull();
  expect(expectType(await refresh(sync.id), 'ConflictError').message).toMatch(/no platform audience yet/);

  suite.gateway.clock.set('2026-12-02T08:00:00Z');
  expect((await runSync(suite.gateway, sync.id)).run.status).toBe('SUCCEEDED');
  expect(await platformAudienceOf(sync.id)).toEqual({
    sizeLowerBound: 150,
    sizeUpperBound: 150,
    matchRate: null,
    matchRateLowerBound: null,
    matchRateUpperBound: null,
    status: '200 Normal',
    statusDetail: 'This audience is ready for use.',
    refreshedAt: '2026-12-02T08:00:00.000Z',
  });

  // Meta flags the audience: a refresh on demand shows it, without a run.
  fake.flagged.add([...fake.audiences.keys()][0]!);
  suite.gateway.clock.set('2026-12-03T08:00:00Z');
  const refreshed = expectType(await refresh(sync.id), 'RefreshPlatformAudienceSuccess').audienceSync.platformAudience;
  expect(refreshed).toMatchObject({ status: expect.stringMatching(/^471 /), refreshedAt: '2026-12-03T08:00:00.000Z' });
});

test('Meta: an audience below the size Meta shows has no size, and says it is too small', async () => {
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, emails(3));
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  await runSync(suite.gateway, sync.id);

  expect(await platformAudienceOf(sync.id)).toMatchObject({
    sizeLowerBound: null,
    sizeUpperBound: null,
    statusDetail: expect.stringMatching(/too small/),
  });
});

test('Google Ads API: the list sizes and the match rate Google computes; a platform failure is a PlatformError', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake, 'ADS_API');
  const audience = await createAudienceWith(suite.gateway, emails(4));
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  await runSync(suite.gateway, sync.id);
  // The job has not run yet: Google reports the list as it is, without a match rate.
  expect(await platformAudienceOf(sync.id)).toMatchObject({ matchRate: null, status: 'OPEN' });

  fake.userLists.get(GOOGLE_LIST_ID)!.matchRatePercentage = 40;
  const refreshed = expectType(await refresh(sync.id), 'RefreshPlatformAudienceSuccess').audienceSync.platformAudience;
  // One number: it is both bounds.
  expect(refreshed).toMatchObject({ matchRate: 0.4, matchRateLowerBound: 0.4, matchRateUpperBound: 0.4, status: 'OPEN' });

  fake.failNext('permission-denied');
  expect(expectType(await refresh(sync.id), 'PlatformError')).toMatchObject({ code: 'PLATFORM_ERROR' });
});

/** The request id of the last ingestion the engine kept for the sync. */
const lastRequestOf = async (syncId: string) =>
  (await db().audienceSync.findUniqueOrThrow({ where: { id: decodeGlobalID(syncId).id } })).platformRequestId;

test('Data Manager API: after a run, the list sizes and the match rate range Google gives for the last upload', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);
  const people = emails(5);
  // Google knows 2 of the 5: 40%, in MATCH_RATE_RANGE_31_TO_40.
  for (const email of people.slice(0, 2)) fake.googleUsers.add(`EMAIL:${sha256(email)}`);
  const audience = await createAudienceWith(suite.gateway, people);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  await runSync(suite.gateway, sync.id);

  const requestId = await lastRequestOf(sync.id);
  expect(fake.dataManagerRequests.get(requestId!)).toMatchObject({ operation: 'ingest', recordCount: 5, matchedCount: 2 });
  expect(await platformAudienceOf(sync.id)).toMatchObject({
    sizeLowerBound: 5,
    sizeUpperBound: 5,
    matchRate: null,
    matchRateLowerBound: 0.31,
    matchRateUpperBound: 0.4,
    status: 'OPEN',
    statusDetail: `Google matched 31–40% of 5 members sent in the last upload (Data Manager request ${requestId}).`,
  });

  // A run that only removes sends no ingestion: the last upload's request, and its match rate, stay.
  await changeMembers(suite.gateway, audience.id, { add: [], remove: people.slice(4) });
  await runSync(suite.gateway, sync.id);
  expect(await lastRequestOf(sync.id)).toBe(requestId);
  expect(await platformAudienceOf(sync.id)).toMatchObject({ sizeLowerBound: 4, matchRateLowerBound: 0.31, matchRateUpperBound: 0.4 });
});

test('Data Manager API: while Google processes the upload there is no match rate; refreshPlatformAudience reads it once done', async () => {
  const fake = await suite.fakeGoogle();
  fake.holdRequests = true;
  const destination = await createGoogleDestination(suite.gateway, fake);
  const people = emails(4);
  for (const email of people) fake.googleUsers.add(`EMAIL:${sha256(email)}`);
  const audience = await createAudienceWith(suite.gateway, people);
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  suite.gateway.clock.set('2026-12-07T09:00:00Z');
  await runSync(suite.gateway, sync.id);

  expect(await platformAudienceOf(sync.id)).toMatchObject({
    sizeLowerBound: 4,
    matchRateLowerBound: null,
    matchRateUpperBound: null,
    statusDetail: expect.stringMatching(/^Google is still processing the last upload .*: its match rate is not known yet$/),
    refreshedAt: '2026-12-07T09:00:00.000Z',
  });

  fake.completeRequests();
  suite.gateway.clock.set('2026-12-07T10:00:00Z');
  const refreshed = expectType(await refresh(sync.id), 'RefreshPlatformAudienceSuccess').audienceSync.platformAudience;
  expect(refreshed).toMatchObject({
    matchRate: null,
    matchRateLowerBound: 0.91,
    matchRateUpperBound: 1,
    refreshedAt: '2026-12-07T10:00:00.000Z',
  });
});

test('Data Manager API: a request id Google no longer knows leaves the list sizes and says why there is no match rate', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, emails(3));
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  await runSync(suite.gateway, sync.id);
  const requestId = await lastRequestOf(sync.id);
  fake.dataManagerRequests.clear();

  const refreshed = expectType(await refresh(sync.id), 'RefreshPlatformAudienceSuccess').audienceSync.platformAudience;
  expect(refreshed).toMatchObject({
    sizeLowerBound: 3,
    matchRateLowerBound: null,
    matchRateUpperBound: null,
    statusDetail: `Google no longer knows the last upload (Data Manager request ${requestId}), so it has no match rate`,
  });
});
