import { describe, expect, it } from 'vitest';
import { encodeByRule, mappingEncoder, type FieldRule } from '../../src/destinations/encoding.js';
import { contact, sha256 } from '../support/connectors.js';

const lower: FieldRule = { normalize: (value) => value.trim().toLowerCase(), hashed: true };
const plain: FieldRule = { normalize: (value) => value.trim(), hashed: false };

describe('encodeByRule', () => {
  it('hashes the normalized value of a hashed field, and sends a plain field normalized', () => {
    expect(encodeByRule(lower, ' A@B.co ')).toBe(sha256('a@b.co'));
    expect(encodeByRule(plain, ' id-1 ')).toBe('id-1');
  });

  it('passes a stored SHA-256 digest through to a hashed field only', () => {
    const digest = sha256('a@b.co');
    expect(encodeByRule(lower, digest)).toBe(digest);
    expect(encodeByRule({ normalize: (value) => value.toUpperCase(), hashed: false }, digest)).toBe(digest.toUpperCase());
  });

  it('treats an empty or null normalization as unusable', () => {
    expect(encodeByRule(lower, '   ')).toBeNull();
    expect(encodeByRule({ normalize: () => null, hashed: true }, 'x')).toBeNull();
  });
});

describe('mappingEncoder', () => {
  const encode = mappingEncoder({
    fields: ['MAIL', 'ID'] as const,
    encodeValue: (field, raw) => (field === 'MAIL' ? encodeByRule(lower, raw) : encodeByRule(plain, raw)),
    unknownField: (field) => `no field "${field}"`,
  });

  it('encodes each mapped source field into its destination field', () => {
    const identifiers = encode(contact({ email: 'A@b.co', externalId: ' 42 ' }), [
      { sourceField: 'email', destinationField: 'MAIL' },
      { sourceField: 'externalId', destinationField: 'ID' },
    ]);
    expect(identifiers).toEqual({ MAIL: sha256('a@b.co'), ID: '42' });
  });

  it('leaves out missing and unusable values, and returns null when nothing is left', () => {
    const mapping = [
      { sourceField: 'email', destinationField: 'MAIL' },
      { sourceField: 'externalId', destinationField: 'ID' },
    ] as const;
    expect(encode(contact({ email: 'a@b.co', externalId: '  ' }), mapping)).toEqual({ MAIL: sha256('a@b.co') });
    expect(encode(contact({ email: '', externalId: '  ' }), mapping)).toBeNull();
  });

  it('refuses a mapping to a field the platform does not have, with the platform message', () => {
    expect(() => encode(contact({ email: 'a@b.co' }), [{ sourceField: 'email', destinationField: 'EMAIL' }])).toThrow(
      'no field "EMAIL"',
    );
  });
});
