import { expect, test } from 'vitest';
import {
  THROTTLE_RETRY_AFTER_SECONDS,
  startFakeWebhookReceiver,
  type AppliedDelivery,
  type FakeWebhookReceiver,
} from '../fakes/webhook-receiver.js';
import type { WebhookConfigInput, WebhookCredentialsInput } from '../generated/graphql.js';
import { AddAudienceMembers, CreateDestination, TestDestination } from '../support/operations.js';
import { changeMembers, createAudienceWith, createSync, dataOf, expectType, hashedEmails, sha256 } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { useGatewaySuite } from '../support/suite.js';

// The test gateway sets ALLOW_PRIVATE_URLS=true so that it may send to the loopback receiver,
// and retries 3 times, backing off from 20 ms.
const suite = useGatewaySuite({ reset: true });

const SECRET = 'whsec-e2e-0123456789abcdef0123456789abcd';
const RECEIVER_TOKEN = 'crm-inbound-token-7d2c91';
const CREDENTIALS = { signingSecret: SECRET, headers: [{ name: 'Authorization', value: `Bearer ${RECEIVER_TOKEN}` }] };
const EMAILS = ['ada@example.com', 'grace@example.com', 'linus@example.org'];

async function startReceiver(): Promise<FakeWebhookReceiver> {
  return suite.closeAfterTest(
    await startFakeWebhookReceiver({
      signingSecret: SECRET,
      requiredHeaders: { authorization: `Bearer ${RECEIVER_TOKEN}` },
    }),
  );
}

function createDestination(config: WebhookConfigInput, credentials: WebhookCredentialsInput = CREDENTIALS) {
  return suite.gateway.execute(CreateDestination, {
    input: { name: 'CRM webhook', config: { webhook: config }, credentials: { webhook: credentials } },
  });
}

async function webhookScenario(emails: string[], config: { batchSize?: number } = {}) {
  const receiver = await startReceiver();
  const created = dataOf(await createDestination({ url: receiver.url, ...config }));
  const destination = expectType(created.createDestination, 'CreateDestinationSuccess').destination;
  const audience = await createAudienceWith(suite.gateway, emails);
  const sync = await createSync(suite.gateway, {
    audienceId: audience.id,
    destinationId: destination.id,
    platformAudienceName: 'Newsletter subscribers',
  });
  return { receiver, destination, audience, sync };
}

const deliveredEmails = (delivery: AppliedDelivery) => delivery.members.map((member) => member['EMAIL_SHA256']).sort();

test('createDestination checks the URL, batch size and signing secret, and keeps headers out of the config', async () => {
  const receiver = await startReceiver();
  const refusals: [WebhookConfigInput, WebhookCredentialsInput, string, RegExp][] = [
    [{ url: 'http://hooks.example.com/audiences' }, CREDENTIALS, 'input.config.webhook.url', /must use https/],
    [{ url: receiver.url, batchSize: 20_000 }, CREDENTIALS, 'input.config.webhook.batchSize', /10000/],
    [{ url: receiver.url }, { signingSecret: 'too-short' }, 'input.credentials.webhook.signingSecret', /at least 32/],
    [
      { url: receiver.url },
      { signingSecret: SECRET, headers: [{ name: 'X-Signature', value: 'forged' }] },
      'input.credentials.webhook.headers.0',
      /set by the gateway/,
    ],
  ];
  for (const [config, credentials, field, message] of refusals) {
    const refused = expectType(dataOf(await createDestination(config, credentials)).createDestination, 'ValidationError');
    expect(refused.issues).toEqual([{ field, message: expect.stringMatching(message) }]);
  }

  // Headers are credentials: the config has no field for them.
  const headersInConfig = await createDestination({ url: receiver.url, headers: CREDENTIALS.headers } as WebhookConfigInput);
  expect(headersInConfig.errors?.[0]?.message).toMatch(/Field "headers" is not defined by type "WebhookConfigInput"/);

  const created = dataOf(await createDestination({ url: receiver.url }));
  const destination = expectType(created.createDestination, 'CreateDestinationSuccess').destination;
  expect(destination).toMatchObject({
    platform: 'WEBHOOK',
    config: { __typename: 'WebhookConfig', url: receiver.url, batchSize: 1_000 },
    credentialsConfigured: true,
    credentialsHint: `…${SECRET.slice(-4)}`,
  });
  expect(JSON.stringify(destination)).not.toContain(RECEIVER_TOKEN);
  expect(receiver.requests).toEqual([]);
});

