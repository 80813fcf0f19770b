import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { SCHEDULED_SYNC_JOB, findSyncScheduleJob } from '../../src/jobs/audience-sync.js';
import { scheduler } from '../../src/jobs/scheduler.js';
import { requestSyncRun } from '../../src/sync/request-run.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { graphql } from '../generated/gql.js';
import type { CreateAudienceSyncInput, UpdateAudienceSyncInput } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { answersToForeignAndUnknownId, answersToMalformedAndUnknownId, malformedIds } from '../support/global-ids.js';
import {
  CreateAudienceSync,
  DeleteAudienceSync,
  ListAudienceSyncs,
  NodeById,
  TriggerAudienceSync,
  UpdateAudienceSync,
} from '../support/operations.js';
import { createAudienceWith, createMetaDestination, createSync, dataOf, expectType } from '../support/scenario.js';
import { waitForRunEnd } from '../support/sync-runs.js';
import { expectNothingWritten } from '../support/tables.js';

const AudienceSyncDetails = graphql(`
  query AudienceSyncDetails($id: ID!) {
    node(id: $id) {
      ... on AudienceSync {
        id name description mode status platformAudienceName
        fieldMapping { sourceField destinationField }
        schedule { cron timezone cadenceHours }
        audience { id }
        destination { id }
      }
    }
  }
`);

const SyncsOfAudience = graphql(`
  query SyncsOfAudience($id: ID!) {
    node(id: $id) {
      ... on Audience { syncs(first: 10) { edges { node { id } } } }
    }
  }
`);

let gateway: TestGateway;
let fake: FakeMeta;
beforeAll(async () => {
  gateway = await startTestGateway();
  fake = await startFakeMeta({ accessToken: 'unused: no test here sends to Meta' });
});
afterAll(async () => {
  await fake.close();
  await gateway.stop();
});
beforeEach(() => gateway.reset());

/** An audience and a Meta destination of the default workspace (or of the key's). */
async function audienceAndDestination(apiKey?: string) {
  const destination = await createMetaDestination(gateway, fake, apiKey);
  const audience = await createAudienceWith(gateway, [], apiKey);
  return { audienceId: audience.id, destinationId: destination.id };
}

/** createAudienceSync's answer (the sync is named "Buyers to Meta" unless `input` names it). */
async function createAudienceSync(input: Omit<CreateAudienceSyncInput, 'name'> & { name?: string }) {
  return dataOf(await gateway.execute(CreateAudienceSync, { input: { name: 'Buyers to Meta', ...input } })).createAudienceSync;
}

/** createAudienceSync's answer for a fresh audience and destination. */
async function createSyncWith(input: Partial<CreateAudienceSyncInput>) {
  return createAudienceSync({ ...(await audienceAndDestination()), ...input });
}

/** A sync of a fresh audience and destination, created with `input`. */
async function syncCreatedWith(input: Partial<CreateAudienceSyncInput>) {
  return expectType(await createSyncWith(input), 'CreateAudienceSyncSuccess').audienceSync;
}

async function syncDetails(id: string) {
  return dataOf(await gateway.execute(AudienceSyncDetails, { id })).node;
}

async function updateSync(id: string, input: UpdateAudienceSyncInput) {
  return dataOf(await gateway.execute(UpdateAudienceSync, { id, input })).updateAudienceSync;
}

async function deleteSync(id: string) {
  return dataOf(await gateway.execute(DeleteAudienceSync, { id })).deleteAudienceSync;
}

async function triggerSync(id: string, dryRun?: boolean) {
  return dataOf(await gateway.execute(TriggerAudienceSync, { id, dryRun })).triggerAudienceSync;
}

async function listedSyncs() {
  return dataOf(await gateway.execute(ListAudienceSyncs, {})).audienceSyncs.edges.map((edge) => edge.node);
}

const decodeSyncId = (globalId: string) => decodeGlobalID(globalId).id;

/** How the sync's schedule job repeats, or undefined when it has none. */
async function scheduleOf(syncId: string) {
  const job = await findSyncScheduleJob(decodeSyncId(syncId));
  return job && { repeatInterval: job.repeatInterval, repeatTimezone: job.repeatTimezone };
}

