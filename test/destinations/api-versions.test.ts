import { describe, expect, it } from 'vitest';
import { SUNSET_WARNING_DAYS, versionNotice, type VersionTable } from '../../src/destinations/api-versions.js';
import { googleConfigSchema } from '../../src/destinations/google/settings.js';
import { linkedInConfigSchema } from '../../src/destinations/linkedin/connector.js';
import { META_API_VERSIONS, metaConfigSchema } from '../../src/destinations/meta/connector.js';
import { xConfigSchema } from '../../src/destinations/x/connector.js';

const TABLE: VersionTable = {
  api: 'Example API',
  field: 'apiVersion',
  versions: [
    { version: 'v3', sunset: null },
    { version: 'v2', sunset: '2027-02-23' },
    { version: 'v1', sunset: '2026-11-10' },
  ],
};

const at = (iso: string) => new Date(iso);

describe('versionNotice', () => {
  it(`is silent until ${SUNSET_WARNING_DAYS} days before the sunset, then warns, then says the version is off`, () => {
    expect(versionNotice(TABLE, 'v2', at('2026-12-24T23:59:59Z'))).toBeNull();
    expect(versionNotice(TABLE, 'v2', at('2026-12-25T00:00:00Z'))).toMatchObject({
      state: 'ending',
      replacement: 'v3',
      message: 'Example API v2 is switched off on 2027-02-23: set apiVersion to v3',
    });
    expect(versionNotice(TABLE, 'v2', at('2027-02-22T23:59:59Z'))?.state).toBe('ending');
    expect(versionNotice(TABLE, 'v2', at('2027-02-23T00:00:00Z'))).toMatchObject({
      state: 'sunset',
      message: 'Example API v2 was switched off on 2027-02-23: set apiVersion to v3',
    });
  });

  it('has nothing to say of a version with no announced sunset', () => {
    expect(versionNotice(TABLE, 'v3', at('2040-01-01T00:00:00Z'))).toBeNull();
  });

  it('says when the table knows no version that outlives the one in use', () => {
    const stale: VersionTable = { ...TABLE, versions: [{ version: 'v1', sunset: '2026-11-10' }] };
    expect(versionNotice(stale, 'v1', at('2026-12-01T00:00:00Z'))?.message).toBe(
      'Example API v1 was switched off on 2026-11-10: this gateway knows no newer version yet: upgrade the gateway',
    );
  });

  it("reads Meta's Marketing API dates: v24.0 off since 2026-11-10, v25.0 warned of from 2026-12-25", () => {
    expect(versionNotice(META_API_VERSIONS, 'v24.0', at('2026-12-01T12:00:00Z'))?.message).toBe(
      'Meta API v24.0 was switched off on 2026-11-10: set apiVersion to v27.0',
    );
    expect(versionNotice(META_API_VERSIONS, 'v25.0', at('2026-12-01T12:00:00Z'))).toBeNull();
    expect(versionNotice(META_API_VERSIONS, 'v25.0', at('2027-01-10T00:00:00Z'))?.message).toBe(
      'Meta API v25.0 is switched off on 2027-02-23: set apiVersion to v27.0',
    );
  });
});

const GOOGLE = {
  operatingAccount: { accountId: '123' },
  consent: { adUserData: 'CONSENT_GRANTED', adPersonalization: 'CONSENT_GRANTED' },
  customerMatchTermsAccepted: true,
};

/** The issues a config schema reports, as `path: message`. */
function issuesOf(schema: { safeParse(value: unknown): { error?: { issues: { path: PropertyKey[]; message: string }[] } } }, config: unknown) {
  return (schema.safeParse(config).error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('strict platform configs', () => {
  it.each([
    ['Meta', metaConfigSchema, { adAccountId: '1', baseURL: 'https://staging.example' }, 'baseURL: unknown key "baseURL": did you mean "baseUrl"?'],
    ['Meta', metaConfigSchema, { adAccountId: '1', apiVerison: 'v26.0' }, 'apiVerison: unknown key "apiVerison": did you mean "apiVersion"?'],
    ['LinkedIn', linkedInConfigSchema, { adAccountId: '1', adAcountId: '1' }, 'adAcountId: unknown key "adAcountId": did you mean "adAccountId"?'],
    ['X', xConfigSchema, { accountId: 'abc', acountId: 'abc' }, 'acountId: unknown key "acountId": did you mean "accountId"?'],
    ['Google', googleConfigSchema, { ...GOOGLE, tokenURL: 'https://x.example' }, 'tokenURL: unknown key "tokenURL": did you mean "tokenUrl"?'],
    [
      'Google (nested)',
      googleConfigSchema,
      { ...GOOGLE, operatingAccount: { accountId: '123', acountType: 'GOOGLE_ADS' } },
      'operatingAccount.acountType: unknown key "acountType": did you mean "accountType"?',
    ],
  ])('%s: an unknown key is refused, named, with the closest known key', (_platform, schema, config, issue) => {
    expect(issuesOf(schema, config)).toContain(issue);
  });

  it('lists the known keys when nothing is close', () => {
    expect(issuesOf(xConfigSchema, { accountId: 'abc', region: 'eu' })).toEqual([
      'region: unknown key "region": the known keys are accountId, baseUrl',
    ]);
  });

  it.each([
    ['Meta', metaConfigSchema, { adAccountId: '1', accessToken: 'EAAB…' }, 'accessToken'],
    ['Google', googleConfigSchema, { ...GOOGLE, api: 'ADS_API', developerToken: 'dev' }, 'developerToken'],
    ['Google', googleConfigSchema, { ...GOOGLE, refreshToken: '1//x' }, 'refreshToken'],
    ['X', xConfigSchema, { accountId: 'abc', consumerSecret: 's' }, 'consumerSecret'],
    ['LinkedIn', linkedInConfigSchema, { adAccountId: '1', accessToken: 'AQV…' }, 'accessToken'],
  ])('%s: a secret in config is refused: it belongs in credentials', (_platform, schema, config, key) => {
    expect(issuesOf(schema, config)).toEqual([`${key}: ${key} is a secret: this belongs in credentials, not in config`]);
  });

  it('reports an unknown key together with the other problems of the config', () => {
    expect(issuesOf(metaConfigSchema, { adAccountId: 'act_x', baseURL: 'https://staging.example' })).toEqual([
      'adAccountId: adAccountId must be the ad account number, optionally prefixed with act_',
      'baseURL: unknown key "baseURL": did you mean "baseUrl"?',
    ]);
  });

  it('refuses versions the gateway does not support, listing those it does', () => {
    expect(issuesOf(metaConfigSchema, { adAccountId: '1', apiVersion: 'v21.0' })).toEqual([
      'apiVersion: apiVersion must be a Marketing API version this gateway supports: v27.0, v26.0, v25.0, v24.0, v23.0, v22.0',
    ]);
  });
});