test('a MIRROR sync sends every member first, then exactly the difference, in signed batches of the configured size', async () => {
  const { receiver, audience, sync } = await webhookScenario(EMAILS, { batchSize: 2 });
  const phoneOnly = dataOf(
    await suite.gateway.execute(AddAudienceMembers, { audienceId: audience.id, members: [{ phone: '+1 415 555 0100' }] }),
  );
  expect(expectType(phoneOnly.addAudienceMembers, 'AddAudienceMembersSuccess').added).toBe(1);

  const first = await runSync(suite.gateway, sync.id);
  expect(first.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 4, membersRemoved: 0, membersInvalid: 0 });
  expect(receiver.deliveries.map(({ type, sequence, last, members }) => [type, sequence, last, members.length])).toEqual([
    ['audience.members.added', 1, false, 2],
    ['audience.members.added', 2, true, 2],
  ]);
  const [batch1, batch2] = receiver.deliveries;
  expect(batch2!.session).toBe(batch1!.session);
  expect(batch1!.audienceId).toBe('newsletter-subscribers');
  expect(batch1!.audienceName).toBe('Newsletter subscribers');
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(EMAILS));
  expect(receiver.held('PHONE_SHA256')).toEqual([sha256('+14155550100')]);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({
    platformAudienceId: 'newsletter-subscribers',
    lastSyncedCount: 4,
  });

  await changeMembers(suite.gateway, audience.id, { add: ['margaret@example.com'], remove: EMAILS.slice(0, 2) });
  const before = receiver.deliveries.length;
  const second = await runSync(suite.gateway, sync.id);

  expect(second.run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 1, membersRemoved: 2 });
  const changes = receiver.deliveries.slice(before);
  expect(changes.map((delivery) => [delivery.type, deliveredEmails(delivery)])).toEqual([
    ['audience.members.added', hashedEmails(['margaret@example.com'])],
    ['audience.members.removed', hashedEmails(EMAILS.slice(0, 2))],
  ]);
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails([EMAILS[2]!, 'margaret@example.com']));
  expect(receiver.held('PHONE_SHA256')).toEqual([sha256('+14155550100')]);
  expect(receiver.duplicates).toEqual([]);
});

test('a throttling receiver is retried after the Retry-After it sends, and the run records the wait', async () => {
  const { receiver, sync } = await webhookScenario(EMAILS);
  receiver.failNext('throttle', 2);

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 3 });
  expect(run.waitedSeconds).toBeGreaterThanOrEqual(2 * THROTTLE_RETRY_AFTER_SECONDS);
  expect(run.waitedSeconds).toBeLessThan(10);
  expect(receiver.requests.map((request) => request.status)).toEqual([429, 429, 204]);
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(EMAILS));
});

test('a batch retried after a lost reply and a 5xx is applied once', async () => {
  const { receiver, sync } = await webhookScenario(EMAILS);
  receiver.failNext('lost-reply');
  receiver.failNext('server-error');

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run, run.errorMessage ?? '').toMatchObject({ status: 'SUCCEEDED', membersAdded: 3, membersInvalid: 0 });
  expect(run.waitedSeconds).toBeGreaterThan(0);
  expect(receiver.requests.map((request) => request.status)).toEqual([502, 503, 204]);
  const ids = new Set(receiver.requests.map((request) => request.headers['x-delivery-id']));
  expect(ids.size).toBe(1);
  expect(receiver.deliveries).toHaveLength(1);
  expect(receiver.duplicates).toEqual([...ids]);
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(EMAILS));

  const requestsBefore = receiver.requests.length;
  expect((await runSync(suite.gateway, sync.id)).run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 0 });
  expect(receiver.requests).toHaveLength(requestsBefore);
});

test('a signing secret the receiver refuses fails the run at once and puts the sync in ERROR', async () => {
  const { receiver, sync } = await webhookScenario(EMAILS);
  receiver.signingSecret = 'the-receiver-rotated-to-this-new-secret!!';

  const { run, task } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'FAILED', membersAdded: 0, waitedSeconds: 0 });
  expect(run.errorMessage).toMatch(/refused our signature or credentials \(HTTP 401\) — check the signing secret/);
  expect(run.errorDetails).toEqual({ platform: 'WEBHOOK', status: 401, retryable: false });
  expect(`${run.errorMessage} ${task.error}`).not.toContain(SECRET);
  expect(receiver.requests.map((request) => request.status)).toEqual([401]);
  expect(await readSync(suite.gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: run.errorMessage });
});

test('members the receiver rejects are counted invalid without failing the run', async () => {
  const { receiver, sync } = await webhookScenario(EMAILS);
  const refused = sha256('grace@example.com');
  receiver.rejectMembers((identifiers) => (identifiers['EMAIL_SHA256'] === refused ? 'unsubscribed in the CRM' : null));

  const { run } = await runSync(suite.gateway, sync.id);
  expect(run).toMatchObject({ status: 'SUCCEEDED', membersAdded: 2, membersInvalid: 1, membersFailed: 0 });
  expect(receiver.held('EMAIL_SHA256')).toEqual(hashedEmails(['ada@example.com', 'linus@example.org']));
});

test('testDestination pings the receiver, and says what is wrong when it cannot', async () => {
  const { receiver, destination } = await webhookScenario([]);
  const check = async () =>
    expectType(dataOf(await suite.gateway.execute(TestDestination, { id: destination.id })).testDestination, 'TestDestinationSuccess');

  const ok = await check();
  expect(ok).toMatchObject({ ok: true, retryable: false });
  expect(ok.message).toMatch(/^The webhook at 127\.0\.0\.1:\d+ accepted a signed ping$/);
  expect(receiver.requests.map((request) => [request.body, request.status])).toEqual([
    [{ type: 'ping', id: receiver.requests[0]!.headers['x-delivery-id'] }, 204],
  ]);
  expect(receiver.deliveries).toEqual([]);

  receiver.signingSecret = 'the-receiver-rotated-to-this-new-secret!!';
  const refused = await check();
  expect(refused).toMatchObject({ ok: false, retryable: false });
  expect(refused.message).toMatch(/check the signing secret/);

  await receiver.close();
  const unreachable = await check();
  expect(unreachable).toMatchObject({ ok: false, retryable: true });
  expect(unreachable.message).toMatch(/Could not reach the webhook/);
});
