import type { ContactIdentity, EncodedIdentifiers, FieldMapping } from './destination.js';
import { isSha256Hex, sha256Hex } from './hashing.js';

/** How a platform prepares one destination field: `normalize` returns `null` or `''` for a value
 * it cannot use; `hashed` fields are sent as the SHA-256 of the normalized value. */
export interface FieldRule {
  normalize: (value: string) => string | null;
  hashed: boolean;
}

/** Applies a rule to one stored value; a value already stored as a SHA-256 digest goes out as is
 * to a hashed field. `null` when the value is unusable. */
export function encodeByRule(rule: FieldRule, raw: string): string | null {
  if (rule.hashed && isSha256Hex(raw)) return raw;
  const normalized = rule.normalize(raw);
  if (normalized === null || normalized === '') return null;
  return rule.hashed ? sha256Hex(normalized) : normalized;
}

/**
 * The `encode` of a connector: reads each mapped source field of the contact and encodes it with
 * the platform's `encodeValue`, skipping empty and unusable values. A mapping to a field the
 * platform does not have throws `unknownField(field)`. `null` when no identifier is usable.
 */
export function mappingEncoder<Field extends string>(platform: {
  fields: readonly Field[];
  encodeValue: (field: Field, raw: string) => string | null;
  unknownField: (field: string) => string;
}): (contact: ContactIdentity, mapping: readonly FieldMapping[]) => EncodedIdentifiers | null {
  const isField = (field: string): field is Field => (platform.fields as readonly string[]).includes(field);
  return (contact, mapping) => {
    const identifiers: EncodedIdentifiers = {};
    for (const { sourceField, destinationField } of mapping) {
      if (!isField(destinationField)) throw new Error(platform.unknownField(destinationField));
      const raw = contact[sourceField];
      if (raw === null || raw === '') continue;
      const value = platform.encodeValue(destinationField, raw);
      if (value !== null) identifiers[destinationField] = value;
    }
    return Object.keys(identifiers).length > 0 ? identifiers : null;
  };
}
