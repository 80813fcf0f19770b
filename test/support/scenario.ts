import { expect } from 'vitest';
import type { VariablesOf } from '@graphql-typed-document-node/core';
import type { ExecutionResult } from 'graphql';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { sha256 } from './connectors.js';
import type { TestGateway } from './gateway.js';
import {
  AddAudienceMembers,
  CreateAudience,
  CreateAudienceSync,
  CreateDestination,
  RemoveAudienceMembers,
} from './operations.js';

export const META_TOKEN = 'EAAB-test-token-1234';

/** A Meta sync's field mapping that sends mobile ad ids besides emails. */
export const EMAIL_AND_MADID_MAPPING = [
  { sourceField: 'email', destinationField: 'EMAIL' },
  { sourceField: 'mobileAdId', destinationField: 'MADID' },
];

export { sha256 };

/** The data of a result, failing the test with the errors when there are any. */
export function dataOf<T>(result: ExecutionResult<T>): T {
  expect(result.errors).toBeUndefined();
  return result.data!;
}

/** Narrows a mutation's result union to the member with the given typename, or fails the test. */
export function expectType<T extends { __typename?: string }, N extends string>(
  value: T,
  typename: N,
): Extract<T, { __typename?: N }> {
  expect(value.__typename, JSON.stringify(value)).toBe(typename);
  return value as Extract<T, { __typename?: N }>;
}

/** Creates a destination through the API, failing the test unless it is created. */
export async function createDestinationWith(
  gateway: TestGateway,
  input: VariablesOf<typeof CreateDestination>['input'],
  apiKey?: string,
) {
  const result = dataOf(await gateway.execute(CreateDestination, { input }, { apiKey }));
  return expectType(result.createDestination, 'CreateDestinationSuccess').destination;
}

export function createMetaDestination(gateway: TestGateway, fake: FakeMeta, apiKey?: string) {
  return createDestinationWith(
    gateway,
    {
      name: 'Meta ads',
      config: { meta: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl } },
      credentials: { meta: { accessToken: META_TOKEN } },
    },
    apiKey,
  );
}

export async function createAudienceWith(gateway: TestGateway, emails: string[], apiKey?: string) {
  const created = dataOf(await gateway.execute(CreateAudience, { input: { name: 'Buyers' } }, { apiKey }));
  const audience = expectType(created.createAudience, 'CreateAudienceSuccess').audience;
  if (emails.length > 0) {
    const added = dataOf(
      await gateway.execute(
        AddAudienceMembers,
        { audienceId: audience.id, members: emails.map((email) => ({ email })) },
        { apiKey },
      ),
    );
    expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess');
  }
  return audience;
}

export async function createSync(
  gateway: TestGateway,
  input: {
    audienceId: string;
    destinationId: string;
    mode?: 'MIRROR' | 'ADD' | 'REMOVE' | 'UPSERT';
    cadenceHours?: number;
    fieldMapping?: { sourceField: string; destinationField: string }[];
    platformAudienceName?: string;
    platformAudienceId?: string;
  },
  apiKey?: string,
) {
  const { mode, cadenceHours, ...rest } = input;
  const result = dataOf(
    await gateway.execute(
      CreateAudienceSync,
      {
        input: { name: 'Buyers to Meta', mode: mode ?? 'MIRROR', schedule: { cadenceHours: cadenceHours ?? 0 }, ...rest },
      },
      { apiKey },
    ),
  );
  return expectType(result.createAudienceSync, 'CreateAudienceSyncSuccess').audienceSync;
}

/** A fake Meta and a sync of a fresh audience to it. */
export async function metaSyncScenario(gateway: TestGateway, emails: string[], mode: 'MIRROR' | 'ADD' = 'MIRROR') {
  const fake = await startFakeMeta({ accessToken: META_TOKEN });
  const destination = await createMetaDestination(gateway, fake);
  const audience = await createAudienceWith(gateway, emails);
  const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id, mode });
  return { fake, destination, audience, sync };
}

/** The hashed emails a fake Meta audience holds. */
export function heldEmails(fake: FakeMeta): string[] {
  const [audience] = [...fake.audiences.values()];
  return [...(audience ?? [])].filter((entry) => entry.startsWith('EMAIL:')).map((entry) => entry.slice(6)).sort();
}

export const hashedEmails = (emails: string[]) => emails.map((email) => sha256(email.trim().toLowerCase())).sort();

/** Removes then adds members of an audience by email, checking each change took effect. */
export async function changeMembers(
  gateway: TestGateway,
  audienceId: string,
  change: { add: string[]; remove: string[] },
) {
  const toMembers = (emails: string[]) => emails.map((email) => ({ email }));
  // Each mutation takes at least one member: an empty side is not sent.
  if (change.remove.length > 0) {
    const removed = dataOf(await gateway.execute(RemoveAudienceMembers, { audienceId, members: toMembers(change.remove) }));
    expect(expectType(removed.removeAudienceMembers, 'RemoveAudienceMembersSuccess').removed).toBe(change.remove.length);
  }
  if (change.add.length > 0) {
    const added = dataOf(await gateway.execute(AddAudienceMembers, { audienceId, members: toMembers(change.add) }));
    expect(expectType(added.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(change.add.length);
  }
}
