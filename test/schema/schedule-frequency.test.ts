import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { SCHEDULED_SYNC_JOB, findSyncScheduleJob } from '../../src/jobs/audience-sync.js';
import { scheduler } from '../../src/jobs/scheduler.js';
import { graphql } from '../generated/gql.js';
import type { CreateAudienceSyncInput, UpdateAudienceSyncInput } from '../generated/graphql.js';
import { DeleteAudienceSync } from '../support/operations.js';
import { createAudienceWith, createMetaDestination, dataOf, expectType } from '../support/scenario.js';
import { useGatewaySuite } from '../support/suite.js';
import { expectNothingWritten } from '../support/tables.js';
import { HOUR_MS, wallClock } from '../support/wall-clock.js';

const FrequencyCreateSync = graphql(`
  mutation FrequencyCreateSync($input: CreateAudienceSyncInput!) {
    createAudienceSync(input: $input) {
      __typename
      ... on CreateAudienceSyncSuccess {
        audienceSync { id mode status schedule { cron frequency timezone cadenceHours } }
      }
      ... on ValidationError { field message issues { field message } }
      ... on Error { message code }
    }
  }
`);

const FrequencyUpdateSync = graphql(`
  mutation FrequencyUpdateSync($id: ID!, $input: UpdateAudienceSyncInput!) {
    updateAudienceSync(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSyncSuccess {
        audienceSync { id mode status schedule { cron frequency timezone cadenceHours } }
      }
      ... on ValidationError { field message }
      ... on Error { message code }
    }
  }
`);

const FrequencySyncMode = graphql(`
  query FrequencySyncMode($id: ID!) {
    node(id: $id) { ... on AudienceSync { mode } }
    audienceSyncs(first: 10) { edges { node { id mode } } }
  }
`);

/** Declares its variable as the SyncMode enum, as clients do: the alias must fit the same type. */
const FrequencySetModeByVariable = graphql(`
  mutation FrequencySetModeByVariable($id: ID!, $mode: SyncMode!) {
    updateAudienceSync(id: $id, input: { mode: $mode }) {
      __typename
      ... on UpdateAudienceSyncSuccess { audienceSync { mode } }
    }
  }
`);

const FrequencySyncModeValues = graphql(`
  query FrequencySyncModeValues {
    __type(name: "SyncMode") {
      enumValues(includeDeprecated: true) { name isDeprecated deprecationReason }
    }
  }
`);

const suite = useGatewaySuite({ reset: true });

async function createSyncWith(input: Partial<CreateAudienceSyncInput>) {
  const destination = await createMetaDestination(suite.gateway, await suite.fakeMeta());
  const audience = await createAudienceWith(suite.gateway, []);
  const result = await suite.gateway.execute(FrequencyCreateSync, {
    input: { name: 'Buyers to Meta', audienceId: audience.id, destinationId: destination.id, ...input },
  });
  return dataOf(result).createAudienceSync;
}

async function syncCreatedWith(input: Partial<CreateAudienceSyncInput>) {
  return expectType(await createSyncWith(input), 'CreateAudienceSyncSuccess').audienceSync;
}

async function updateSync(id: string, input: UpdateAudienceSyncInput) {
  return dataOf(await suite.gateway.execute(FrequencyUpdateSync, { id, input })).updateAudienceSync;
}

const storedSync = (id: string) => db().audienceSync.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id } });

async function scheduleJobOf(id: string) {
  return findSyncScheduleJob(decodeGlobalID(id).id);
}

