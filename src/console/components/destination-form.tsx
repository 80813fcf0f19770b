import { useMutation } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../generated/console/gql.js';
import type { CreateDestinationInput, Platform } from '../../generated/console/graphql.js';
import { PLATFORM_NAMES } from '../format.js';
import { FormProblems, issueFor, type FieldIssue } from './form-issues.js';

const ConsoleCreateDestination = graphql(`
  mutation ConsoleCreateDestination($input: CreateDestinationInput!) {
    createDestination(input: $input) {
      __typename
      ... on CreateDestinationSuccess { destination { id name platform } }
      ... on ValidationError { message issues { field message } }
    }
  }
`);

export interface CreatedDestination {
  id: string;
  name: string;
  platform: Platform;
}

/** The member of the `@oneOf` config and credentials inputs that holds each platform's settings. */
const MEMBERS = { WEBHOOK: 'webhook', META: 'meta', GOOGLE: 'google', LINKEDIN: 'linkedin', X: 'x' } as const satisfies Record<Platform, string>;

interface Field {
  /** Dotted path inside the platform's member of `config` or `credentials`. */
  path: string;
  part: 'config' | 'credentials';
  label: string;
  kind: 'text' | 'secret' | 'url' | 'number' | 'consent' | 'checkbox';
  required?: boolean;
  hint?: string;
}

const secret = (path: string, label: string, hint?: string): Field => ({ path, part: 'credentials', label, kind: 'secret', required: true, hint });

/** Each platform's settings, as its typed config and credentials inputs take them (the schema describes each). */
const FIELDS: Record<Platform, Field[]> = {
  WEBHOOK: [
    { path: 'url', part: 'config', label: 'URL', kind: 'url', required: true, hint: 'Where each batch is POSTed, as signed JSON.' },
    { path: 'batchSize', part: 'config', label: 'Members per request', kind: 'number', hint: '1–10,000; 1,000 by default.' },
    // Shown as typed: the receiver needs the same secret to check signatures.
    { ...secret('signingSecret', 'Signing secret', 'At least 32 characters; copy it into your receiver, which checks X-Signature with it.'), kind: 'text' },
  ],
  META: [
    { path: 'adAccountId', part: 'config', label: 'Ad account id', kind: 'text', required: true, hint: 'e.g. act_1234567890' },
    secret('accessToken', 'Access token'),
  ],
  GOOGLE: [
    { path: 'operatingAccount.accountId', part: 'config', label: 'Google Ads account id', kind: 'text', required: true, hint: 'e.g. 123-456-7890' },
    { path: 'consent.adUserData', part: 'config', label: 'Consent: ad user data', kind: 'consent', required: true },
    { path: 'consent.adPersonalization', part: 'config', label: 'Consent: ad personalization', kind: 'consent', required: true },
    { path: 'customerMatchTermsAccepted', part: 'config', label: 'I accepted the Customer Match terms in Google Ads', kind: 'checkbox' },
    secret('clientId', 'OAuth client id'),
    secret('clientSecret', 'OAuth client secret'),
    secret('refreshToken', 'Refresh token', 'With the datamanager scope.'),
  ],
  LINKEDIN: [
    { path: 'adAccountId', part: 'config', label: 'Ad account number', kind: 'text', required: true },
    secret('accessToken', 'Access token'),
  ],
  X: [
    { path: 'accountId', part: 'config', label: 'Ads account id', kind: 'text', required: true, hint: 'e.g. 18ce54d4x5t' },
    secret('consumerKey', 'Consumer key'),
    secret('consumerSecret', 'Consumer secret'),
    secret('accessToken', 'Access token'),
    secret('accessTokenSecret', 'Access token secret'),
  ],
};

type Values = Record<string, string | boolean>;

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

/** The createDestination input for the form's values: empty optional fields are left out; an unticked box is
 * false, so that the gateway says what it needs beside it. */
function destinationInput(name: string, platform: Platform, values: Values): CreateDestinationInput {
  const parts = { config: {} as Record<string, unknown>, credentials: {} as Record<string, unknown> };
  for (const field of FIELDS[platform]) {
    const value = field.kind === 'checkbox' ? values[field.path] === true : values[field.path];
    if (value === undefined || value === '') continue;
    setPath(parts[field.part], field.path, field.kind === 'number' ? Number(value) : value);
  }
  const member = MEMBERS[platform];
  // Built from the FIELDS table, not typed member by member: the gateway checks every field.
  return {
    name,
    config: { [member]: parts.config },
    ...(Object.keys(parts.credentials).length > 0 ? { credentials: { [member]: parts.credentials } } : {}),
  } as unknown as CreateDestinationInput;
}

