import { useState } from 'preact/hooks';
import type { SyncRunTrigger } from '../../generated/console/graphql.js';
import { formatCount, formatDateTime, formatDuration } from '../format.js';
import type { Run } from '../run-fields.js';
import { RunStatusBadge } from './status.js';

const TRIGGERS: Record<SyncRunTrigger, string> = {
  MANUAL: 'manual',
  SCHEDULE: 'schedule',
  CREATE: 'on create',
  API: 'API',
  PLATFORM_JOB: 'platform job',
};

/** What went wrong or was held back in a run, in the platform's or the gateway's words. */
function RunMessage({ run }: { run: Run }) {
  return (
    <>
      {run.errorMessage && <p class="error run-error">{run.errorMessage}</p>}
      {run.refusalReason && <p>{formatCount(run.membersRefused)} refused: {run.refusalReason}</p>}
      {run.invalidSamples.length > 0 && (
        <details>
          <summary>{run.invalidSamples.length} rejected {run.invalidSamples.length === 1 ? 'row' : 'rows'} (examples)</summary>
          <ul>{run.invalidSamples.map((sample, index) => <li key={index}>{sample}</li>)}</ul>
        </details>
      )}
    </>
  );
}

export function RunTable({ runs }: { runs: Run[] }) {
  const [onlyFailures, setOnlyFailures] = useState(false);
  const shown = onlyFailures ? runs.filter((run) => run.status === 'FAILED') : runs;
  return (
    <>
      <label class="inline">
        <input type="checkbox" checked={onlyFailures} onChange={(event) => setOnlyFailures(event.currentTarget.checked)} />
        Only failed runs
      </label>
      <table class="runs">
        <caption class="visually-hidden">Runs of this sync, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Requested</th>
            <th scope="col">Trigger</th>
            <th scope="col">Status</th>
            <th scope="col" class="number">Added</th>
            <th scope="col" class="number">Removed</th>
            <th scope="col" class="number">Invalid</th>
            <th scope="col">Duration</th>
            <th scope="col">Messages</th>
          </tr>
        </thead>
        <tbody>
          {shown.length === 0 && (
            <tr><td colSpan={8} class="empty">{onlyFailures ? 'No failed runs.' : 'No runs yet.'}</td></tr>
          )}
          {shown.map((run) => (
            <tr key={run.id} data-run-id={run.id} data-status={run.status}>
              <td>{formatDateTime(run.createdAt)}</td>
              <td>{TRIGGERS[run.trigger]}{run.dryRun && <span class="tag">dry run</span>}</td>
              <td><RunStatusBadge status={run.status} /></td>
              <td class="number">{formatCount(run.membersAdded)}</td>
              <td class="number">{formatCount(run.membersRemoved)}</td>
              <td class="number">{formatCount(run.membersInvalid)}</td>
              <td>{formatDuration(run.startedAt, run.finishedAt)}</td>
              <td><RunMessage run={run} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
