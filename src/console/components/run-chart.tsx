import { formatCount, formatShortDateTime } from '../format.js';
import type { Run } from '../run-fields.js';

const SERIES = [
  { key: 'membersAdded', label: 'Added', className: 'added' },
  { key: 'membersRemoved', label: 'Removed', className: 'removed' },
  { key: 'membersInvalid', label: 'Invalid', className: 'invalid' },
] as const;

const WIDTH = 720;
const HEIGHT = 200;
const MARGIN = { top: 12, right: 12, bottom: 28, left: 48 };

/**
 * Added, removed and invalid members of each finished run, oldest on the left, as grouped bars.
 * Drawn as plain SVG: three bar series need no charting library, and each bar carries its value
 * as a title for pointer and screen-reader users alike (the table below holds the same figures).
 */
export function RunChart({ runs }: { runs: Run[] }) {
  const finished = runs.filter((run) => run.finishedAt && !run.dryRun).reverse();
  if (finished.length === 0) return <p class="empty">No finished runs yet: the chart fills in as runs end.</p>;
  const highest = Math.max(1, ...finished.flatMap((run) => SERIES.map((series) => run[series.key])));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const slot = plotWidth / Math.max(finished.length, 8);
  const barWidth = Math.max(2, (slot * 0.8) / SERIES.length);
  const y = (value: number) => MARGIN.top + plotHeight - (value / highest) * plotHeight;
  const first = finished[0]!;
  const last = finished.at(-1)!;
  return (
    <figure class="run-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="run-chart-caption">
        <line class="axis" x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(0)} y2={y(0)} />
        <text class="tick" x={MARGIN.left - 6} y={y(highest) + 4} text-anchor="end">{formatCount(highest)}</text>
        <text class="tick" x={MARGIN.left - 6} y={y(0) + 4} text-anchor="end">0</text>
        {finished.map((run, index) => (
          <g key={run.id} class="run-bars" data-run-id={run.id}>
            {SERIES.map((series, position) => {
              const value = run[series.key];
              return (
                <rect
                  key={series.key}
                  class={`bar ${series.className}`}
                  x={MARGIN.left + index * slot + slot * 0.1 + position * barWidth}
                  y={y(value)}
                  width={barWidth}
                  height={y(0) - y(value)}
                >
                  <title>{`${formatShortDateTime(run.finishedAt!)}: ${series.label.toLowerCase()} ${formatCount(value)}`}</title>
                </rect>
              );
            })}
          </g>
        ))}
        <text class="tick" x={MARGIN.left} y={HEIGHT - 8}>{formatShortDateTime(first.finishedAt!)}</text>
        {finished.length > 1 && (
          <text class="tick" x={WIDTH - MARGIN.right} y={HEIGHT - 8} text-anchor="end">{formatShortDateTime(last.finishedAt!)}</text>
        )}
      </svg>
      <figcaption id="run-chart-caption">
        Members added, removed and invalid in the last {finished.length} finished {finished.length === 1 ? 'run' : 'runs'}
        <span class="legend">
          {SERIES.map((series) => (
            <span key={series.key} class={`legend-item ${series.className}`}>{series.label}</span>
          ))}
        </span>
      </figcaption>
    </figure>
  );
}
