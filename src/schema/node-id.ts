import { decodeGlobalID } from '@pothos/plugin-relay';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** No row has the nil UUID (ids are random UUIDs): an id decoded to it names nothing. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Types whose ids are not UUIDs; their lookups map a malformed id to nothing themselves. */
const NON_UUID_TYPES = new Set(['Contact']);

/**
 * Decodes a global id (throws when the value is none). One whose inner id cannot be an id of its type
 * (not a UUID) names nothing: it decodes to the nil UUID, so that every id slot — `node`, `nodes`, typed
 * arguments, filters, subscriptions — answers as for an unknown id, where PostgreSQL would fail on it.
 */
export function decodeNodeId(globalId: string): { typename: string; id: string } {
  const { typename, id } = decodeGlobalID(globalId);
  return { typename, id: NON_UUID_TYPES.has(typename) || UUID.test(id) ? id : NIL_UUID };
}
