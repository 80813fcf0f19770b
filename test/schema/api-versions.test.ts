import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { apiVersionNotices } from '../../src/infra/metrics.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { graphql } from '../generated/gql.js';
import type { CreateDestinationInput } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { CreateDestination, UpdateDestination } from '../support/operations.js';
import { META_TOKEN, createAudienceWith, createDestinationWith, createSync, dataOf, expectType } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { expectNothingWritten } from '../support/tables.js';

// Platform API versions have sunsets: saving a switched-off one is refused, warnings start 60 days
// ahead, and a run on a switched-off one fails at once. The gateway's clock is set by each test.

const DestinationWarnings = graphql(`
  query DestinationWarnings($id: ID!) {
    node(id: $id) { ... on Destination { id config warnings } }
  }
`);

const TestDestinationWarnings = graphql(`
  mutation TestDestinationWarnings($id: ID!) {
    testDestination(id: $id) {
      __typename
      ... on TestDestinationSuccess { ok message warnings }
    }
  }
`);

let gateway: TestGateway;
let fake: FakeMeta;
beforeAll(async () => {
  gateway = await startTestGateway();
  fake = await startFakeMeta({ accessToken: META_TOKEN });
});
afterAll(async () => {
  await fake.close();
  await gateway.stop();
});
beforeEach(() => gateway.reset());

const metaInput = (config: Record<string, unknown> = {}): CreateDestinationInput => ({
  name: 'Meta ads',
  platform: 'META',
  config: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl, ...config },
  credentials: { accessToken: META_TOKEN },
});

const createDestination = async (input: CreateDestinationInput) =>
  dataOf(await gateway.execute(CreateDestination, { input })).createDestination;

async function warningsOf(id: string) {
  const { node } = dataOf(await gateway.execute(DestinationWarnings, { id }));
  return node && 'warnings' in node ? node.warnings : expect.fail('no destination');
}

describe('saving a destination', () => {
  test('a new destination gets the newest Meta version the gateway supports', async () => {
    const destination = await createDestinationWith(gateway, metaInput());
    expect(destination.config).toMatchObject({ apiVersion: 'v27.0' });
  });

  test('a version Meta has switched off is refused, naming the version to use, and nothing is stored', async () => {
    gateway.clock.set('2026-11-10T00:00:00Z');
    const result = await expectNothingWritten(() => createDestination(metaInput({ apiVersion: 'v24.0' })));

    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.config.apiVersion', message: 'Meta API v24.0 was switched off on 2026-11-10: set apiVersion to v27.0' },
    ]);
  });

  test('the day before its sunset the version is still accepted, with a warning', async () => {
    gateway.clock.set('2026-11-09T23:59:59Z');
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'v24.0' }));
    expect(await warningsOf(destination.id)).toEqual(['Meta API v24.0 is switched off on 2026-11-10: set apiVersion to v27.0']);
  });

  test('an update to a switched-off version is refused and the stored config stays', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'v25.0' }));
    gateway.clock.set('2027-03-01T00:00:00Z');
    const result = await updateConfig(destination.id, { adAccountId: '1234567890', apiVersion: 'v25.0' });

    expect(expectType(result, 'ValidationError').field).toBe('input.config.apiVersion');
    const { node } = dataOf(await gateway.execute(DestinationWarnings, { id: destination.id }));
    expect(node).toMatchObject({ config: { adAccountId: 'act_1234567890', apiVersion: 'v25.0' } });
  });

  test('a LinkedIn version switched off in 2026 is refused', async () => {
    const result = await createDestination({
      name: 'LinkedIn',
      platform: 'LINKEDIN',
      config: { adAccountId: '123', apiVersion: '202510' },
      credentials: { accessToken: 'AQV-token' },
    });
    expect(expectType(result, 'ValidationError').issues[0]?.message).toBe(
      'LinkedIn Marketing API 202510 was switched off on 2026-10-15: set apiVersion to 202603',
    );
  });

  test('an unknown key is refused with the closest known one: a typo never falls back to the default URL', async () => {
    const result = await expectNothingWritten(() =>
      createDestination(metaInput({ baseUrl: undefined, baseURL: 'https://graph.staging.example' })),
    );
    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.config.baseURL', message: 'unknown key "baseURL": did you mean "baseUrl"?' },
    ]);
  });

  test('a secret in config is refused: it belongs in credentials', async () => {
    const result = await expectNothingWritten(() => createDestination(metaInput({ accessToken: META_TOKEN })));
    const issues = expectType(result, 'ValidationError').issues;
    expect(issues).toEqual([
      { field: 'input.config.accessToken', message: 'accessToken is a secret: this belongs in credentials, not in config' },
    ]);
    expect(JSON.stringify(result)).not.toContain(META_TOKEN);
  });

  test('a Google Ads API destination without a developer token is refused when saved, not on its first run', async () => {
    const google = {
      api: 'ADS_API',
      operatingAccount: { accountId: '123-456-7890' },
      consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
      customerMatchTermsAccepted: true,
    };
    const credentials = { clientId: 'client', clientSecret: 'secret', refreshToken: '1//refresh' };
    const refused = await expectNothingWritten(() =>
      createDestination({ name: 'Google Ads', platform: 'GOOGLE', config: google, credentials }),
    );
    expect(expectType(refused, 'ValidationError').issues).toEqual([
      {
        field: 'input.credentials.developerToken',
        message:
          'the Google Ads API (api: ADS_API) needs a developer token: add developerToken to the credentials, or use the Data Manager API',
      },
    ]);

    // Switching a saved Data Manager destination to ADS_API is checked against its stored credentials.
    const saved = await createDestinationWith(gateway, {
      name: 'Google',
      platform: 'GOOGLE',
      config: { ...google, api: 'DATA_MANAGER' },
      credentials,
    });
    const switched = await updateConfig(saved.id, google);
    expect(expectType(switched, 'ValidationError').field).toBe('input.credentials.developerToken');
  });
});

