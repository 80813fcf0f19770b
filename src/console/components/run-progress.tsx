import { formatCount, formatDateTime } from '../format.js';
import { isActive, type Run } from '../run-fields.js';
import { RunStatusBadge } from './status.js';

const PHASES: Record<string, string> = {
  queued: 'Queued, waiting for a worker',
  computing: 'Computing what changed',
  preparing: 'Preparing the platform audience',
  adding: 'Adding members',
  updating: 'Updating members',
  removing: 'Removing members',
  waiting: 'Waiting on the platform',
};

export const describePhase = (phase: string): string => PHASES[phase] ?? phase;

export function ProgressBar({ label, value, detail }: { label: string; value: number; detail?: string }) {
  const percent = Math.round(Math.min(Math.max(value, 0), 1) * 100);
  return (
    <div class="progress">
      <div class="progress-label">
        <span>{label}</span>
        <span>{detail ? `${detail} · ` : ''}{percent}%</span>
      </div>
      <div
        class="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={`${percent}%${detail ? `, ${detail}` : ''}`}
      >
        <div class="progress-fill" style={{ width: `${percent}%` }} />
      </div>
    </div>
  );
}

interface Side {
  label: string;
  planned: number;
  done: number;
}

/** How far each side of the run got: the engine sends adds, then updates, then removes, and
 * `progress` is the share of all of them done. Null until the run planned its changes. */
function plannedSides(run: Run): Side[] | null {
  if (run.plannedAdds == null || run.plannedUpdates == null || run.plannedRemoves == null) return null;
  const planned = [
    { label: 'Adding', planned: run.plannedAdds },
    { label: 'Updating', planned: run.plannedUpdates },
    { label: 'Removing', planned: run.plannedRemoves },
  ];
  let left = Math.round(run.progress * (run.plannedAdds + run.plannedUpdates + run.plannedRemoves));
  const sides = planned.map((side) => {
    const done = Math.min(left, side.planned);
    left -= done;
    return { ...side, done };
  });
  const shown = sides.filter((side) => side.planned > 0);
  // Nothing to change still shows one side, full: the run has nothing left to do.
  return shown.length > 0 ? shown : [sides[0]!];
}

/** The latest run: what it is doing while under way, how far it got, its counts as they move;
 * once ended, how it ended. */
export function RunPanel({ run }: { run: Run }) {
  const active = isActive(run);
  const sides = plannedSides(run);
  const kind = run.dryRun ? 'dry run' : 'run';
  return (
    <section class={active ? 'run-panel active' : 'run-panel'} aria-labelledby="run-panel-title">
      <h2 id="run-panel-title">
        {active ? `${kind[0]!.toUpperCase()}${kind.slice(1)} in progress` : `Last ${kind}`} <RunStatusBadge status={run.status} />
      </h2>
      <p class={run.phase === 'waiting' ? 'phase waiting' : 'phase'} aria-live="polite">
        {active ? describePhase(run.phase) : `Ended ${formatDateTime(run.finishedAt)}`}
        {run.waitedSeconds > 0 && ` · waited ${run.waitedSeconds.toFixed(1)} s on the platform`}
      </p>
      {active && run.activity && <p class="activity">{run.activity}</p>}
      {active && run.cancelRequestedAt && <p class="notice">Cancelling: the run stops after its current batch.</p>}
      {run.status === 'CANCELLED' && run.cancelledByName && <p class="hint">Cancelled by the API key “{run.cancelledByName}”.</p>}
      {sides && !run.dryRun ? (
        sides.map((side) => (
          <ProgressBar key={side.label} label={side.label} value={side.planned === 0 ? 1 : side.done / side.planned} detail={`${formatCount(side.done)} of ${formatCount(side.planned)}`} />
        ))
      ) : (
        <ProgressBar label={run.dryRun ? 'Changes counted' : 'Planned changes done'} value={run.progress} />
      )}
      <dl class="counts">
        <div><dt>Audience</dt><dd>{formatCount(run.totalMembers)}</dd></div>
        <div><dt>{run.dryRun ? 'Would add' : 'Added'}</dt><dd>{formatCount(run.membersAdded)}</dd></div>
        <div><dt>{run.dryRun ? 'Would remove' : 'Removed'}</dt><dd>{formatCount(run.membersRemoved)}</dd></div>
        <div><dt>Invalid</dt><dd>{formatCount(run.membersInvalid)}</dd></div>
        {run.membersReceived != null && <div><dt>Platform received</dt><dd>{formatCount(run.membersReceived)}</dd></div>}
      </dl>
      {run.errorMessage && <p class="error" role="alert">{run.errorMessage}</p>}
    </section>
  );
}
