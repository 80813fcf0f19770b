import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../generated/console/gql.js';
import type { ScheduleFrequency, SyncMode, SyncScheduleInput } from '../../generated/console/graphql.js';
import { MODE_NAMES } from '../format.js';
import { FormProblems, type FieldIssue } from './form-issues.js';

const ConsoleCreateSync = graphql(`
  mutation ConsoleCreateSync($input: CreateAudienceSyncInput!) {
    createAudienceSync(input: $input) {
      __typename
      ... on CreateAudienceSyncSuccess { audienceSync { id } }
      ... on ValidationError { message issues { field message } }
      ... on Error { message }
    }
  }
`);

type Schedule = 'MANUAL' | ScheduleFrequency | 'CRON';

const SCHEDULES: [Schedule, string][] = [
  ['MANUAL', 'Only when I run it'],
  ['HOURLY', 'Every hour'],
  ['DAILY', 'Every day at midnight'],
  ['WEEKLY', 'Every Monday at midnight'],
  ['CRON', 'A cron expression'],
];

const browserTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

function scheduleInput(schedule: Schedule, cron: string, timezone: string): SyncScheduleInput {
  if (schedule === 'MANUAL') return { cadenceHours: 0 };
  if (schedule === 'CRON') return { cron, timezone };
  return { frequency: schedule, timezone };
}

interface Props {
  audience: { id: string; name: string };
  destination: { id: string; name: string };
  onCreated(syncId: string): void;
}

export function SyncForm({ audience, destination, onCreated }: Props) {
  const [name, setName] = useState(`${audience.name} to ${destination.name}`);
  const [mode, setMode] = useState<SyncMode>('MIRROR');
  const [schedule, setSchedule] = useState<Schedule>('MANUAL');
  const [cron, setCron] = useState('0 6 * * *');
  const [timezone, setTimezone] = useState(browserTimeZone);
  const [runOnCreate, setRunOnCreate] = useState(true);
  const [issues, setIssues] = useState<FieldIssue[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(ConsoleCreateSync);

  const submit = async (event: Event) => {
    event.preventDefault();
    const result = await create({
      input: {
        name,
        audienceId: audience.id,
        destinationId: destination.id,
        mode,
        schedule: scheduleInput(schedule, cron, timezone),
        runOnCreate,
      },
    });
    const outcome = result.data?.createAudienceSync;
    if (outcome?.__typename === 'CreateAudienceSyncSuccess') return onCreated(outcome.audienceSync.id);
    setIssues(outcome?.__typename === 'ValidationError' ? outcome.issues : []);
    setProblem(outcome && 'message' in outcome ? outcome.message : (result.error?.message ?? 'The sync was not created.'));
  };

  return (
    <form onSubmit={submit} class="stack" aria-label="New sync">
      <div class="field">
        <label for="sync-name">Sync name</label>
        <input id="sync-name" required maxLength={255} value={name} onInput={(event) => setName(event.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="sync-mode">Mode</label>
        <select id="sync-mode" value={mode} onChange={(event) => setMode(event.currentTarget.value as SyncMode)} aria-describedby="sync-mode-hint">
          {(Object.keys(MODE_NAMES) as (keyof typeof MODE_NAMES)[]).map((key) => <option key={key} value={key}>{MODE_NAMES[key]}</option>)}
        </select>
        <p id="sync-mode-hint" class="hint">
          Mirror keeps the destination exactly equal to the audience; add only never removes; remove only never adds; upsert
          also re-sends members whose details changed.
        </p>
      </div>
      <div class="field">
        <label for="sync-schedule">Schedule</label>
        <select id="sync-schedule" value={schedule} onChange={(event) => setSchedule(event.currentTarget.value as Schedule)}>
          {SCHEDULES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select>
      </div>
      {schedule === 'CRON' && (
        <div class="field">
          <label for="sync-cron">Cron expression</label>
          <input id="sync-cron" required value={cron} onInput={(event) => setCron(event.currentTarget.value)} aria-describedby="sync-cron-hint" />
          <p id="sync-cron-hint" class="hint">Five fields: minute hour day month weekday, e.g. <code>0 6 * * *</code> for 6:00 every day.</p>
        </div>
      )}
      {schedule !== 'MANUAL' && (
        <div class="field">
          <label for="sync-timezone">Time zone</label>
          <input id="sync-timezone" required value={timezone} onInput={(event) => setTimezone(event.currentTarget.value)} />
        </div>
      )}
      <label class="inline">
        <input type="checkbox" checked={runOnCreate} onChange={(event) => setRunOnCreate(event.currentTarget.checked)} />
        Run it right away
      </label>
      <FormProblems message={problem} issues={issues} />
      <button type="submit" disabled={fetching}>{fetching ? 'Creating…' : 'Create sync'}</button>
    </form>
  );
}
