import { useMutation, useQuery, useSubscription } from '@urql/preact';
import { useEffect, useState } from 'preact/hooks';
import { graphql } from '../../generated/console/gql.js';
import type { ConsoleTaskFieldsFragment, SegmentTemplateKey } from '../../generated/console/graphql.js';
import { formatCount } from '../format.js';
import { FormProblems, type FieldIssue } from './form-issues.js';
import { ProgressBar } from './run-progress.js';

const ConsoleSegmentTemplates = graphql(`
  query ConsoleSegmentTemplates { segmentTemplates { key name description } }
`);

const ConsoleCreateAudience = graphql(`
  mutation ConsoleCreateAudience($input: CreateAudienceInput!) {
    createAudience(input: $input) {
      __typename
      ... on CreateAudienceSuccess { audience { id name kind memberCount } }
      ... on ValidationError { message issues { field message } }
    }
  }
`);

const ConsoleImportMembers = graphql(`
  mutation ConsoleImportMembers($audienceId: ID!, $file: File!) {
    importAudienceMembers(audienceId: $audienceId, file: $file) {
      __typename
      ... on ImportAudienceMembersSuccess { task { id } }
      ... on Error { message }
    }
  }
`);

export const ConsoleTaskFields = graphql(`
  fragment ConsoleTaskFields on Task { id status progress processed total error result }
`);

const ConsoleTaskUpdates = graphql(`
  subscription ConsoleTaskUpdates($taskId: ID!) { taskUpdated(taskId: $taskId) { ...ConsoleTaskFields } }
`);

const ConsoleTask = graphql(`
  query ConsoleTask($taskId: ID!) { task(id: $taskId) { ...ConsoleTaskFields } }
`);

export interface CreatedAudience {
  id: string;
  name: string;
}

type Source = 'paste' | 'upload' | 'template';

/** What a finished CSV import reports (src/workflows/csv-import.ts). */
interface ImportResult {
  imported: number;
  added: number;
  invalid: number;
  invalidSamples: { line: number; reason: string }[];
}

const EXAMPLE_CSV = 'email,phone,first_name,country\nada@example.com,+14155550100,Ada,US\ngrace@example.com,,Grace,GB';

