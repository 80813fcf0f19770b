import { ValidationError } from './errors.js';
import { decodeNodeId } from './node-id.js';

/**
 * Decodes a global id that must name a `typename`; anything else (no global id, another type's) is a
 * validation error on `field`. A malformed inner id decodes to one that names nothing (see decodeNodeId).
 */
export function parseGlobalId(value: string | number, typename: string, field: string): string {
  try {
    const decoded = decodeNodeId(String(value));
    if (decoded.typename === typename) return decoded.id;
  } catch {
    // Falls through to the validation error below.
  }
  throw ValidationError.of(field, `is not the id of ${withArticle(typename)}`);
}

/** "an Audience", "a Destination": type names are English words, read aloud by their first letter. */
function withArticle(typename: string): string {
  return `${/^[AEIOU]/.test(typename) ? 'an' : 'a'} ${typename}`;
}
