import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { hashApiKey, isAdminToken } from '../../src/identity/api-keys.js';
import { db } from '../../src/infra/db.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { CreateDestination, ListDestinations } from '../support/operations.js';
import { dataOf, expectType } from '../support/scenario.js';
import { expectNothingWritten } from '../support/tables.js';
import { ADMIN_TOKEN, CreateWorkspace, ListApiKeys, WhoAmI, expectNoTenancyChange } from '../support/tenancy.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ ADMIN_TOKEN });
});
afterAll(async () => {
  await gateway.stop();
});
beforeEach(() => gateway.reset());

const errorCodes = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.map((error) => error.extensions?.code);

const createWorkspace = (name: string, apiKey: string | null = ADMIN_TOKEN) =>
  gateway.execute(CreateWorkspace, { input: { name } }, { apiKey });

describe('createWorkspace', () => {
  test('with the admin token: creates the workspace and a first WRITE key, shown this once', async () => {
    const result = expectType(dataOf(await createWorkspace('Acme')).createWorkspace, 'CreateWorkspaceSuccess');

    expect(result.workspace.name).toBe('Acme');
    expect(result.apiKey).toMatchObject({ role: 'WRITE', revokedAt: null, prefix: result.key.slice(0, 10) });
    expect(result.key).toMatch(/^asg_[A-Za-z0-9_-]{43}$/);
    const viewer = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: result.key })).viewer;
    expect(viewer).toEqual({
      admin: false,
      role: 'WRITE',
      workspace: result.workspace,
      apiKey: { id: result.apiKey.id, prefix: result.apiKey.prefix },
    });
  });

  test('stores only the hash and the prefix of the key, and never returns the key again', async () => {
    const { key, workspace } = expectType(dataOf(await createWorkspace('Acme')).createWorkspace, 'CreateWorkspaceSuccess');

    const rows = await db().$queryRaw<Record<string, unknown>[]>`SELECT * FROM api_key WHERE workspace_id = ${decodeGlobalID(workspace.id).id}::uuid`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ key_hash: hashApiKey(key), prefix: key.slice(0, 10) });
    expect(JSON.stringify(rows)).not.toContain(key.slice(10));
    const listed = await gateway.execute(ListApiKeys, { workspaceId: workspace.id }, { apiKey: ADMIN_TOKEN });
    expect(JSON.stringify(listed)).not.toContain(key.slice(10));
    expect(JSON.stringify(listed)).not.toContain(hashApiKey(key));
  });

  test.each([
    ['an empty name', '   '],
    ['a name of 256 characters', 'n'.repeat(256)],
  ])('%s is a ValidationError on input.name and creates nothing', async (_case, name) => {
    const result = await expectNoTenancyChange(() => createWorkspace(name));

    expect(expectType(dataOf(result).createWorkspace, 'ValidationError').field).toBe('input.name');
  });

  test('a name taken by another workspace is a ConflictError and creates nothing', async () => {
    expectType(dataOf(await createWorkspace('Acme')).createWorkspace, 'CreateWorkspaceSuccess');

    const result = await expectNoTenancyChange(() => createWorkspace(' Acme '));

    expect(expectType(dataOf(result).createWorkspace, 'ConflictError').message).toMatch(/"Acme" exists already/);
  });

  test.each<[string, string, () => Promise<string | null>]>([
    ['no key', 'UNAUTHENTICATED', async () => null],
    ['a wrong admin token', 'UNAUTHENTICATED', async () => `${ADMIN_TOKEN}x`],
    ['a READ key', 'FORBIDDEN', async () => (await gateway.createWorkspace('READ')).apiKey],
    ['a WRITE key (workspace keys cannot create workspaces)', 'FORBIDDEN', async () => gateway.apiKey],
  ])('with %s: refused with %s, nothing created', async (_caller, code, apiKey) => {
    const key = await apiKey();

    const result = await expectNoTenancyChange(() => createWorkspace('Acme', key));

    expect(errorCodes(result)).toEqual([code]);
    expect(result.data).toBeNull();
  });
});

describe('the admin token', () => {
  test('is the admin in viewer, with no workspace', async () => {
    const { viewer } = dataOf(await gateway.execute(WhoAmI, {}, { apiKey: ADMIN_TOKEN }));

    expect(viewer).toEqual({ admin: true, role: null, workspace: null, apiKey: null });
  });

  test('cannot read or change the data of workspaces: FORBIDDEN', async () => {
    const read = await gateway.execute(ListDestinations, {}, { apiKey: ADMIN_TOKEN });
    const write = await expectNothingWritten(() =>
      gateway.execute(CreateDestination, { input: { name: 'Meta', config: { meta: { adAccountId: '1' } } } }, { apiKey: ADMIN_TOKEN }),
    );

    expect(errorCodes(read)).toEqual(['FORBIDDEN']);
    expect(errorCodes(write)).toEqual(['FORBIDDEN']);
    expect(read.errors?.[0]?.message).toMatch(/admin token only manages workspaces and API keys/);
  });

  test('is recognised only when ADMIN_TOKEN is configured, and only exactly', () => {
    expect(isAdminToken(`Bearer ${ADMIN_TOKEN}`, ADMIN_TOKEN)).toBe(true);
    expect(isAdminToken(`Bearer ${ADMIN_TOKEN}`, undefined)).toBe(false);
    expect(isAdminToken(`Bearer ${ADMIN_TOKEN.slice(0, -1)}`, ADMIN_TOKEN)).toBe(false);
    expect(isAdminToken(ADMIN_TOKEN, ADMIN_TOKEN)).toBe(false);
  });
});