describe('createAudienceSync', () => {
  test('creates an ACTIVE MIRROR sync every 24 hours with the Meta email and phone mapping by default', async () => {
    const created = await createSyncWith({});

    const sync = expectType(created, 'CreateAudienceSyncSuccess').audienceSync;
    expect(sync).toMatchObject({
      name: 'Buyers to Meta',
      mode: 'MIRROR',
      status: 'ACTIVE',
      schedule: { cron: null, timezone: null, cadenceHours: 24 },
      fieldMapping: [
        { sourceField: 'email', destinationField: 'EMAIL' },
        { sourceField: 'phone', destinationField: 'PHONE' },
      ],
    });
    expect(await scheduleOf(sync.id)).toEqual({ repeatInterval: '24 hours', repeatTimezone: 'UTC' });
  });

  test('a second sync of the same audience to the same destination is a ConflictError; one sync remains', async () => {
    const ids = await audienceAndDestination();
    await createSync(gateway, ids);

    const second = await expectNothingWritten(() => createAudienceSync({ ...ids, name: 'Again' }));

    expect(expectType(second, 'ConflictError').code).toBe('CONFLICT');
    expect(await db().audienceSync.count()).toBe(1);
  });

  test.each<[string, string, Partial<CreateAudienceSyncInput>]>([
    ['a cadence over 720 hours', 'input.schedule.cadenceHours', { schedule: { cadenceHours: 721 } }],
    ['a cron minute out of range', 'input.schedule.cron', { schedule: { cron: '61 * * * *' } }],
    ['a cron that is not one', 'input.schedule.cron', { schedule: { cron: 'not a cron' } }],
    ['an unknown time zone', 'input.schedule.timezone', { schedule: { cron: '0 6 * * *', timezone: 'Mars/Olympus' } }],
    ['a name of 256 characters', 'input.name', { name: 'n'.repeat(256) }],
    [
      'a destination field Meta does not accept',
      'input.fieldMapping.0.destinationField',
      { fieldMapping: [{ sourceField: 'email', destinationField: 'SSN' }] },
    ],
    [
      'a source field that is not a contact field',
      'input.fieldMapping.0.sourceField',
      { fieldMapping: [{ sourceField: 'password', destinationField: 'EMAIL' }] },
    ],
  ])('%s is a ValidationError on %s and creates neither a sync nor a schedule', async (_case, field, input) => {
    const ids = await audienceAndDestination();

    const result = await expectNothingWritten(() => createAudienceSync({ ...ids, ...input }));

    expect(expectType(result, 'ValidationError').field).toBe(field);
    expect(await db().audienceSync.count()).toBe(0);
  });
});

describe('ids that name nothing of the caller', () => {
  type OwnIds = { audienceId: string; destinationId: string };
  type Typename = 'AudienceSync' | 'Audience' | 'Destination';

  /** Every mutation taking a sync, audience or destination id: the id's type, the field its errors
   * name, and the call (the other ids it needs are the caller's own). */
  const mutationsById: [string, Typename, string, (id: string, own: OwnIds) => Promise<unknown>][] = [
    ['createAudienceSync', 'Audience', 'input.audienceId', (audienceId, own) =>
      createAudienceSync({ audienceId, destinationId: own.destinationId })],
    ['createAudienceSync', 'Destination', 'input.destinationId', (destinationId, own) =>
      createAudienceSync({ audienceId: own.audienceId, destinationId })],
    ['updateAudienceSync', 'AudienceSync', 'id', (id) => updateSync(id, { name: 'Renamed' })],
    ['deleteAudienceSync', 'AudienceSync', 'id', deleteSync],
    ['triggerAudienceSync', 'AudienceSync', 'id', (id) => triggerSync(id)],
  ];

  /** A sync of another workspace, with its audience and destination. */
  async function otherWorkspaceIds(): Promise<Record<Typename, string>> {
    const other = await gateway.createWorkspace();
    const ids = await audienceAndDestination(other.apiKey);
    const sync = await createSync(gateway, ids, other.apiKey);
    return { Audience: ids.audienceId, Destination: ids.destinationId, AudienceSync: sync.id };
  }

  test.each(mutationsById)(
    '%s with another workspace’s %s id is the same NotFoundError as an unknown id',
    async (_name, typename, field, mutate) => {
      const own = await audienceAndDestination();
      const theirs = await otherWorkspaceIds();

      const [ofOtherWorkspace, unknown] = await answersToForeignAndUnknownId((id) => mutate(id, own), theirs[typename]);

      expect(ofOtherWorkspace).toMatchObject({ __typename: 'NotFoundError', field });
      expect(ofOtherWorkspace).toEqual(unknown);
      expect(dataOf(await gateway.execute(NodeById, { id: theirs[typename] })).node).toBeNull();
    },
  );

  test.each(mutationsById)('%s with a malformed %s id is a ValidationError on %s', async (_name, typename, field, mutate) => {
    const own = await audienceAndDestination();

    const results = await expectNothingWritten(() => Promise.all(malformedIds(typename).map((id) => mutate(id, own))));

    const article = { Audience: 'an', AudienceSync: 'an', Destination: 'a' }[typename];
    for (const result of results) {
      expect(result).toMatchObject({ __typename: 'ValidationError', field, message: expect.stringContaining(`is not the id of ${article} ${typename}`) });
    }
  });

  test.each(mutationsById)('%s with a %s id whose inner id is not a UUID answers as an unknown id, on %s', async (_name, typename, field, mutate) => {
    const own = await audienceAndDestination();

    const { malformed, unknown } = await answersToMalformedAndUnknownId((id) => mutate(id, own), typename);

    expect(unknown).toMatchObject({ __typename: 'NotFoundError', field });
    for (const answer of malformed) expect(answer).toEqual(unknown);
  });
});

