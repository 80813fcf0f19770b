import { expect } from 'vitest';
import { db } from '../../src/infra/db.js';
import { graphql } from '../generated/gql.js';

/** The admin token the tenancy tests start their gateway with. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789';

export const CreateWorkspace = graphql(`
  mutation CreateWorkspace($input: CreateWorkspaceInput!) {
    createWorkspace(input: $input) {
      __typename
      ... on CreateWorkspaceSuccess {
        workspace { id name }
        apiKey { id name prefix role revokedAt }
        key
      }
      ... on ValidationError { field }
      ... on Error { code message }
    }
  }
`);

export const CreateApiKey = graphql(`
  mutation CreateApiKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      __typename
      ... on CreateApiKeySuccess {
        apiKey { id name prefix role lastUsedAt revokedAt workspace { id } }
        key
      }
      ... on ValidationError { field }
      ... on NotFoundError { field }
      ... on Error { code message }
    }
  }
`);

export const RevokeApiKey = graphql(`
  mutation RevokeApiKey($id: ID!) {
    revokeApiKey(id: $id) {
      __typename
      ... on RevokeApiKeySuccess { apiKey { id prefix revokedAt } }
      ... on ValidationError { field }
      ... on NotFoundError { field }
      ... on Error { code message }
    }
  }
`);

export const ListApiKeys = graphql(`
  query ListApiKeys($workspaceId: ID) {
    apiKeys(first: 50, workspaceId: $workspaceId) {
      edges { node { id name prefix role lastUsedAt revokedAt createdAt } }
    }
  }
`);

export const WhoAmI = graphql(`
  query WhoAmI {
    viewer { admin role workspace { id name } apiKey { id prefix } }
  }
`);

/** Every workspace and API key as stored, but for `last_used_at` (authentication refreshes it). */
export async function snapshotTenancy() {
  const [workspaces, apiKeys] = await Promise.all([
    db().workspace.findMany({ orderBy: { id: 'asc' } }),
    db().apiKey.findMany({ orderBy: { id: 'asc' }, omit: { lastUsedAt: true } }),
  ]);
  return { workspaces, apiKeys };
}

/** Runs `request` and checks it created, changed or revoked no workspace and no key. */
export async function expectNoTenancyChange<T>(request: () => Promise<T>): Promise<T> {
  const before = await snapshotTenancy();
  const result = await request();
  expect(await snapshotTenancy()).toEqual(before);
  return result;
}
