import { graphql } from '../generated/gql.js';

// Operations shared by several test files. The README's examples are among them.

export const DestinationFields = graphql(`
  fragment DestinationFields on Destination {
    id
    name
    platform
    config {
      __typename
      ... on MetaConfig { adAccountId apiVersion baseUrl }
      ... on GoogleConfig {
        api
        operatingAccount { accountType accountId }
        loginAccount { accountType accountId }
        consent { adUserData adPersonalization }
        customerMatchTermsAccepted
        baseUrl
        adsApiVersion
        tokenUrl
      }
      ... on LinkedInConfig { adAccountId linkedInApiVersion: apiVersion baseUrl sourcePlatform segmentReadyDelayMs }
      ... on XConfig { accountId baseUrl }
      ... on WebhookConfig { url batchSize }
    }
    credentialsConfigured
    credentialsHint
  }
`);

export const CreateDestination = graphql(`
  mutation CreateDestination($input: CreateDestinationInput!) {
    createDestination(input: $input) {
      __typename
      ... on CreateDestinationSuccess {
        destination { ...DestinationFields }
      }
      ... on Error { message code }
      ... on ValidationError { field issues { field message } }
    }
  }
`);

export const UpdateDestination = graphql(`
  mutation UpdateDestination($id: ID!, $input: UpdateDestinationInput!) {
    updateDestination(id: $id, input: $input) {
      __typename
      ... on UpdateDestinationSuccess {
        destination { ...DestinationFields }
      }
      ... on Error { message code }
      ... on ValidationError { field issues { field message } }
      ... on NotFoundError { field }
    }
  }
`);

export const DeleteDestination = graphql(`
  mutation DeleteDestination($id: ID!) {
    deleteDestination(id: $id) {
      __typename
      ... on DeleteDestinationSuccess { deletedId }
      ... on Error { message code }
      ... on ValidationError { field }
      ... on NotFoundError { field }
    }
  }
`);

export const ListDestinations = graphql(`
  query ListDestinations {
    destinations(first: 50) { edges { node { id name } } }
  }
`);

export const CreateAudience = graphql(`
  mutation CreateAudience($input: CreateAudienceInput!) {
    createAudience(input: $input) {
      __typename
      ... on CreateAudienceSuccess { audience { id name memberCount } }
      ... on Error { message code }
      ... on ValidationError { field }
    }
  }
`);

export const AddAudienceMembers = graphql(`
  mutation AddAudienceMembers($audienceId: ID!, $members: [AudienceMemberInput!]!) {
    addAudienceMembers(audienceId: $audienceId, members: $members) {
      __typename
      ... on AddAudienceMembersSuccess { added audience { id memberCount } }
      ... on Error { message code }
      ... on ValidationError { field issues { field message } }
      ... on NotFoundError { field }
    }
  }
`);

export const RemoveAudienceMembers = graphql(`
  mutation RemoveAudienceMembers($audienceId: ID!, $members: [AudienceMemberInput!]!) {
    removeAudienceMembers(audienceId: $audienceId, members: $members) {
      __typename
      ... on RemoveAudienceMembersSuccess { removed audience { id memberCount } }
      ... on Error { message code }
      ... on ValidationError { field }
      ... on NotFoundError { field }
    }
  }
`);

export const CreateAudienceSync = graphql(`
  mutation CreateAudienceSync($input: CreateAudienceSyncInput!) {
    createAudienceSync(input: $input) {
      __typename
      ... on CreateAudienceSyncSuccess {
        audienceSync {
          id name mode status
          fieldMapping { sourceField destinationField }
          schedule { cron timezone cadenceHours }
        }
      }
      ... on Error { message code }
      ... on ValidationError { field issues { field message } }
      ... on NotFoundError { field }
    }
  }
`);

export const UpdateAudienceSync = graphql(`
  mutation UpdateAudienceSync($id: ID!, $input: UpdateAudienceSyncInput!) {
    updateAudienceSync(id: $id, input: $input) {
      __typename
      ... on UpdateAudienceSyncSuccess { audienceSync { id mode status schedule { cron timezone cadenceHours } } }
      ... on Error { message code }
      ... on ValidationError { field }
      ... on NotFoundError { field }
    }
  }
`);

export const DeleteAudienceSync = graphql(`
  mutation DeleteAudienceSync($id: ID!) {
    deleteAudienceSync(id: $id) {
      __typename
      ... on DeleteAudienceSyncSuccess { deletedId }
      ... on Error { message code }
      ... on ValidationError { field }
      ... on NotFoundError { field }
    }
  }
`);

export const TriggerAudienceSync = graphql(`
  mutation TriggerAudienceSync($id: ID!, $dryRun: Boolean) {
    triggerAudienceSync(id: $id, dryRun: $dryRun) {
      __typename
      ... on TriggerAudienceSyncSuccess {
        coalesced
        task { id status kind }
        syncRun { id status trigger dryRun }
      }
      ... on Error { message code }
      ... on ValidationError { field }
      ... on NotFoundError { field }
    }
  }
`);

export const AudienceSyncRunUpdated = graphql(`
  subscription AudienceSyncRunUpdated($syncId: ID!) {
    audienceSyncRunUpdated(syncId: $syncId) {
      id status phase progress membersAdded membersRemoved totalMembers errorMessage
    }
  }
`);

export const SyncRunUpdated = graphql(`
  subscription SyncRunUpdated($runId: ID!) {
    syncRunUpdated(runId: $runId) { id status phase progress membersAdded membersRemoved }
  }
`);

export const TaskUpdated = graphql(`
  subscription TaskUpdated($taskId: ID!) {
    taskUpdated(taskId: $taskId) { id status result error run { id status } }
  }
`);

export const SyncRuns = graphql(`
  query SyncRuns($id: ID!, $status: SyncRunStatus) {
    node(id: $id) {
      ... on AudienceSync {
        id status statusError lastSyncedAt lastSyncedCount platformAudienceId
        lastRun { id status }
        runs(first: 20, status: $status) {
          edges { node { id status trigger membersAdded membersRemoved membersInvalid totalMembers errorMessage startedAt finishedAt } }
        }
      }
    }
  }
`);

export const ListAudienceSyncs = graphql(`
  query ListAudienceSyncs($status: SyncStatus, $audienceId: ID, $destinationId: ID) {
    audienceSyncs(first: 50, status: $status, audienceId: $audienceId, destinationId: $destinationId) {
      edges { node { id name status } }
    }
  }
`);

export const NodeById = graphql(`
  query NodeById($id: ID!) {
    node(id: $id) { __typename id }
  }
`);

export const TestDestination = graphql(`
  mutation TestDestination($id: ID!) {
    testDestination(id: $id) {
      __typename
      ... on TestDestinationSuccess { ok message retryable destination { id } }
      ... on Error { code message }
    }
  }
`);

export const SyncAudiences = graphql(`
  mutation SyncAudiences($input: SyncAudiencesInput!) {
    syncAudiences(input: $input) {
      __typename
      ... on SyncAudiencesSuccess { task { id kind status progress processed total } }
      ... on Error { code message }
      ... on ValidationError { field issues { field message } }
    }
  }
`);

export const DeleteAudience = graphql(`
  mutation DeleteAudience($id: ID!) {
    deleteAudience(id: $id) {
      __typename
      ... on DeleteAudienceSuccess { deletedId }
      ... on Error { code message }
      ... on NotFoundError { field }
    }
  }
`);