describe('updateAudienceSync', () => {
  test('changes only the fields given', async () => {
    const created = await syncCreatedWith({
      description: 'Weekly buyers',
      mode: 'ADD',
      schedule: { cadenceHours: 6 },
      platformAudienceName: 'Buyers',
    });
    const before = await syncDetails(created.id);

    expectType(await updateSync(created.id, { name: 'Renamed' }), 'UpdateAudienceSyncSuccess');

    expect(await syncDetails(created.id)).toEqual({ ...before, name: 'Renamed' });
    expect(await scheduleOf(created.id)).toEqual({ repeatInterval: '6 hours', repeatTimezone: 'UTC' });
  });

  test('PAUSED removes the schedule job and ACTIVE restores it', async () => {
    const sync = await syncCreatedWith({ schedule: { cadenceHours: 12 } });
    const scheduled = { repeatInterval: '12 hours', repeatTimezone: 'UTC' };
    expect(await scheduleOf(sync.id)).toEqual(scheduled);

    const paused = expectType(await updateSync(sync.id, { status: 'PAUSED' }), 'UpdateAudienceSyncSuccess');
    expect(paused.audienceSync.status).toBe('PAUSED');
    expect(await scheduleOf(sync.id)).toBeUndefined();

    const resumed = expectType(await updateSync(sync.id, { status: 'ACTIVE' }), 'UpdateAudienceSyncSuccess');
    expect(resumed.audienceSync.status).toBe('ACTIVE');
    expect(await scheduleOf(sync.id)).toEqual(scheduled);
  });

  test('switching to a cron schedule with a time zone reschedules the job', async () => {
    const sync = await syncCreatedWith({});

    const updated = expectType(
      await updateSync(sync.id, { schedule: { cron: '30 6 * * 1', timezone: 'Europe/Paris' } }),
      'UpdateAudienceSyncSuccess',
    );

    expect(updated.audienceSync.schedule).toEqual({ cron: '30 6 * * 1', timezone: 'Europe/Paris', cadenceHours: 0 });
    expect(await scheduleOf(sync.id)).toEqual({ repeatInterval: '30 6 * * 1', repeatTimezone: 'Europe/Paris' });
    expect((await scheduler().queryJobs({ name: SCHEDULED_SYNC_JOB })).total).toBe(1);
  });

  test('an invalid schedule is a ValidationError and leaves the sync and its job as they were', async () => {
    const sync = await syncCreatedWith({});

    const result = await expectNothingWritten(() => updateSync(sync.id, { schedule: { cron: '61 * * * *' } }));

    expect(expectType(result, 'ValidationError').field).toBe('input.schedule.cron');
  });
});

describe('deleteAudienceSync', () => {
  test('removes the sync from every read, drops its schedule and cancels its queued run', async () => {
    const ids = await audienceAndDestination();
    const sync = await createSync(gateway, { ...ids, cadenceHours: 24 });
    const queued = await requestSyncRun(decodeSyncId(sync.id), 'MANUAL', false);
    expect(await scheduleOf(sync.id)).toBeDefined();

    const deleted = await deleteSync(sync.id);

    expect(expectType(deleted, 'DeleteAudienceSyncSuccess').deletedId).toBe(sync.id);
    expect(await listedSyncs()).toEqual([]);
    expect(dataOf(await gateway.execute(NodeById, { id: sync.id })).node).toBeNull();
    expect(dataOf(await gateway.execute(SyncsOfAudience, { id: ids.audienceId })).node).toEqual({ syncs: { edges: [] } });
    expect(await scheduleOf(sync.id)).toBeUndefined();
    expect(await db().syncRun.findUniqueOrThrow({ where: { id: queued!.run.id } })).toMatchObject({ status: 'CANCELLED' });
  });

  test('a second delete is a NotFoundError, and the audience can be synced to the destination again', async () => {
    const ids = await audienceAndDestination();
    const sync = await createSync(gateway, ids);
    expectType(await deleteSync(sync.id), 'DeleteAudienceSyncSuccess');

    expect(expectType(await deleteSync(sync.id), 'NotFoundError').code).toBe('NOT_FOUND');

    const recreated = await createSync(gateway, ids);
    expect(recreated.id).not.toBe(sync.id);
    expect(await listedSyncs()).toEqual([{ id: recreated.id, name: 'Buyers to Meta', status: 'ACTIVE' }]);
  });
});

describe('triggerAudienceSync', () => {
  test.each(['PAUSED', 'DRAFT'] as const)('a %s sync is a ConflictError, but a dry run is allowed', async (status) => {
    const sync = await syncCreatedWith({ status });

    const refused = await expectNothingWritten(() => triggerSync(sync.id));
    expect(expectType(refused, 'ConflictError').message).toMatch(`The sync is ${status.toLowerCase()}`);

    const dryRun = expectType(await triggerSync(sync.id, true), 'TriggerAudienceSyncSuccess');
    expect(dryRun.syncRun).toMatchObject({ dryRun: true, trigger: 'MANUAL' });
    // Waiting for the end also keeps the run's writes out of the next test.
    expect(await waitForRunEnd(gateway, dryRun.syncRun.id)).toMatchObject({ status: 'SUCCEEDED', dryRun: true });
  });
});
