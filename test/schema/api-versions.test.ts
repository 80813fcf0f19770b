import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { apiVersionNotices } from '../../src/infra/metrics.js';
import { startFakeMeta, type FakeMeta } from '../fakes/meta-server.js';
import { graphql } from '../generated/gql.js';
import type { CreateDestinationInput, DestinationConfigInput, GoogleConfigInput, MetaConfigInput } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { CreateDestination, UpdateDestination } from '../support/operations.js';
import { META_TOKEN, createAudienceWith, createDestinationWith, createSync, dataOf, expectType } from '../support/scenario.js';
import { readSync, runSync } from '../support/sync-runs.js';
import { expectNothingWritten } from '../support/tables.js';

// Platform API versions have sunsets: saving a switched-off one is refused, warnings start 60 days
// ahead, and a run on a switched-off one fails at once. The gateway's clock is set by each test.

const DestinationWarnings = graphql(`
  query DestinationWarnings($id: ID!) {
    node(id: $id) { ... on Destination { id config { ... on MetaConfig { adAccountId apiVersion } } warnings } }
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

const metaInput = (config: Partial<MetaConfigInput> = {}): CreateDestinationInput => ({
  name: 'Meta ads',
  config: { meta: { adAccountId: 'act_1234567890', baseUrl: fake.baseUrl, ...config } },
  credentials: { meta: { accessToken: META_TOKEN } },
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
    expect(destination.config).toMatchObject({ __typename: 'MetaConfig', apiVersion: 'V27_0' });
  });

  test('a version Meta has switched off is refused, naming the version to use, and nothing is stored', async () => {
    gateway.clock.set('2026-11-10T00:00:00Z');
    const result = await expectNothingWritten(() => createDestination(metaInput({ apiVersion: 'V24_0' })));

    expect(expectType(result, 'ValidationError').issues).toEqual([
      { field: 'input.config.meta.apiVersion', message: 'Meta API v24.0 was switched off on 2026-11-10: set apiVersion to v27.0' },
    ]);
  });

  test('the day before its sunset the version is still accepted, with a warning', async () => {
    gateway.clock.set('2026-11-09T23:59:59Z');
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'V24_0' }));
    expect(await warningsOf(destination.id)).toEqual(['Meta API v24.0 is switched off on 2026-11-10: set apiVersion to v27.0']);
  });

  test('an update to a switched-off version is refused and the stored config stays', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'V25_0' }));
    gateway.clock.set('2027-03-01T00:00:00Z');
    const result = await updateConfig(destination.id, { meta: { adAccountId: '1234567890', apiVersion: 'V25_0', baseUrl: fake.baseUrl } });

    expect(expectType(result, 'ValidationError').field).toBe('input.config.meta.apiVersion');
    const { node } = dataOf(await gateway.execute(DestinationWarnings, { id: destination.id }));
    expect(node).toMatchObject({ config: { adAccountId: 'act_1234567890', apiVersion: 'V25_0' } });
  });

  test('a LinkedIn version switched off in 2026 is refused', async () => {
    const result = await createDestination({
      name: 'LinkedIn',
      config: { linkedin: { adAccountId: '123', apiVersion: 'V202510' } },
      credentials: { linkedin: { accessToken: 'AQV-token' } },
    });
    expect(expectType(result, 'ValidationError').issues).toEqual([
      {
        field: 'input.config.linkedin.apiVersion',
        message: 'LinkedIn Marketing API 202510 was switched off on 2026-10-15: set apiVersion to 202603',
      },
    ]);
  });

  // The typed input has no room for an unknown key or a secret in config; the connectors' own schemas
  // refuse them too, for stored settings (test/destinations/api-versions.test.ts).
  test('an unknown key is refused by GraphQL with the closest known field: a typo never falls back to the default URL', async () => {
    const typo = { adAccountId: 'act_1234567890', baseURL: 'https://graph.staging.example' } as MetaConfigInput;
    const result = await expectNothingWritten(() =>
      gateway.execute(CreateDestination, { input: { name: 'Meta ads', config: { meta: typo } } }),
    );
    expect(result.data).toBeUndefined();
    expect(result.errors?.[0]?.message).toMatch(/Field "baseURL" is not defined by type "MetaConfigInput"\. Did you mean "baseUrl"\?/);
  });

  test('a secret in config is refused: no config field takes it', async () => {
    const secret = { adAccountId: 'act_1234567890', accessToken: META_TOKEN } as MetaConfigInput;
    const result = await expectNothingWritten(() =>
      gateway.execute(CreateDestination, { input: { name: 'Meta ads', config: { meta: secret } } }),
    );
    expect(result.errors?.[0]?.message).toMatch(/Field "accessToken" is not defined by type "MetaConfigInput"/);
  });

  test('a Google Ads API destination without a developer token is refused when saved, not on its first run', async () => {
    const google: GoogleConfigInput = {
      api: 'ADS_API',
      operatingAccount: { accountId: '123-456-7890' },
      consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
      customerMatchTermsAccepted: true,
    };
    const credentials = { clientId: 'client', clientSecret: 'secret', refreshToken: '1//refresh' };
    const refused = await expectNothingWritten(() =>
      createDestination({ name: 'Google Ads', config: { google }, credentials: { google: credentials } }),
    );
    expect(expectType(refused, 'ValidationError').issues).toEqual([
      {
        field: 'input.credentials.google.developerToken',
        message:
          'the Google Ads API (api: ADS_API) needs a developer token: add developerToken to the credentials, or use the Data Manager API',
      },
    ]);

    // Switching a saved Data Manager destination to ADS_API is checked against its stored credentials.
    const saved = await createDestinationWith(gateway, {
      name: 'Google',
      config: { google: { ...google, api: 'DATA_MANAGER' } },
      credentials: { google: credentials },
    });
    const switched = await updateConfig(saved.id, { google });
    expect(expectType(switched, 'ValidationError').field).toBe('input.credentials.google.developerToken');
  });
});

async function updateConfig(id: string, config: DestinationConfigInput) {
  return dataOf(await gateway.execute(UpdateDestination, { id, input: { config } })).updateDestination;
}

describe('warnings', () => {
  test('Destination.warnings and testDestination say what is coming from 60 days before the sunset', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'V25_0' }));
    const warning = 'Meta API v25.0 is switched off on 2027-02-23: set apiVersion to v27.0';

    gateway.clock.set('2026-12-24T23:59:00Z');
    expect(await warningsOf(destination.id)).toEqual([]);
    gateway.clock.set('2026-12-25T00:00:00Z');
    expect(await warningsOf(destination.id)).toEqual([warning]);

    const tested = dataOf(await gateway.execute(TestDestinationWarnings, { id: destination.id })).testDestination;
    expect(tested).toMatchObject({ ok: true, warnings: [warning] });
  });

  test('testDestination on a switched-off version says so without calling Meta', async () => {
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'V25_0' }));
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
    const destination = await createDestinationWith(gateway, metaInput({ apiVersion: 'V25_0' }));
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
