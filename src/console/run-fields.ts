import { graphql } from '../generated/console/gql.js';
import type { ConsoleRunFieldsFragment } from '../generated/console/graphql.js';

/** What the console shows of a run, everywhere: the same fields from queries and subscriptions. */
export const ConsoleRunFields = graphql(`
  fragment ConsoleRunFields on SyncRun {
    id status trigger dryRun phase progress
    membersAdded membersRemoved membersUpdated membersInvalid membersFailed membersRefused refusalReason
    membersReceived totalMembers plannedAdds plannedUpdates plannedRemoves waitedSeconds invalidSamples errorMessage
    activity cancelRequestedAt cancelledByName
    createdAt startedAt finishedAt
  }
`);

export type Run = ConsoleRunFieldsFragment;

export const isActive = (run: Pick<Run, 'status'>): boolean => run.status === 'QUEUED' || run.status === 'RUNNING';

/** The later of two versions of "the latest run": a newer run, or a newer state of the same one. */
export function laterRun<R extends Run>(current: R | null | undefined, update: R): R {
  if (!current || current.id === update.id) return update;
  return update.createdAt >= current.createdAt ? update : current;
}
