import { decodeGlobalID } from '@pothos/plugin-relay';
import { expect, test } from 'vitest';
import { db } from '../../src/infra/db.js';
import { startFakeWebhookReceiver } from '../fakes/webhook-receiver.js';
import {
  dataOf,
  expectType,
  createAudienceWith,
  createDestinationWith,
  createMetaDestination,
  createSync,
  hashedEmails,
  heldEmails,
} from '../support/scenario.js';
import { AddAudienceMembers, RemoveAudienceMembers } from '../support/operations.js';
import { runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';
import { syncedState } from '../support/synced-state.js';

// A destination that applies a batch and then drops the connection: the gateway cannot know whether
// the batch was applied. The test gateway retries 3 times; the receiver answers those retries 503, so
// the run fails with the batch in doubt, and the audience changes before the next run.
const suite = useGatewaySuite({ reset: true });

const SECRET = 'whsec-doubt-0123456789abcdef0123456789abcd';
/** Adds and removes members by email, 5,000 per request, checking each change took effect. */
async function changeMembers(audienceId: string, change: { add?: string[]; remove?: string[] }) {
  const chunks = (emails: string[] = []) =>
    Array.from({ length: Math.ceil(emails.length / 5_000) }, (_, i) => emails.slice(i * 5_000, (i + 1) * 5_000).map((email) => ({ email })));
  for (const members of chunks(change.remove)) {
    const result = dataOf(await suite.gateway.execute(RemoveAudienceMembers, { audienceId, members })).removeAudienceMembers;
    expect(expectType(result, 'RemoveAudienceMembersSuccess').removed).toBe(members.length);
  }
  for (const members of chunks(change.add)) {
    const result = dataOf(await suite.gateway.execute(AddAudienceMembers, { audienceId, members })).addAudienceMembers;
    expect(expectType(result, 'AddAudienceMembersSuccess').added).toBe(members.length);
  }
}

const emailsOf = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}@example.com`);

async function webhookSync(emails: string[]) {
  const receiver = suite.closeAfterTest(await startFakeWebhookReceiver({ signingSecret: SECRET }));
  const destination = await createDestinationWith(suite.gateway, {
    name: 'CRM webhook',
    config: { webhook: { url: receiver.url, batchSize: 1_000 } },
    credentials: { webhook: { signingSecret: SECRET } },
  });
  const audience = await createAudienceWith(suite.gateway, []);
  await changeMembers(audience.id, { add: emails });
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  return { receiver, audience, sync, syncUuid: decodeGlobalID(sync.id).id };
}

/** Makes the `nth` request that `when` accepts be applied and then dropped (`drop`), and every such
 * request after it fail with a 5xx (`down`) until the gateway's retries are spent. */
function dropNth<Kind, Request>(
  failNext: (kind: Kind, count: number, when: (request: Request) => boolean) => void,
  failures: { drop: Kind; down: Kind },
  nth: number,
  when: (request: Request) => boolean = () => true,
) {
  let seen = 0;
  let dropped = false;
  failNext(failures.drop, 1, (request) => when(request) && ++seen === nth && (dropped = true));
  failNext(failures.down, 3, (request) => dropped && when(request));
}

const FAILURES = { drop: 'drop-after-apply', down: 'server-error' } as const;

test('adds applied but never confirmed: the members who left before the next run are removed from the destination', async () => {
  const members = emailsOf('person', 3_000);
  const { receiver, audience, sync, syncUuid } = await webhookSync(members);
  dropNth(receiver.failNext, FAILURES, 2);

  const { run: failed } = await runSync(suite.gateway, sync.id);
  expect(failed).toMatchObject({ status: 'FAILED', membersAdded: 1_000 });
  // The receiver applied the second batch although the gateway never heard so.
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(members.slice(0, 2_000)));
  const interrupted = await syncedState(syncUuid);
  expect(interrupted.confirmed).toHaveLength(1_000);
  const batch2 = interrupted.inDoubt.slice(0, 1_000);
  expect(batch2.every((member) => member.action === 'add')).toBe(true);

  // 40 members of the batch in doubt leave the audience before the next run.
  const leaving = members.slice(1_000, 1_040);
  await changeMembers(audience.id, { remove: leaving });
  const desired = members.filter((email) => !leaving.includes(email));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1_960, membersRemoved: 40, progress: 1 });
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(desired));
  const state = await syncedState(syncUuid);
  expect(state.inDoubt).toEqual([]);
  expect(state.confirmed).toHaveLength(2_960);

  const deliveries = receiver.deliveries.length;
  const { run: after } = await runSync(suite.gateway, sync.id);
  expect(after).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0, membersRemoved: 0 });
  expect(receiver.deliveries).toHaveLength(deliveries);
  expect(await db().batchInDoubt.count({ where: { syncId: syncUuid } })).toBe(0);
});

test('removals applied but never confirmed: the members who rejoined before the next run are added back', async () => {
  const members = emailsOf('person', 3_000);
  const { receiver, audience, sync, syncUuid } = await webhookSync(members);
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3_000 });

  const leaving = members.slice(500);
  await changeMembers(audience.id, { remove: leaving });
  dropNth(receiver.failNext, FAILURES, 2);
  const { run: failed } = await runSync(suite.gateway, sync.id);
  expect(failed).toMatchObject({ status: 'FAILED', membersRemoved: 1_000 });
  // The receiver removed the second batch's members although the gateway never heard so.
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails([...members.slice(0, 500), ...members.slice(2_500)]));
  const interrupted = await syncedState(syncUuid);
  expect(interrupted.inDoubt.slice(0, 1_000).every((member) => member.action === 'remove')).toBe(true);

  // 40 members of the removals in doubt rejoin before the next run.
  const rejoining = members.slice(1_500, 1_540);
  await changeMembers(audience.id, { add: rejoining });

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 40, membersRemoved: 1_460 });
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails([...members.slice(0, 500), ...rejoining]));
  const state = await syncedState(syncUuid);
  expect(state.inDoubt).toEqual([]);
  expect(state.confirmed).toHaveLength(540);
});

test('a batch applied, then dropped, then retried is one delivery to the receiver and counted once', async () => {
  const members = emailsOf('person', 3);
  const { receiver, sync } = await webhookSync(members);
  receiver.failNext('drop-after-apply');

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(receiver.deliveries).toHaveLength(1);
  expect(receiver.duplicates).toHaveLength(1);
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(members));
});

test('Meta: an upload applied but never confirmed is resolved by the next run, after members left', async () => {
  const members = emailsOf('person', 15_000);
  const fake = await suite.fakeMeta();
  const destination = await createMetaDestination(suite.gateway, fake);
  const audience = await createAudienceWith(suite.gateway, []);
  await changeMembers(audience.id, { add: members });
  const sync = await createSync(suite.gateway, { audienceId: audience.id, destinationId: destination.id });
  const uploads = (request: { url: string }) => request.url.endsWith('/users');
  dropNth(fake.failNext, FAILURES, 2, uploads);

  const { run: failed } = await runSync(suite.gateway, sync.id);
  expect(failed).toMatchObject({ status: 'FAILED', membersAdded: 10_000 });
  expect(heldEmails(fake)).toEqual(hashedEmails(members));

  const leaving = members.slice(10_000, 10_040);
  await changeMembers(audience.id, { remove: leaving });
  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 4_960, membersRemoved: 40 });
  expect(heldEmails(fake)).toEqual(hashedEmails(members.filter((email) => !leaving.includes(email))));
  expect((await syncedState(decodeGlobalID(sync.id).id)).inDoubt).toEqual([]);
}, 60_000);
