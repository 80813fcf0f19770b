import { randomUUID } from 'node:crypto';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { expectNothingWritten } from './tables.js';

/** A well-formed global id of `typename` that names nothing. */
export const unknownId = (typename: string) => encodeGlobalID(typename, randomUUID());

/** Ids that cannot name a `typename`: no global id at all, another type's id, and a non-UUID id. */
export const malformedIds = (typename: string) => [
  'not a global id',
  unknownId(typename === 'Task' ? 'Audience' : 'Task'),
  encodeGlobalID(typename, 'not-a-uuid'),
];

/** What `mutate` answers for an id of another workspace and for an unknown id of the same type,
 * checking that neither wrote anything. The two answers must not tell the ids apart. */
export async function answersToForeignAndUnknownId(mutate: (id: string) => Promise<unknown>, foreignId: string) {
  return expectNothingWritten(async () => [
    await mutate(foreignId),
    await mutate(unknownId(decodeGlobalID(foreignId).typename)),
  ] as const);
}
