import { expect, test } from 'vitest';
import { graphql } from '../generated/gql.js';
import { subscribeOverSSE } from '../support/sse.js';
import { useGatewaySuite } from '../support/suite.js';
import { SyncRunUpdated } from '../support/operations.js';

const suite = useGatewaySuite();

const SyncsFilteredByAudience = graphql(`
  query SyncsFilteredByAudience($audienceId: ID) {
    audienceSyncs(audienceId: $audienceId) { edges { node { id } } }
  }
`);

const TaskById = graphql(`
  query TaskById($id: ID!) {
    task(id: $id) { id }
  }
`);

// base64("AudienceSync:not-a-uuid"), a well-formed global id of the wrong shape.
const NOT_A_UUID = Buffer.from('AudienceSync:not-a-uuid').toString('base64');

test.each([
  ['audienceSyncs(audienceId)', SyncsFilteredByAudience, { audienceId: 'garbage' }, 'audienceId'],
  ['audienceSyncs(audienceId) with another type’s id', SyncsFilteredByAudience, { audienceId: NOT_A_UUID }, 'audienceId'],
  ['task(id)', TaskById, { id: 'garbage' }, 'id'],
] as const)('a bad id in %s is a clear VALIDATION_FAILED error, not a masked internal one', async (_name, document, variables, field) => {
  const result = await suite.gateway.execute(document as typeof TaskById, variables as { id: string });
  expect(result.errors).toHaveLength(1);
  expect(result.errors![0]!.extensions).toMatchObject({ code: 'VALIDATION_FAILED' });
  expect(result.errors![0]!.message).toContain(field);
});

test('a bad id in a subscription argument is reported as such over SSE', async () => {
  const stream = await subscribeOverSSE(suite.gateway, SyncRunUpdated, { runId: 'garbage' }).catch(
    (error: unknown) => error,
  );
  // Yoga answers an error from the subscription's source as one `next` event carrying it.
  const events = [];
  for await (const event of stream as AsyncIterable<{ errors?: readonly { message: string; extensions?: unknown }[] }>) {
    events.push(event);
  }
  expect(events).toHaveLength(1);
  expect(events[0]!.errors![0]).toMatchObject({ extensions: { code: 'VALIDATION_FAILED' } });
  expect(events[0]!.errors![0]!.message).toContain('runId');
});
