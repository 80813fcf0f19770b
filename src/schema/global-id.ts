import { decodeGlobalID } from '@pothos/plugin-relay';
import { ValidationError } from './errors.js';

// Every model's id is a UUID: anything else would otherwise fail in PostgreSQL, as an internal error.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Decodes a global id that must name a `typename`; anything else is a validation error on `field`. */
export function parseGlobalId(value: string | number, typename: string, field: string): string {
  try {
    const decoded = decodeGlobalID(String(value));
    if (decoded.typename === typename && UUID.test(decoded.id)) return decoded.id;
  } catch {
    // Falls through to the validation error below.
  }
  throw ValidationError.of(field, `is not the id of a ${typename}`);
}
