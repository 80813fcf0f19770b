import { expect, test } from 'vitest';
import { graphql } from '../generated/gql.js';
import { GOOGLE_LIST_ID, createGoogleDestination } from '../support/google.js';
import { createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// After each successful run, and on demand, a sync shows what the platform reports about its audience.

const suite = useGatewaySuite({ reset: true });

const PlatformAudience = graphql(`
  query PlatformAudience($id: ID!) {
    node(id: $id) {
      ... on AudienceSync {
        platformAudience { sizeLowerBound sizeUpperBound matchRate status statusDetail refreshedAt }
      }
    }
  }
`);

const RefreshPlatformAudience = graphql(`
  mutation RefreshPlatformAudience($id: ID!) {
    refreshPlatformAudience(id: $id) {
      __typename
      ... on RefreshPlatformAudienceSuccess {
        audienceSync { id platformAudience { sizeLowerBound sizeUpperBound matchRate status statusDetail refreshedAt } }
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
  expect(refreshed).toMatchObject({ matchRate: 0.4, status: 'OPEN' });

  fake.failNext('permission-denied');
  expect(expectType(await refresh(sync.id), 'PlatformError')).toMatchObject({ code: 'PLATFORM_ERROR' });
});

test('Data Manager API: the list sizes after a run, and no match rate (the API reports none for a list)', async () => {
  const fake = await suite.fakeGoogle();
  const destination = await createGoogleDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, emails(5));
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id, platformAudienceId: GOOGLE_LIST_ID });
  await runSync(suite.gateway, sync.id);

  expect(await platformAudienceOf(sync.id)).toMatchObject({ sizeLowerBound: 5, sizeUpperBound: 5, matchRate: null, status: 'OPEN' });
});