/** The input path a ValidationError names for a field of the form, e.g. `config.meta.adAccountId`. */
const inputPath = (platform: Platform, field: Field) => `${field.part}.${MEMBERS[platform]}.${field.path}`;

/** A random signing secret, made in the browser: 32 bytes as 64 hex characters. */
const randomSecret = () => [...crypto.getRandomValues(new Uint8Array(32))].map((byte) => byte.toString(16).padStart(2, '0')).join('');

export function DestinationForm({ onCreated }: { onCreated(destination: CreatedDestination): void }) {
  const [platform, setPlatform] = useState<Platform>('WEBHOOK');
  const [name, setName] = useState('');
  const [values, setValues] = useState<Values>({});
  const [issues, setIssues] = useState<FieldIssue[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [{ fetching }, create] = useMutation(ConsoleCreateDestination);
  const set = (path: string, value: string | boolean) => setValues((current) => ({ ...current, [path]: value }));

  const submit = async (event: Event) => {
    event.preventDefault();
    const result = await create({ input: destinationInput(name, platform, values) });
    const outcome = result.data?.createDestination;
    if (outcome?.__typename === 'CreateDestinationSuccess') return onCreated(outcome.destination);
    setIssues(outcome?.__typename === 'ValidationError' ? outcome.issues : []);
    setProblem(outcome?.__typename === 'ValidationError' ? outcome.message : (result.error?.message ?? 'The destination was not created.'));
  };

  return (
    <form onSubmit={submit} class="stack" aria-label="New destination">
      <div class="field">
        <label for="destination-platform">Platform</label>
        <select id="destination-platform" value={platform} onChange={(event) => { setPlatform(event.currentTarget.value as Platform); setIssues([]); setProblem(null); }}>
          {(Object.keys(FIELDS) as Platform[]).map((key) => <option key={key} value={key}>{PLATFORM_NAMES[key]}</option>)}
        </select>
      </div>
      <div class="field">
        <label for="destination-name">Destination name</label>
        <input id="destination-name" required maxLength={255} value={name} onInput={(event) => setName(event.currentTarget.value)} />
      </div>
      {FIELDS[platform].map((field) => {
        const id = `destination-${field.path.replace(/\./g, '-')}`;
        const issue = issueFor(issues, inputPath(platform, field));
        const describedBy = [field.hint && `${id}-hint`, issue && `${id}-issue`].filter(Boolean).join(' ') || undefined;
        const common = { id, 'aria-invalid': issue ? true : undefined, 'aria-describedby': describedBy };
        return (
          <div class="field" key={`${platform}-${field.path}`}>
            {field.kind === 'checkbox' ? (
              <label class="inline">
                <input type="checkbox" {...common} checked={values[field.path] === true} onChange={(event) => set(field.path, event.currentTarget.checked)} />
                {field.label}
              </label>
            ) : (
              <label for={id}>{field.label}{field.required ? '' : ' (optional)'}</label>
            )}
            {field.kind === 'consent' && (
              <select {...common} required value={String(values[field.path] ?? '')} onChange={(event) => set(field.path, event.currentTarget.value)}>
                <option value="">Choose…</option>
                <option value="CONSENT_GRANTED">Granted</option>
                <option value="CONSENT_DENIED">Denied</option>
              </select>
            )}
            {(field.kind === 'text' || field.kind === 'url' || field.kind === 'number' || field.kind === 'secret') && (
              <div class="with-button">
                <input
                  {...common}
                  type={field.kind === 'secret' ? 'password' : field.kind === 'number' ? 'number' : field.kind === 'url' ? 'url' : 'text'}
                  autocomplete="off"
                  required={field.required}
                  value={String(values[field.path] ?? '')}
                  onInput={(event) => set(field.path, event.currentTarget.value)}
                />
                {field.path === 'signingSecret' && (
                  <button type="button" class="secondary" onClick={() => set(field.path, randomSecret())}>Generate</button>
                )}
              </div>
            )}
            {field.hint && <p id={`${id}-hint`} class="hint">{field.hint}</p>}
            {issue && <p id={`${id}-issue`} class="error">{issue.message}</p>}
          </div>
        );
      })}
      {/* Issues shown beside their field are not repeated here. */}
      <FormProblems
        message={issues.length > 0 ? null : problem}
        issues={issues.filter((issue) => !FIELDS[platform].some((field) => issueFor([issue], inputPath(platform, field))))}
      />
      <button type="submit" disabled={fetching}>{fetching ? 'Creating…' : 'Create destination'}</button>
    </form>
  );
}
