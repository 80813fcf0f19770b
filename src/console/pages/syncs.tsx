import { useQuery, useSubscription } from '@urql/preact';
import { Link } from 'wouter-preact';
import { graphql } from '../../generated/console/gql.js';
import type { ConsoleSyncSummaryFragment } from '../../generated/console/graphql.js';
import { ProgressBar, describePhase } from '../components/run-progress.js';
import { RunStatusBadge, SyncStatusBadge } from '../components/status.js';
import { PLATFORM_NAMES, describeSchedule, formatCount, formatFromNow, modeName } from '../format.js';
import { isActive, laterRun } from '../run-fields.js';

export const ConsoleSyncSummary = graphql(`
  fragment ConsoleSyncSummary on AudienceSync {
    id name mode status statusError lastSyncedAt lastSyncedCount updatedAt
    schedule { cron frequency cadenceHours timezone }
    destination { id name platform }
    audience { id name memberCount }
    lastRun { ...ConsoleRunFields }
  }
`);

const ConsoleSyncs = graphql(`
  query ConsoleSyncs($first: Int!) {
    audienceSyncs(first: $first) { edges { node { ...ConsoleSyncSummary } } }
  }
`);

const ConsoleSyncRowRuns = graphql(`
  subscription ConsoleSyncRowRuns($syncId: ID!) {
    audienceSyncRunUpdated(syncId: $syncId) {
      ...ConsoleRunFields
      sync { id status statusError lastSyncedAt lastSyncedCount updatedAt }
    }
  }
`);

const PAGE_SIZE = 100;
/** Rows followed live: each holds one subscription, and a socket carries at most
 * MAX_SUBSCRIPTIONS_PER_SOCKET (20 by default) operations at once. */
const LIVE_ROWS = 15;

export function SyncsPage() {
  const [{ data, error, fetching }] = useQuery({ query: ConsoleSyncs, variables: { first: PAGE_SIZE } });
  const syncs = data?.audienceSyncs.edges.map((edge) => edge.node) ?? [];
  return (
    <>
      <div class="page-title">
        <h1>Syncs</h1>
        <Link href="/new" class="button">New sync</Link>
      </div>
      {error && <p class="error" role="alert">Could not load the syncs: {error.message}</p>}
      {!data && fetching && <p role="status">Loading…</p>}
      {data && syncs.length === 0 && (
        <p class="empty">
          No syncs yet. <Link href="/new">Create your first sync</Link>: a destination, an audience and a sync, in three
          steps.
        </p>
      )}
      {syncs.length > 0 && (
        <table class="syncs">
          <caption class="visually-hidden">Every sync of the workspace, updated live</caption>
          <thead>
            <tr>
              <th scope="col">Sync</th>
              <th scope="col">Destination</th>
              <th scope="col">Mode</th>
              <th scope="col">Status</th>
              <th scope="col">Last run</th>
              <th scope="col">Schedule</th>
              <th scope="col" class="number">Members synced</th>
              <th scope="col" class="number">Platform received</th>
            </tr>
          </thead>
          <tbody>
            {syncs.map((sync, index) => (
              <SyncRow key={sync.id} sync={sync} live={index < LIVE_ROWS} />
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function SyncRow({ sync: loaded, live }: { sync: ConsoleSyncSummaryFragment; live: boolean }) {
  const [{ data }] = useSubscription({ query: ConsoleSyncRowRuns, variables: { syncId: loaded.id }, pause: !live });
  const update = data?.audienceSyncRunUpdated;
  const sync =
    update && update.sync.updatedAt >= loaded.updatedAt
      ? { ...loaded, ...update.sync, lastRun: laterRun(loaded.lastRun, update) }
      : { ...loaded, lastRun: update ? laterRun(loaded.lastRun, update) : loaded.lastRun };
  const run = sync.lastRun;
  return (
    <tr>
      <th scope="row">
        <Link href={`/syncs/${encodeURIComponent(sync.id)}`}>{sync.name}</Link>
        <div class="sub">{sync.audience.name} · {formatCount(sync.audience.memberCount)} members</div>
      </th>
      <td>
        {sync.destination.name}
        <div class="sub">{PLATFORM_NAMES[sync.destination.platform]}</div>
      </td>
      <td>{modeName(sync.mode)}</td>
      <td>
        <SyncStatusBadge status={sync.status} />
        {sync.status === 'ERROR' && sync.statusError && <div class="error status-error">{sync.statusError}</div>}
      </td>
      <td>
        {run ? (
          <>
            <RunStatusBadge status={run.status} /> {run.dryRun && <span class="tag">dry run</span>}
            <div class="sub">{formatFromNow(run.finishedAt ?? run.startedAt ?? run.createdAt)}</div>
            {isActive(run) && <ProgressBar label={`${sync.name}: ${describePhase(run.phase)}`} value={run.progress} />}
          </>
        ) : (
          'never'
        )}
      </td>
      <td>{describeSchedule(sync.schedule)}</td>
      <td class="number">{formatCount(sync.lastSyncedCount)}</td>
      <td class="number">{formatCount(run?.membersReceived)}</td>
    </tr>
  );
}
