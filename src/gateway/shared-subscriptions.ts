import { GraphQLError, print, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { trackSubscription } from '../infra/metrics.js';
import type { Context } from '../schema/context.js';

type Results = AsyncIterator<ExecutionResult>;

/**
 * Subscribers of one workspace with the same operation (document, operation name, variables) and
 * the same role get the same results: the gateway executes the operation once per event and hands
 * each result to all of them, instead of once per subscriber. A subscriber is never sent a result
 * identical to the one it was sent last (a change it did not select costs it nothing). Applies to
 * graphql-ws and SSE alike, since both run through yoga's envelope; every subscriber counts in
 * graphql_active_subscriptions. Resolvers of subscriptions depend on the viewer's workspace and
 * role only, which the key holds.
 */
export function useSharedSubscriptions(): Plugin {
  const shared = new Map<string, Promise<SharedResults | ExecutionResult>>();
  return {
    onSubscribe: ({ args, subscribeFn, setSubscribeFn }) => {
      const { viewer } = args.contextValue as unknown as Context;
      // Without a workspace the field refuses the subscription: nothing to share.
      if (!viewer) return;
      const key = JSON.stringify([
        viewer.workspaceId,
        viewer.role,
        print(args.document),
        args.operationName ?? null,
        args.variableValues ?? {},
      ]);
      setSubscribeFn(async (subscribeArgs) => {
        for (;;) {
          let source = shared.get(key);
          if (!source) {
            const opening = Promise.resolve(subscribeFn(subscribeArgs)).then((result) =>
              Symbol.asyncIterator in result
                ? new SharedResults(result[Symbol.asyncIterator](), () => {
                    if (shared.get(key) === opening) shared.delete(key);
                  })
                : result,
            );
            shared.set(key, opening);
            source = opening;
          }
          const opened = await source;
          if (!(opened instanceof SharedResults)) {
            if (shared.get(key) === source) shared.delete(key);
            return opened;
          }
          // Null when its last subscriber left while this one was on its way: open another.
          const results = opened.attach();
          if (results) return trackSubscription(results);
        }
      });
    },
  };
}

/** One execution's results, pulled by the first subscriber's arrival and queued for every subscriber. */
class SharedResults {
  private readonly subscribers = new Set<Subscriber>();
  private pulling = false;
  private ended = false;

  constructor(
    private readonly source: Results,
    private readonly onIdle: () => void,
  ) {}

  attach(): AsyncIterableIterator<ExecutionResult> | null {
    if (this.ended) return null;
    const subscriber = new Subscriber(() => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0 && !this.ended) {
        this.ended = true;
        this.onIdle();
        void this.source.return?.();
      }
    });
    this.subscribers.add(subscriber);
    if (!this.pulling) {
      this.pulling = true;
      void this.pull();
    }
    return subscriber.iterator();
  }

  private async pull(): Promise<void> {
    try {
      for (;;) {
        const step = await this.source.next();
        if (step.done || this.ended) break;
        const text = JSON.stringify(step.value);
        for (const subscriber of this.subscribers) subscriber.push(step.value, text);
      }
    } catch (error) {
      for (const subscriber of this.subscribers) subscriber.fail(error);
    }
    this.ended = true;
    this.onIdle();
    for (const subscriber of this.subscribers) subscriber.end();
  }
}

/** Results a subscriber may leave unread (a client that stopped reading, or cannot keep up) before
 * its subscription ends with an error, instead of holding the gateway's memory. */
export const MAX_UNREAD_RESULTS = 1_000;

/** A subscriber's queue of results not yet pulled. */
class Subscriber {
  private readonly queue: ExecutionResult[] = [];
  private waiting: ((step: IteratorResult<ExecutionResult>) => void) | null = null;
  private failed: { error: unknown } | null = null;
  private done = false;
  private lastText: string | undefined;

  constructor(private readonly onLeave: () => void) {}

  push(result: ExecutionResult, text: string): void {
    if (this.done || text === this.lastText) return;
    this.lastText = text;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ done: false, value: result });
    } else if (this.queue.length < MAX_UNREAD_RESULTS) {
      this.queue.push(result);
    } else {
      // Its last result says why it ends; the socket's other operations go on.
      const behind = new GraphQLError(
        `The subscription fell ${MAX_UNREAD_RESULTS} results behind and was ended: subscribe again`,
        { extensions: { code: 'SUBSCRIPTION_BEHIND' } },
      );
      this.queue.splice(0, this.queue.length, { errors: [behind] });
      this.done = true;
      this.onLeave();
    }
  }

  fail(error: unknown): void {
    this.failed = { error };
    this.end();
  }

  end(): void {
    this.done = true;
    if (this.waiting && this.queue.length === 0) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ done: true, value: undefined });
    }
  }

  iterator(): AsyncIterableIterator<ExecutionResult> {
    const leave = (): IteratorResult<ExecutionResult> => {
      if (!this.done) {
        this.done = true;
        this.onLeave();
      }
      this.queue.length = 0;
      this.waiting?.({ done: true, value: undefined });
      this.waiting = null;
      return { done: true, value: undefined };
    };
    return {
      next: async () => {
        const value = this.queue.shift();
        if (value) return { done: false, value };
        if (this.failed) throw this.failed.error;
        if (this.done) return { done: true, value: undefined };
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: async () => leave(),
      throw: async (error?: unknown) => {
        leave();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
