import { useQuery, useSubscription } from '@urql/preact';
import { Link } from 'wouter-preact';
import { graphql } from '../../generated/console/gql.js';
import type {
  ConsoleSyncSummaryFragment,
  ConsoleWorkspaceRunsSubscription,
  ConsoleWorkspaceSyncsSubscription,
} from '../../generated/console/graphql.js';
import { ProgressBar, describePhase } from '../components/run-progress.js';
import { RunStatusBadge, SyncStatusBadge } from '../components/status.js';
import { PLATFORM_NAMES, describeSchedule, formatCount, formatFromNow, formatMembers, modeName } from '../format.js';
import { isActive, laterRun, type Run } from '../run-fields.js';

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

/** Every run of the workspace as it changes: one subscription for the whole list. */
const ConsoleWorkspaceRuns = graphql(`
  subscription ConsoleWorkspaceRuns {
    syncRunsUpdated { ...ConsoleRunFields sync { id } }
  }
`);

/** Every sync of the workspace as its status, last sync or next run changes. */
const ConsoleWorkspaceSyncs = graphql(`
  subscription ConsoleWorkspaceSyncs {
    audienceSyncUpdated { id status statusError lastSyncedAt lastSyncedCount nextRunAt updatedAt }
  }
`);

const PAGE_SIZE = 100;

type LiveSync = ConsoleWorkspaceSyncsSubscription['audienceSyncUpdated'];

export function SyncsPage() {
  // Subscribe first, then read: all travel on one socket, in order, so no update is missed.
  const [runs] = useSubscription<ConsoleWorkspaceRunsSubscription, Record<string, Run>>(
    { query: ConsoleWorkspaceRuns },
    (latest = {}, event) => {
      const { sync, ...run } = event.syncRunsUpdated;
      return { ...latest, [sync.id]: laterRun(latest[sync.id], run) };
    },
  );
  const [syncStates] = useSubscription<ConsoleWorkspaceSyncsSubscription, Record<string, LiveSync>>(
    { query: ConsoleWorkspaceSyncs },
    (latest = {}, event) => ({ ...latest, [event.audienceSyncUpdated.id]: event.audienceSyncUpdated }),
  );
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
            {syncs.map((sync) => (
              <SyncRow key={sync.id} sync={sync} liveRun={runs.data?.[sync.id]} liveSync={syncStates.data?.[sync.id]} />
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function SyncRow({ sync: loaded, liveRun, liveSync }: { sync: ConsoleSyncSummaryFragment; liveRun?: Run; liveSync?: LiveSync }) {
  const state = liveSync && liveSync.updatedAt >= loaded.updatedAt ? liveSync : loaded;
  const sync = { ...loaded, ...state, lastRun: liveRun ? laterRun(loaded.lastRun, liveRun) : loaded.lastRun };
  const run = sync.lastRun;
  return (
    <tr>
      <th scope="row">
        <Link href={`/syncs/${encodeURIComponent(sync.id)}`}>{sync.name}</Link>
        <div class="sub">{sync.audience.name} · {formatMembers(sync.audience.memberCount)}</div>
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
