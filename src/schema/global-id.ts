import { decodeGlobalID } from '@pothos/plugin-relay';
import { ValidationError } from './errors.js';

/** Decodes a global id that must name a `typename`; anything else is a validation error on `field`. */
export function parseGlobalId(value: string | number, typename: string, field: string): string {
  try {
    const decoded = decodeGlobalID(String(value));
    if (decoded.typename === typename && decoded.id) return decoded.id;
  } catch {
    // Falls through to the validation error below.
  }
  throw ValidationError.of(field, `is not the id of a ${typename}`);
}
