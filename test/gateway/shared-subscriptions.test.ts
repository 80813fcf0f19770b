import { parse, type ExecutionResult } from 'graphql';
import { Repeater } from 'graphql-yoga';
import { expect, test } from 'vitest';
import { MAX_UNREAD_RESULTS, useSharedSubscriptions } from '../../src/gateway/shared-subscriptions.js';

// The plugin on its own, fed by a source whose results the test pushes: how it shares one execution
// between subscribers and what it does with one that stops reading. (The gateway-level behaviour is in
// test/e2e/live-workspace-stream.test.ts.)

const document = parse('subscription { syncRunsUpdated { id status } }');
const viewer = (workspaceId: string) => ({ workspaceId, apiKeyId: `key-${workspaceId}`, role: 'WRITE' });

/** Subscribes through the plugin as a viewer of `workspaceId`, `source` being the real subscribe. */
function subscriber(plugin: ReturnType<typeof useSharedSubscriptions>, workspaceId: string, source: () => AsyncIterable<ExecutionResult>) {
  let subscribe: ((args: unknown) => Promise<unknown>) | undefined;
  const hooks = plugin.onSubscribe as (payload: unknown) => void;
  hooks({
    args: { document, contextValue: { viewer: viewer(workspaceId) }, variableValues: {} },
    subscribeFn: () => source(),
    setSubscribeFn: (next: (args: unknown) => Promise<unknown>) => (subscribe = next),
  });
  return subscribe!({}) as Promise<AsyncIterableIterator<ExecutionResult>>;
}

/** A subscribe function whose results the test pushes; counts how often it was called. */
function pushedSource() {
  let push!: (value: ExecutionResult) => Promise<unknown>;
  let executions = 0;
  const open = () => {
    executions++;
    return new Repeater<ExecutionResult>((next) => {
      push = next;
    });
  };
  return { open, push: (value: ExecutionResult) => push(value), executions: () => executions };
}

const result = (status: string): ExecutionResult => ({ data: { syncRunsUpdated: { id: 'r1', status } } });

test('one workspace shares one execution; another workspace gets its own; identical results are skipped', async () => {
  const plugin = useSharedSubscriptions();
  const source = pushedSource();
  const otherSource = pushedSource();
  const [a, b] = await Promise.all([subscriber(plugin, 'w1', source.open), subscriber(plugin, 'w1', source.open)]);
  const other = await subscriber(plugin, 'w2', otherSource.open);
  expect(source.executions()).toBe(1);
  expect(otherSource.executions()).toBe(1);

  const first = [a.next(), b.next()];
  await Promise.resolve();
  void source.push(result('RUNNING'));
  void source.push(result('RUNNING'));
  void source.push(result('SUCCEEDED'));
  expect((await Promise.all(first)).map((step) => step.value)).toEqual([result('RUNNING'), result('RUNNING')]);
  expect((await a.next()).value).toEqual(result('SUCCEEDED'));
  expect((await b.next()).value).toEqual(result('SUCCEEDED'));
  await Promise.all([a.return?.(), b.return?.(), other.return?.()]);
});

test('a subscriber that stops reading ends with an error once it is far behind; the others go on', async () => {
  const plugin = useSharedSubscriptions();
  const source = pushedSource();
  const reader = await subscriber(plugin, 'w1', source.open);
  const stalled = await subscriber(plugin, 'w1', source.open);
  for (let i = 0; i <= MAX_UNREAD_RESULTS; i++) {
    const reading = reader.next();
    void source.push(result(`step ${i}`));
    expect((await reading).value).toEqual(result(`step ${i}`));
  }
  const last = await stalled.next();
  expect(last.value?.errors?.[0]?.extensions?.code).toBe('SUBSCRIPTION_BEHIND');
  expect((await stalled.next()).done).toBe(true);
  const reading = reader.next();
  void source.push(result('after'));
  expect((await reading).value).toEqual(result('after'));
  await reader.return?.();
});
