import { ADS_SCOPE, DATA_MANAGER_SCOPE, startFakeGoogle, type FakeGoogle } from '../fakes/google-server.js';
import type { TestGateway } from './gateway.js';
import { createDestinationWith } from './scenario.js';

// The Google Ads account, customer list and credentials of the sync tests' fake Google.
export const GOOGLE_CLIENT = { clientId: 'client-42.apps.googleusercontent.com', clientSecret: 'GOCSPX-sync-test-secret' };
export const GOOGLE_REFRESH_TOKEN = '1//sync-test-refresh-token-Wxyz';
export const GOOGLE_DEVELOPER_TOKEN = 'dev-token-for-sync-tests';
export const GOOGLE_ACCOUNT_ID = '1234567890';
export const GOOGLE_LIST_ID = '9000000001';

/** A fake Google (Data Manager and Ads APIs) that accepts these credentials and holds an empty GOOGLE_LIST_ID. */
export async function startFakeGoogleWithList(): Promise<FakeGoogle> {
  const fake = await startFakeGoogle({
    ...GOOGLE_CLIENT,
    refreshToken: GOOGLE_REFRESH_TOKEN,
    accountId: GOOGLE_ACCOUNT_ID,
    developerToken: GOOGLE_DEVELOPER_TOKEN,
    scope: `${DATA_MANAGER_SCOPE} ${ADS_SCOPE}`,
  });
  fake.userLists.set(GOOGLE_LIST_ID, { displayName: 'Newsletter buyers', uploadKeyType: 'CONTACT_ID', members: new Set() });
  return fake;
}

/** A Google destination on `fake`, with these credentials, that sends through `api`. */
export function createGoogleDestination(gateway: TestGateway, fake: FakeGoogle, api: 'DATA_MANAGER' | 'ADS_API' = 'DATA_MANAGER') {
  return createDestinationWith(gateway, {
    name: 'Google Ads',
    config: {
      google: {
        api,
        // As people paste it from the Google Ads UI: the gateway drops the dashes.
        operatingAccount: { accountId: '123-456-7890' },
        consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
        customerMatchTermsAccepted: true,
        baseUrl: fake.baseUrl,
        tokenUrl: fake.tokenUrl,
      },
    },
    credentials: { google: { ...GOOGLE_CLIENT, refreshToken: GOOGLE_REFRESH_TOKEN, developerToken: GOOGLE_DEVELOPER_TOKEN } },
  });
}
