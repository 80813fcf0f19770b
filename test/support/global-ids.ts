import { randomUUID } from 'node:crypto';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { expectNothingWritten } from './tables.js';

/** A well-formed global id of `typename` that names nothing. */
export const unknownId = (typename: string) => encodeGlobalID(typename, randomUUID());

/** Ids that cannot name a `typename`: no global id at all, and another type's id. */
export const malformedIds = (typename: string) => ['not a global id', unknownId(typename === 'Task' ? 'Audience' : 'Task')];

/** Inner ids that are not UUIDs: numbers, SQL, a UUID too long or with its dashes moved, the nil UUID… */
export const MALFORMED_INNER_IDS = [
  'not-a-uuid',
  '1',
  '1e5',
  '-1',
  "'; DROP TABLE audience; --",
  '0'.repeat(36),
  `${randomUUID()}0`,
  randomUUID().replaceAll('-', ''),
  ` ${randomUUID()}`,
  '{00000000-0000-0000-0000-000000000000}',
  '\u0000',
  '🙂',
];

/** Well-formed global ids of `typename` whose inner id is not a UUID: every id slot answers them as an unknown id. */
export const idsWithMalformedInnerId = (typename: string) => MALFORMED_INNER_IDS.map((inner) => encodeGlobalID(typename, inner));

/** What `mutate` answers for an id of another workspace and for an unknown id of the same type,
 * checking that neither wrote anything. The two answers must not tell the ids apart. */
export async function answersToForeignAndUnknownId(mutate: (id: string) => Promise<unknown>, foreignId: string) {
  return expectNothingWritten(async () => [
    await mutate(foreignId),
    await mutate(unknownId(decodeGlobalID(foreignId).typename)),
  ] as const);
}

/** What `mutate` answers for each id of `typename` with a malformed inner id, and for an unknown id, checking
 * that none wrote anything: the answers must all be the same. */
export async function answersToMalformedAndUnknownId(mutate: (id: string) => Promise<unknown>, typename: string) {
  return expectNothingWritten(async () => {
    const malformed = [];
    for (const id of idsWithMalformedInnerId(typename)) malformed.push(await mutate(id));
    return { malformed, unknown: await mutate(unknownId(typename)) };
  });
}
