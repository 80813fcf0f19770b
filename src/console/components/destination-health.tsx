import { useMutation } from '@urql/preact';
import { useEffect } from 'preact/hooks';
import { graphql } from '../../generated/console/gql.js';
import type { Platform } from '../../generated/console/graphql.js';
import { PLATFORM_NAMES } from '../format.js';

const ConsoleTestDestination = graphql(`
  mutation ConsoleTestDestination($id: ID!) {
    testDestination(id: $id) {
      __typename
      ... on TestDestinationSuccess { ok retryable message }
      ... on Error { message }
    }
  }
`);

interface Props {
  destination: { id: string; name: string; platform: Platform };
  /** READ keys may not call mutations, testDestination included. */
  canCheck: boolean;
}

/** The destination's health: testDestination checks its credentials and reachability, changing nothing. */
export function DestinationHealth({ destination, canCheck }: Props) {
  const [{ data, fetching, error }, check] = useMutation(ConsoleTestDestination);
  useEffect(() => {
    if (canCheck) void check({ id: destination.id });
  }, [destination.id, canCheck]);
  const result = data?.testDestination;
  return (
    <section class="panel" aria-labelledby="health-title">
      <h2 id="health-title">Destination</h2>
      <p>
        {destination.name} <span class="sub">({PLATFORM_NAMES[destination.platform]})</span>
      </p>
      <div role="status" class="health">
        {fetching && 'Checking the connection…'}
        {!fetching && error && <span class="error">Could not check: {error.message}</span>}
        {!fetching && result?.__typename === 'TestDestinationSuccess' && (
          <span class={result.ok ? 'ok' : 'error'}>
            {result.ok ? 'Connected: ' : result.retryable ? 'Temporarily unreachable: ' : 'Not usable: '}
            {result.message}
          </span>
        )}
        {!fetching && result && result.__typename !== 'TestDestinationSuccess' && <span class="error">{result.message}</span>}
        {!canCheck && 'A READ key cannot check the connection.'}
      </div>
      {canCheck && (
        <button type="button" class="secondary" disabled={fetching} onClick={() => void check({ id: destination.id })}>
          Check again
        </button>
      )}
    </section>
  );
}
