import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';

/**
 * Reads `read` every `intervalMs` until `done` holds for what it returned, and returns that (by default,
 * until it returns something truthy). Fails after `timeoutMs`, naming `what` it waited for and the last read.
 */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean = Boolean,
  options: { what?: string; timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const { what = 'the condition', timeoutMs = 30_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`Waited ${timeoutMs} ms for ${what}; the last read was ${inspect(value, { depth: 4 })}`);
    }
    await sleep(intervalMs);
  }
}