describe('schedule frequency', () => {
  test.each([
    ['HOURLY', 'Asia/Kolkata', HOUR_MS, { minute: 0, second: 0 }],
    ['DAILY', 'America/New_York', 24 * HOUR_MS, { hour: 0, minute: 0, second: 0 }],
    ['WEEKLY', 'Europe/Paris', 7 * 24 * HOUR_MS, { weekday: 'Mon', hour: 0, minute: 0, second: 0 }],
  ] as const)(
    '%s in %s is stored, read back, and repeats at its next occurrence in that zone',
    async (frequency, timezone, periodMs, occurrence) => {
      const before = Date.now();
      const sync = await syncCreatedWith({ schedule: { frequency, timezone } });

      expect(sync.schedule).toEqual({ cron: null, frequency, timezone, cadenceHours: 0 });
      expect(await storedSync(sync.id)).toMatchObject({
        scheduleFrequency: frequency,
        scheduleTimezone: timezone,
        scheduleCron: null,
        cadenceHours: 0,
      });
      const job = (await scheduleJobOf(sync.id))!;
      expect(job).toMatchObject({ repeatTimezone: timezone, data: { syncId: decodeGlobalID(sync.id).id } });
      // The first occurrence after now: on the frequency's wall-clock time in the zone, within one period.
      const nextRunAt = new Date(job.nextRunAt!);
      expect(wallClock(nextRunAt, timezone)).toMatchObject(occurrence);
      expect(nextRunAt.getTime()).toBeGreaterThan(before);
      expect(nextRunAt.getTime() - before).toBeLessThanOrEqual(periodMs);
    },
  );

  test('without a time zone a frequency runs in UTC', async () => {
    const sync = await syncCreatedWith({ schedule: { frequency: 'DAILY' } });

    expect(sync.schedule).toEqual({ cron: null, frequency: 'DAILY', timezone: 'UTC', cadenceHours: 0 });
    const job = (await scheduleJobOf(sync.id))!;
    expect(job.repeatTimezone).toBe('UTC');
    expect(new Date(job.nextRunAt!).toISOString()).toMatch(/T00:00:00\.000Z$/);
  });

  test('cadenceHours 0 may accompany a frequency', async () => {
    const sync = await syncCreatedWith({ schedule: { frequency: 'HOURLY', cadenceHours: 0 } });

    expect(sync.schedule).toEqual({ cron: null, frequency: 'HOURLY', timezone: 'UTC', cadenceHours: 0 });
  });

  test.each<[string, string, string, CreateAudienceSyncInput['schedule']]>([
    ['a frequency with a cron', 'input.schedule.frequency', 'either frequency or cron', { frequency: 'DAILY', cron: '0 6 * * *' }],
    ['a frequency with cadenceHours', 'input.schedule.frequency', 'either frequency or cadenceHours', { frequency: 'DAILY', cadenceHours: 6 }],
    ['a frequency in an unknown zone', 'input.schedule.timezone', 'IANA time zone', { frequency: 'WEEKLY', timezone: 'Mars/Olympus' }],
    ['a time zone with cadenceHours', 'input.schedule.timezone', 'cron or frequency', { cadenceHours: 6, timezone: 'Europe/Paris' }],
  ])('%s is a ValidationError on %s and creates nothing', async (_case, field, message, schedule) => {
    const destination = await createMetaDestination(suite.gateway, await suite.fakeMeta());
    const audience = await createAudienceWith(suite.gateway, []);

    const result = await expectNothingWritten(async () =>
      dataOf(
        await suite.gateway.execute(FrequencyCreateSync, {
          input: { name: 'Buyers', audienceId: audience.id, destinationId: destination.id, schedule },
        }),
      ).createAudienceSync,
    );

    const error = expectType(result, 'ValidationError');
    expect(error.field).toBe(field);
    expect(error.message).toContain(message);
  });

  test('switching between cadence, frequency and cron replaces the one job and clears the other kinds', async () => {
    const sync = await syncCreatedWith({ schedule: { cadenceHours: 6 } });
    expect((await scheduleJobOf(sync.id))!.repeatInterval).toBe('6 hours');

    const toFrequency = expectType(
      await updateSync(sync.id, { schedule: { frequency: 'WEEKLY', timezone: 'Asia/Tokyo' } }),
      'UpdateAudienceSyncSuccess',
    );
    expect(toFrequency.audienceSync.schedule).toEqual({
      cron: null,
      frequency: 'WEEKLY',
      timezone: 'Asia/Tokyo',
      cadenceHours: 0,
    });
    expect(await scheduleJobOf(sync.id)).toMatchObject({ repeatInterval: '0 0 * * 1', repeatTimezone: 'Asia/Tokyo' });
    expect((await scheduler().queryJobs({ name: SCHEDULED_SYNC_JOB })).total).toBe(1);

    const toCron = expectType(await updateSync(sync.id, { schedule: { cron: '15 7 * * *' } }), 'UpdateAudienceSyncSuccess');
    expect(toCron.audienceSync.schedule).toEqual({ cron: '15 7 * * *', frequency: null, timezone: 'UTC', cadenceHours: 0 });
    expect(await storedSync(sync.id)).toMatchObject({ scheduleFrequency: null, scheduleCron: '15 7 * * *' });
    expect(await scheduleJobOf(sync.id)).toMatchObject({ repeatInterval: '15 7 * * *', repeatTimezone: 'UTC' });

    const toCadence = expectType(await updateSync(sync.id, { schedule: { cadenceHours: 3 } }), 'UpdateAudienceSyncSuccess');
    expect(toCadence.audienceSync.schedule).toEqual({ cron: null, frequency: null, timezone: null, cadenceHours: 3 });
    expect(await scheduleJobOf(sync.id)).toMatchObject({ repeatInterval: '3 hours' });
    expect((await scheduler().queryJobs({ name: SCHEDULED_SYNC_JOB })).total).toBe(1);
  });

  test('an invalid frequency update is a ValidationError and leaves the sync and its job as they were', async () => {
    const sync = await syncCreatedWith({ schedule: { frequency: 'DAILY', timezone: 'Europe/Paris' } });

    const result = await expectNothingWritten(() =>
      updateSync(sync.id, { schedule: { frequency: 'HOURLY', cron: '0 * * * *' } }),
    );

    expect(expectType(result, 'ValidationError').field).toBe('input.schedule.frequency');
  });

  test('PAUSED removes a frequency job, ACTIVE restores it, deleting the sync removes it', async () => {
    const sync = await syncCreatedWith({ schedule: { frequency: 'DAILY', timezone: 'Europe/Paris' } });
    const scheduled = { repeatInterval: '0 0 * * *', repeatTimezone: 'Europe/Paris' };

    expectType(await updateSync(sync.id, { status: 'PAUSED' }), 'UpdateAudienceSyncSuccess');
    expect(await scheduleJobOf(sync.id)).toBeUndefined();
    expectType(await updateSync(sync.id, { status: 'ACTIVE' }), 'UpdateAudienceSyncSuccess');
    expect(await scheduleJobOf(sync.id)).toMatchObject(scheduled);

    const deleted = dataOf(await suite.gateway.execute(DeleteAudienceSync, { id: sync.id })).deleteAudienceSync;
    expectType(deleted, 'DeleteAudienceSyncSuccess');
    expect(await scheduleJobOf(sync.id)).toBeUndefined();
  });
});

