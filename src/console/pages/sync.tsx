import { useMutation, useQuery, useSubscription } from '@urql/preact';
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { graphql } from '../../generated/console/gql.js';
import type { ConsoleSyncRunsSubscription, ConsoleSyncStateSubscription } from '../../generated/console/graphql.js';
import { useViewer } from '../app.js';
import { DestinationHealth } from '../components/destination-health.js';
import { RunChart } from '../components/run-chart.js';
import { RunPanel } from '../components/run-progress.js';
import { RunTable } from '../components/run-table.js';
import { SyncStatusBadge } from '../components/status.js';
import { PLATFORM_NAMES, describeSchedule, formatCount, formatDateTime, formatMembers, modeName } from '../format.js';
import { isActive, type Run } from '../run-fields.js';

const ConsoleSync = graphql(`
  query ConsoleSync($id: ID!, $runs: Int!) {
    node(id: $id) {
      __typename
      ... on AudienceSync {
        ...ConsoleSyncSummary
        nextRunAt
        platformAudienceId platformAudienceName
        destination { warnings }
        runs(first: $runs) { edges { node { ...ConsoleRunFields } } }
      }
    }
  }
`);

const ConsoleSyncRuns = graphql(`
  subscription ConsoleSyncRuns($syncId: ID!) {
    syncRunsUpdated(syncId: $syncId) { ...ConsoleRunFields }
  }
`);

const ConsoleSyncState = graphql(`
  subscription ConsoleSyncState($syncId: ID!) {
    audienceSyncUpdated(syncId: $syncId) { id status statusError lastSyncedAt lastSyncedCount nextRunAt updatedAt }
  }
`);

const ConsoleCancelRun = graphql(`
  mutation ConsoleCancelRun($id: ID!) {
    cancelSyncRun(id: $id) {
      __typename
      ... on CancelSyncRunSuccess { stopping syncRun { ...ConsoleRunFields } }
      ... on Error { message }
    }
  }
`);

const ConsoleTriggerSync = graphql(`
  mutation ConsoleTriggerSync($id: ID!, $dryRun: Boolean) {
    triggerAudienceSync(id: $id, dryRun: $dryRun) {
      __typename
      ... on TriggerAudienceSyncSuccess { coalesced syncRun { ...ConsoleRunFields } }
      ... on Error { message }
    }
  }
`);

const ConsoleSetSyncStatus = graphql(`
  mutation ConsoleSetSyncStatus($id: ID!, $status: SyncStatus!) {
    updateAudienceSync(id: $id, input: { status: $status }) {
      __typename
      ... on UpdateAudienceSyncSuccess { audienceSync { id status statusError lastSyncedAt lastSyncedCount nextRunAt updatedAt } }
      ... on Error { message }
    }
  }
`);

/** How many runs the page shows, in the chart and the table. */
const RUNS_SHOWN = 30;

type LiveRun = ConsoleSyncRunsSubscription['syncRunsUpdated'];
type LiveSync = ConsoleSyncStateSubscription['audienceSyncUpdated'];

