import { useQuery } from '@urql/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'wouter-preact';
import { graphql } from '../../generated/console/gql.js';
import { useViewer } from '../app.js';
import { AudienceForm, type CreatedAudience } from '../components/audience-form.js';
import { DestinationForm, type CreatedDestination } from '../components/destination-form.js';
import { SyncForm } from '../components/sync-form.js';
import { PLATFORM_NAMES, formatCount } from '../format.js';

const ConsoleCreateChoices = graphql(`
  query ConsoleCreateChoices($first: Int!) {
    destinations(first: $first) { edges { node { id name platform } } }
    audiences(first: $first) { edges { node { id name kind memberCount } } }
  }
`);

type Step = 'destination' | 'audience' | 'sync';

/** How many existing destinations and audiences are offered (the newest). */
const CHOICES = 100;

/** Destination → audience → sync, each made here or picked among the workspace's, so that a
 * first sync needs no ids copied from one call to the next. */
export function CreatePage() {
  const viewer = useViewer();
  const [, navigate] = useLocation();
  const [destination, setDestination] = useState<CreatedDestination | null>(null);
  const [audience, setAudience] = useState<CreatedAudience | null>(null);
  const [{ data, error }] = useQuery({ query: ConsoleCreateChoices, variables: { first: CHOICES } });
  const step: Step = !destination ? 'destination' : !audience ? 'audience' : 'sync';
  const heading = useRef<HTMLHeadingElement>(null);
  // Each step's heading takes the focus, so keyboard and screen-reader users land on the new form.
  useEffect(() => heading.current?.focus(), [step]);

  if (viewer.role !== 'WRITE') return <p class="error">A READ key cannot create anything: sign in with a WRITE key.</p>;
  const destinations = data?.destinations.edges.map((edge) => edge.node) ?? [];
  const audiences = data?.audiences.edges.map((edge) => edge.node) ?? [];

  return (
    <>
      <h1>New sync</h1>
      {error && <p class="error" role="alert">Could not list the existing destinations and audiences: {error.message}</p>}
      <ol class="steps" aria-label="Steps">
        {(['destination', 'audience', 'sync'] as Step[]).map((name, index) => (
          <li key={name} aria-current={step === name ? 'step' : undefined} class={step === name ? 'current' : ''}>
            {index + 1}. {name[0]!.toUpperCase() + name.slice(1)}
            {name === 'destination' && destination && `: ${destination.name}`}
            {name === 'audience' && audience && `: ${audience.name}`}
          </li>
        ))}
      </ol>
      <section class="panel step" aria-labelledby="step-title">
        {step === 'destination' && (
          <>
            <h2 id="step-title" ref={heading} tabIndex={-1}>Where should the audience go?</h2>
            <ExistingChoice
              label="An existing destination"
              options={destinations.map((option) => ({ id: option.id, label: `${option.name} (${PLATFORM_NAMES[option.platform]})` }))}
              onChoose={(id) => setDestination(destinations.find((option) => option.id === id)!)}
            />
            <DestinationForm onCreated={setDestination} />
          </>
        )}
        {step === 'audience' && (
          <>
            <h2 id="step-title" ref={heading} tabIndex={-1}>Who is in the audience?</h2>
            <ExistingChoice
              label="An existing audience"
              options={audiences.map((option) => ({ id: option.id, label: `${option.name} (${formatCount(option.memberCount)} members)` }))}
              onChoose={(id) => setAudience(audiences.find((option) => option.id === id)!)}
            />
            <AudienceForm onCreated={setAudience} />
          </>
        )}
        {step === 'sync' && destination && audience && (
          <>
            <h2 id="step-title" ref={heading} tabIndex={-1}>How should it sync?</h2>
            <SyncForm audience={audience} destination={destination} onCreated={(id) => navigate(`/syncs/${encodeURIComponent(id)}`)} />
          </>
        )}
      </section>
    </>
  );
}

/** Picks one of the workspace's objects instead of making a new one; hidden when there is none. */
function ExistingChoice({ label, options, onChoose }: { label: string; options: { id: string; label: string }[]; onChoose(id: string): void }) {
  const [chosen, setChosen] = useState('');
  if (options.length === 0) return null;
  return (
    <form
      class="existing"
      onSubmit={(event) => {
        event.preventDefault();
        if (chosen) onChoose(chosen);
      }}
    >
      <label for="existing-choice">{label}</label>
      <div class="with-button">
        <select id="existing-choice" value={chosen} onChange={(event) => setChosen(event.currentTarget.value)}>
          <option value="">Choose…</option>
          {options.map((option) => <option key={option.id} value={option.id}>{option.label}</option>)}
        </select>
        <button type="submit" class="secondary" disabled={!chosen}>Use it</button>
      </div>
      <p class="or">or make a new one:</p>
    </form>
  );
}