describe('APPEND_ONLY mode', () => {
  test('is accepted on create and stored and read back as ADD', async () => {
    const sync = await syncCreatedWith({ mode: 'APPEND_ONLY' });

    expect(sync.mode).toBe('ADD');
    expect((await storedSync(sync.id)).mode).toBe('ADD');
    expect(dataOf(await suite.gateway.execute(FrequencySyncMode, { id: sync.id }))).toEqual({
      node: { mode: 'ADD' },
      audienceSyncs: { edges: [{ node: { id: sync.id, mode: 'ADD' } }] },
    });
  });

  test('is accepted on update, as a literal or as a SyncMode variable, and reads back as ADD', async () => {
    const sync = await syncCreatedWith({ mode: 'MIRROR' });

    const updated = expectType(await updateSync(sync.id, { mode: 'APPEND_ONLY' }), 'UpdateAudienceSyncSuccess');
    expect(updated.audienceSync.mode).toBe('ADD');
    expectType(await updateSync(sync.id, { mode: 'MIRROR' }), 'UpdateAudienceSyncSuccess');

    const byVariable = dataOf(await suite.gateway.execute(FrequencySetModeByVariable, { id: sync.id, mode: 'APPEND_ONLY' }));
    expect(byVariable.updateAudienceSync).toEqual({ __typename: 'UpdateAudienceSyncSuccess', audienceSync: { mode: 'ADD' } });
    expect((await storedSync(sync.id)).mode).toBe('ADD');
  });

  test('is a deprecated value of SyncMode, pointing to ADD; the other values are not deprecated', async () => {
    const values = dataOf(await suite.gateway.execute(FrequencySyncModeValues, {})).__type!.enumValues!;

    expect(values.filter((value) => value.isDeprecated)).toEqual([
      { name: 'APPEND_ONLY', isDeprecated: true, deprecationReason: 'Use ADD, which it stands for.' },
    ]);
    expect(values.map((value) => value.name).sort()).toEqual(['ADD', 'APPEND_ONLY', 'MIRROR', 'REMOVE', 'UPSERT']);
  });

  test('an unknown mode is still refused', async () => {
    const refused = await suite.gateway.execute(FrequencyCreateSync, {
      input: { name: 'n', audienceId: 'a', destinationId: 'd', mode: 'PREPEND' as never },
    });
    expect(refused.errors?.[0]?.message).toMatch(/SyncMode/);
  });
});