export function SyncPage({ id }: { id: string }) {
  const viewer = useViewer();
  const canWrite = viewer.role === 'WRITE';
  // Subscribe first, then read: all travel on one socket, in order, so no update is missed.
  const [live] = useSubscription<ConsoleSyncRunsSubscription, Record<string, LiveRun>>(
    { query: ConsoleSyncRuns, variables: { syncId: id } },
    (runs = {}, event) => ({ ...runs, [event.syncRunsUpdated.id]: event.syncRunsUpdated }),
  );
  const [liveSync] = useSubscription<ConsoleSyncStateSubscription, LiveSync | null>(
    { query: ConsoleSyncState, variables: { syncId: id } },
    (_previous, event) => event.audienceSyncUpdated,
  );
  const [{ data, error }] = useQuery({ query: ConsoleSync, variables: { id, runs: RUNS_SHOWN } });
  const [trigger, triggerRun] = useMutation(ConsoleTriggerSync);
  const [statusChange, setStatus] = useMutation(ConsoleSetSyncStatus);
  const [cancellation, cancelRun] = useMutation(ConsoleCancelRun);
  const [notice, setNotice] = useState<string | null>(null);

  if (error) return <p class="error" role="alert">Could not load the sync: {error.message}</p>;
  if (!data) return <p role="status">Loading…</p>;
  const loaded = data.node?.__typename === 'AudienceSync' ? data.node : null;
  if (!loaded) {
    return (
      <>
        <h1>No such sync</h1>
        <p>It may have been deleted, or belong to another workspace. <Link href="/">Back to the syncs</Link></p>
      </>
    );
  }

  const runs = mergeRuns(loaded.runs.edges.map((edge) => edge.node), Object.values(live.data ?? {}));
  const changed = statusChange.data?.updateAudienceSync;
  const sync = {
    ...loaded,
    ...newestState(loaded, liveSync.data, changed?.__typename === 'UpdateAudienceSyncSuccess' ? changed.audienceSync : null),
  };
  const running = runs.find(isActive);
  const latest = runs[0];
  const paused = sync.status === 'PAUSED';

  const startRun = async (dryRun: boolean) => {
    setNotice(null);
    const result = await triggerRun({ id, dryRun });
    const outcome = result.data?.triggerAudienceSync;
    if (outcome?.__typename === 'TriggerAudienceSyncSuccess') {
      setNotice(outcome.coalesced ? 'A run was already queued: this request joined it.' : dryRun ? 'Dry run queued.' : 'Run queued.');
    } else {
      setNotice(outcome && 'message' in outcome ? outcome.message : (result.error?.message ?? 'The run could not be queued.'));
    }
  };
  const stopRun = async (runId: string) => {
    setNotice(null);
    const result = await cancelRun({ id: runId });
    const outcome = result.data?.cancelSyncRun;
    if (outcome?.__typename === 'CancelSyncRunSuccess') {
      setNotice(outcome.stopping ? 'Cancelling: the run stops after its current batch.' : 'Run cancelled.');
    } else {
      setNotice(outcome && 'message' in outcome ? outcome.message : (result.error?.message ?? 'The run could not be cancelled.'));
    }
  };
  const togglePause = async () => {
    setNotice(null);
    const result = await setStatus({ id, status: paused ? 'ACTIVE' : 'PAUSED' });
    const outcome = result.data?.updateAudienceSync;
    if (outcome && outcome.__typename !== 'UpdateAudienceSyncSuccess') setNotice(outcome.message);
    else if (result.error) setNotice(result.error.message);
  };

  return (
    <>
      <p class="breadcrumb"><Link href="/">Syncs</Link> /</p>
      <div class="page-title">
        <h1>{sync.name}</h1>
        <SyncStatusBadge status={sync.status} />
      </div>
      {sync.status === 'ERROR' && sync.statusError && (
        <p class="error banner" role="alert">The last run failed: {sync.statusError}</p>
      )}
      <dl class="facts">
        <div><dt>Audience</dt><dd>{sync.audience.name} ({formatMembers(sync.audience.memberCount)})</dd></div>
        <div><dt>Destination</dt><dd>{sync.destination.name} · {PLATFORM_NAMES[sync.destination.platform]}</dd></div>
        <div><dt>Mode</dt><dd>{modeName(sync.mode)}</dd></div>
        <div><dt>Schedule</dt><dd>{describeSchedule(sync.schedule)}</dd></div>
        <div><dt>Last synced</dt><dd>{formatDateTime(sync.lastSyncedAt)}</dd></div>
        <div><dt>Next run</dt><dd>{sync.nextRunAt ? formatDateTime(sync.nextRunAt) : 'not scheduled'}</dd></div>
        <div><dt>Members synced</dt><dd>{formatCount(sync.lastSyncedCount)}</dd></div>
        <div><dt>Platform audience</dt><dd>{sync.platformAudienceId ?? 'created on the first run'}</dd></div>
      </dl>

      <div class="actions" role="group" aria-label="Run controls">
        <button type="button" disabled={!canWrite || trigger.fetching} onClick={() => void startRun(false)}>Run now</button>
        <button type="button" class="secondary" disabled={!canWrite || trigger.fetching} onClick={() => void startRun(true)}>
          Dry run
        </button>
        <button type="button" class="secondary" disabled={!canWrite || statusChange.fetching} onClick={() => void togglePause()}>
          {paused ? 'Resume schedule' : 'Pause schedule'}
        </button>
        {running && (
          <button
            type="button"
            class="secondary danger"
            disabled={!canWrite || cancellation.fetching || Boolean(running.cancelRequestedAt)}
            onClick={() => void stopRun(running.id)}
          >
            Cancel run
          </button>
        )}
        {!canWrite && <span class="hint">A READ key can watch, not change.</span>}
      </div>
      <p role="status" class="notice">{notice}</p>

      {(running ?? latest) && <RunPanel run={(running ?? latest)!} />}

      <div class="columns">
        <section class="panel wide" aria-labelledby="history-title">
          <h2 id="history-title">Run history</h2>
          <RunChart runs={runs} />
        </section>
        <DestinationHealth destination={sync.destination} canCheck={canWrite} />
      </div>

      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Runs</h2>
        <RunTable runs={runs} />
      </section>
    </>
  );
}

type SyncState = Pick<LiveSync, 'status' | 'statusError' | 'lastSyncedAt' | 'lastSyncedCount' | 'nextRunAt' | 'updatedAt'>;

/** The sync's state as last changed, of those read, seen live, or returned by a mutation. */
function newestState(...states: (SyncState | null | undefined)[]): SyncState {
  const known = states.filter((state): state is SyncState => Boolean(state));
  return known.reduce((newest, state) => (state.updatedAt > newest.updatedAt ? state : newest));
}

/** The runs read with the page, updated by those seen live since (new runs included), newest first. */
function mergeRuns(loaded: Run[], live: Run[]): Run[] {
  const byId = new Map(loaded.map((run) => [run.id, run]));
  for (const run of live) byId.set(run.id, run);
  return [...byId.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0)).slice(0, RUNS_SHOWN);
}