async function updateConfig(id: string, config: Record<string, unknown>) {
  return dataOf(await gateway.execute(UpdateDestination, { id, input: { config: { baseUrl: fake.baseUrl, ...config } } }))
    .updateDestination;
}

describe('warnings', () => {
  test('Destination.warnings and testDestination say what is coming from 60 days before the sunset', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'v25.0' }));
    const warning = 'Meta API v25.0 is switched off on 2027-02-23: set apiVersion to v27.0';

    gateway.clock.set('2026-12-24T23:59:00Z');
    expect(await warningsOf(destination.id)).toEqual([]);
    gateway.clock.set('2026-12-25T00:00:00Z');
    expect(await warningsOf(destination.id)).toEqual([warning]);

    const tested = dataOf(await gateway.execute(TestDestinationWarnings, { id: destination.id })).testDestination;
    expect(tested).toMatchObject({ ok: true, warnings: [warning] });
  });

  test('testDestination on a switched-off version says so without calling Meta', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'v25.0' }));
    gateway.clock.set('2027-02-23T00:00:00Z');
    const before = fake.requests.length;

    const tested = dataOf(await gateway.execute(TestDestinationWarnings, { id: destination.id })).testDestination;
    const message = 'Meta API v25.0 was switched off on 2027-02-23: set apiVersion to v27.0';
    expect(tested).toEqual({ __typename: 'TestDestinationSuccess', ok: false, message, warnings: [message] });
    expect(fake.requests.length).toBe(before);
  });
});

describe('runs', () => {
  test('a run on a switched-off version fails at once with the message, sending nothing; operators get a metric', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'v25.0' }));
    const audience = await createAudienceWith(gateway, ['ada@example.com']);
    const sync = await createSync(gateway, { audienceId: audience.id, destinationId: destination.id });

    gateway.clock.set('2027-01-15T00:00:00Z');
    expect((await runSync(gateway, sync.id)).run.status).toBe('SUCCEEDED');
    expect(await noticeCount('v25.0', 'ending')).toBeGreaterThanOrEqual(1);

    gateway.clock.set('2027-02-23T00:00:00Z');
    const before = fake.requests.length;
    const { run } = await runSync(gateway, sync.id);
    const message = 'Meta API v25.0 was switched off on 2027-02-23: set apiVersion to v27.0';
    expect(run).toMatchObject({ status: 'FAILED', errorMessage: message, errorDetails: { code: 'API_VERSION_SUNSET' } });
    expect(fake.requests.length).toBe(before);
    expect(await readSync(gateway, sync.id)).toMatchObject({ status: 'ERROR', statusError: message });
    expect(await noticeCount('v25.0', 'sunset')).toBeGreaterThanOrEqual(1);
  });
});

async function noticeCount(version: string, state: 'ending' | 'sunset'): Promise<number> {
  const { values } = await apiVersionNotices.get();
  return values.find((value) => value.labels.api_version === version && value.labels.state === state)?.value ?? 0;
}