export function AudienceForm({ onCreated }: { onCreated(audience: CreatedAudience): void }) {
  const [name, setName] = useState('');
  const [source, setSource] = useState<Source>('paste');
  const [csv, setCsv] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [template, setTemplate] = useState<SegmentTemplateKey | ''>('');
  // The audience made by a first attempt whose import was refused: a second attempt imports into it.
  const [audience, setAudience] = useState<CreatedAudience | null>(null);
  const [taskId, setTaskId] = useState<string | null>(null);
  const [issues, setIssues] = useState<FieldIssue[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [templates] = useQuery({ query: ConsoleSegmentTemplates });
  const [creating, createAudience] = useMutation(ConsoleCreateAudience);
  const [importing, importMembers] = useMutation(ConsoleImportMembers);

  const submit = async (event: Event) => {
    event.preventDefault();
    setIssues([]);
    setProblem(null);
    let target = audience;
    if (!target) {
      const input = source === 'template' ? { name, segmentTemplate: template || undefined } : { name };
      const result = await createAudience({ input });
      const outcome = result.data?.createAudience;
      if (outcome?.__typename !== 'CreateAudienceSuccess') {
        setIssues(outcome?.__typename === 'ValidationError' ? outcome.issues : []);
        return setProblem(outcome?.__typename === 'ValidationError' ? outcome.message : (result.error?.message ?? 'The audience was not created.'));
      }
      target = outcome.audience;
      if (source === 'template') return onCreated(target);
      setAudience(target);
    }
    const upload = source === 'upload' ? file : new File([csv], 'members.csv', { type: 'text/csv' });
    if (!upload) return setProblem('Choose a CSV file to upload.');
    const result = await importMembers({ audienceId: target.id, file: upload });
    const outcome = result.data?.importAudienceMembers;
    if (outcome?.__typename === 'ImportAudienceMembersSuccess') setTaskId(outcome.task.id);
    else setProblem(outcome && 'message' in outcome ? outcome.message : (result.error?.message ?? 'The file was not accepted.'));
  };

  const busy = creating.fetching || importing.fetching || taskId !== null;
  return (
    <form onSubmit={submit} class="stack" aria-label="New audience">
      <div class="field">
        <label for="audience-name">Audience name</label>
        <input id="audience-name" required maxLength={255} value={name} disabled={audience !== null} onInput={(event) => setName(event.currentTarget.value)} />
      </div>
      <fieldset>
        <legend>Members</legend>
        {([['paste', 'Paste a CSV'], ['upload', 'Upload a CSV file'], ['template', 'A segment template']] as const).map(([value, label]) => (
          <label class="inline" key={value}>
            <input type="radio" name="audience-source" value={value} checked={source === value} disabled={audience !== null && value === 'template'} onChange={() => setSource(value)} />
            {label}
          </label>
        ))}
      </fieldset>
      {source === 'paste' && (
        <div class="field">
          <label for="audience-csv">CSV</label>
          <textarea id="audience-csv" rows={8} required spellcheck={false} placeholder={EXAMPLE_CSV} value={csv} onInput={(event) => setCsv(event.currentTarget.value)} aria-describedby="csv-hint" />
          <p id="csv-hint" class="hint">
            A header row naming the columns: <code>email</code>, <code>phone</code>, <code>external_id</code>, <code>mobile_ad_id</code>,{' '}
            <code>first_name</code>, <code>last_name</code>, <code>country</code>, <code>zip</code>; other columns become attributes.
          </p>
        </div>
      )}
      {source === 'upload' && (
        <div class="field">
          <label for="audience-file">CSV file</label>
          <input id="audience-file" type="file" accept=".csv,text/csv" required onChange={(event) => setFile(event.currentTarget.files?.[0] ?? null)} />
        </div>
      )}
      {source === 'template' && (
        <div class="field">
          <label for="audience-template">Template</label>
          <select id="audience-template" required value={template} onChange={(event) => setTemplate(event.currentTarget.value as SegmentTemplateKey)} aria-describedby="template-hint">
            <option value="">Choose…</option>
            {templates.data?.segmentTemplates.map((option) => <option key={option.key} value={option.key}>{option.name}</option>)}
          </select>
          <p id="template-hint" class="hint">
            {templates.data?.segmentTemplates.find((option) => option.key === template)?.description ??
              'A segment holds every contact of the workspace matching its rule, evaluated at each run.'}
          </p>
        </div>
      )}
      <FormProblems message={problem} issues={issues} />
      {taskId && audience ? (
        <ImportProgress
          taskId={taskId}
          onFinished={(failure) => {
            setTaskId(null);
            if (failure) setProblem(failure);
          }}
          onContinue={() => onCreated(audience)}
        />
      ) : (
        <>
          {audience && problem && (
            <p class="hint">The audience “{audience.name}” was made: fix the file, then import it again into it.</p>
          )}
          <button type="submit" disabled={busy}>
            {audience ? 'Import again' : source === 'template' ? 'Create audience' : 'Create audience and import'}
          </button>
        </>
      )}
    </form>
  );
}

/** Follows an import task to its end: subscribed first, then read, on one socket (see client.ts). */
function ImportProgress({ taskId, onFinished, onContinue }: { taskId: string; onFinished(failure: string | null): void; onContinue(): void }) {
  const [live] = useSubscription({ query: ConsoleTaskUpdates, variables: { taskId } });
  const [read] = useQuery({ query: ConsoleTask, variables: { taskId }, requestPolicy: 'network-only' });
  const task: ConsoleTaskFieldsFragment | null | undefined = [live.data?.taskUpdated, read.data?.task].find(
    (state) => state?.status === 'COMPLETED' || state?.status === 'FAILED',
  ) ?? live.data?.taskUpdated ?? read.data?.task;
  const failed = task?.status === 'FAILED';
  useEffect(() => {
    if (failed) onFinished(task?.error ?? 'The import failed.');
  }, [failed]);
  if (task?.status !== 'COMPLETED') {
    return <div role="status"><ProgressBar label="Importing the CSV" value={task?.progress ?? 0} detail={`${formatCount(task?.processed ?? 0)} rows`} /></div>;
  }
  const result = task.result as ImportResult;
  return (
    <div class="import-result" role="status">
      <p>
        Imported {formatCount(result.imported)} contacts ({formatCount(result.added)} new members);{' '}
        {formatCount(result.invalid)} {result.invalid === 1 ? 'row was' : 'rows were'} invalid.
      </p>
      {result.invalidSamples.length > 0 && (
        <ul class="hint">{result.invalidSamples.map((sample) => <li key={sample.line}>Line {sample.line}: {sample.reason}</li>)}</ul>
      )}
      <button type="button" onClick={onContinue}>Continue</button>
    </div>
  );
}
