import { once } from 'node:events';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { logger } from '../../src/infra/logger.js';
import { graphql } from '../generated/gql.js';
import { MALFORMED_INNER_IDS } from '../support/global-ids.js';
import { subscribeOverSSE } from '../support/sse.js';
import { useGatewaySuite } from '../support/suite.js';
import { CreateAudience, SyncRunUpdated } from '../support/operations.js';

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

const NodesById = graphql(`
  query NodesById($ids: [ID!]!) {
    nodes(ids: $ids) { id }
  }
`);

const NODE_TYPES = ['Workspace', 'ApiKey', 'Destination', 'Audience', 'AudienceSync', 'SyncRun', 'Task', 'Contact'];

test('a well-formed global id whose inner id is not a UUID names nothing, in every slot: null, an empty list, no error, nothing logged', async () => {
  // Observes the log without changing it: an internal error is logged at level error.
  const logged = vi.spyOn(logger, 'error');
  try {
    for (const inner of MALFORMED_INNER_IDS) {
      const ids = NODE_TYPES.map((type) => encodeGlobalID(type, inner));
      expect(await suite.gateway.execute(NodesById, { ids }), inner).toEqual({ data: { nodes: ids.map(() => null) } });
      for (const id of ids) {
        expect(await suite.gateway.execute(NodesById, { ids: [id] }), id).toEqual({ data: { nodes: [null] } });
      }
      expect(await suite.gateway.execute(TaskById, { id: encodeGlobalID('Task', inner) })).toEqual({ data: { task: null } });
      expect(await suite.gateway.execute(SyncsFilteredByAudience, { audienceId: encodeGlobalID('Audience', inner) })).toEqual({
        data: { audienceSyncs: { edges: [] } },
      });
    }
    expect(logged).not.toHaveBeenCalled();
  } finally {
    logged.mockRestore();
  }
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

const AudiencePage = graphql(`
  query AudiencePage($after: String) {
    audiences(first: 2, after: $after) {
      edges { cursor node { name } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

test('cursors the gateway handed out page through a list; forged ones are refused, naming the argument', async () => {
  for (const name of ['one', 'two', 'three']) {
    await suite.gateway.execute(CreateAudience, { input: { name } });
  }
  const first = await suite.gateway.execute(AudiencePage, {});
  expect(first.errors).toBeUndefined();
  expect(first.data!.audiences.pageInfo.hasNextPage).toBe(true);
  const second = await suite.gateway.execute(AudiencePage, { after: first.data!.audiences.pageInfo.endCursor });
  expect(second.errors).toBeUndefined();
  expect(second.data!.audiences.edges.map((edge) => edge.node.name)).toEqual(['one']);

  for (const forged of ['garbage', Buffer.from('GPC:S:not-a-uuid').toString('base64'), Buffer.from('GPC:J:null').toString('base64')]) {
    const result = await suite.gateway.execute(AudiencePage, { after: forged });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', field: 'after' });
  }
});

const ArgContactPage = graphql(`
  query ArgContactPage($after: String) {
    contacts(first: 2, after: $after) { edges { cursor } }
  }
`);

test('a cursor of the other kind (uuid for contacts, bigint for the other lists) is refused, not sent to the database', async () => {
  const uuidCursor = Buffer.from('GPC:S:3de185b1-da55-46bc-9250-9d1298df4362').toString('base64');
  const bigintCursor = Buffer.from('GPC:I:12').toString('base64');
  const contacts = await suite.gateway.execute(ArgContactPage, { after: uuidCursor });
  expect(contacts.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', field: 'after' });
  const audiences = await suite.gateway.execute(AudiencePage, { after: bigintCursor });
  expect(audiences.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION_FAILED', field: 'after' });
  expect((await suite.gateway.execute(ArgContactPage, { after: bigintCursor })).errors).toBeUndefined();
});

test('a WebSocket client sending a server-only message ("next") is closed as a protocol error (4400), not an internal one', async () => {
  const socket = new WebSocket(suite.gateway.app.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${suite.gateway.apiKey}` } }));
  const [ack] = (await once(socket, 'message')) as [Buffer];
  expect(JSON.parse(ack.toString())).toMatchObject({ type: 'connection_ack' });
  socket.send(JSON.stringify({ type: 'next', id: 'a', payload: {} }));
  const [code] = (await once(socket, 'close')) as [number];
  expect(code).toBe(4400);
});
