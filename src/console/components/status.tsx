import type { SyncRunStatus, SyncStatus } from '../../generated/console/graphql.js';

const SYNC_STATUS: Record<SyncStatus, string> = { ACTIVE: 'Active', DRAFT: 'Draft', ERROR: 'Error', PAUSED: 'Paused' };
const RUN_STATUS: Record<SyncRunStatus, string> = {
  QUEUED: 'Queued',
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export const SyncStatusBadge = ({ status }: { status: SyncStatus }) => (
  <span class={`badge sync-${status.toLowerCase()}`}>{SYNC_STATUS[status]}</span>
);

export const RunStatusBadge = ({ status }: { status: SyncRunStatus }) => (
  <span class={`badge run-${status.toLowerCase()}`}>{RUN_STATUS[status]}</span>
);
