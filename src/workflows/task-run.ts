import type { DirectSql } from '../infra/db.js';
import type { Prisma } from '../generated/prisma/client.js';

/** A problem with the task's input found while running it: its message goes to the caller as the task's error. */
export class TaskFailure extends Error {}

/** A task's stored input: a JSON line of parameters, then (for uploads) the file's bytes. */
export function encodeTaskPayload(parameters: unknown, file?: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = Buffer.from(`${JSON.stringify(parameters)}\n`, 'utf8');
  return new Uint8Array(Buffer.concat(file ? [head, file] : [head]));
}

export function decodeTaskPayload(content: Uint8Array): { parameters: unknown; file: Buffer } {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const end = bytes.indexOf(0x0a);
  return { parameters: JSON.parse(bytes.subarray(0, end).toString('utf8')), file: bytes.subarray(end + 1) };
}

/** What a task handler works with: its checkpoint, and a way to commit a step of work with it. */
export interface TaskRun {
  workspaceId: string;
  /** Items already done (committed by an earlier attempt of this task, which resumes after them). */
  processed: number;
  /** The counts committed so far, null when the task has not committed a step yet. */
  result: unknown;
  /** Applies one step and records the checkpoint it returns, in one transaction; then tells subscribers. */
  commit<Result>(apply: (tx: Prisma.TransactionClient) => Promise<Checkpoint<Result>>): Promise<Checkpoint<Result>>;
  /** As commit, for a step that carries members: it runs on a direct transaction (see directTransaction). */
  commitMembers<Result>(apply: (sql: DirectSql) => Promise<Checkpoint<Result>>): Promise<Checkpoint<Result>>;
}

/** Where a task stands: items done out of `total`, and the counts so far. */
export interface Checkpoint<Result> {
  processed: number;
  total: number;
  result: Result;
}
