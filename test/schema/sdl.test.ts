import { readFile } from 'node:fs/promises';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  printSchema,
  type GraphQLNamedType,
} from 'graphql';
import { expect, test } from 'vitest';
import { schema } from '../../src/schema/index.js';

test('schema/schema.graphql is the SDL of the code-first schema (run `npm run schema:print` when this fails)', async () => {
  const checkedIn = await readFile(new URL('../../schema/schema.graphql', import.meta.url), 'utf8');
  expect(checkedIn).toBe(`${printSchema(schema)}\n`);
});

/** Every element a client can see, with whether it has a description. */
function undocumented(type: GraphQLNamedType): string[] {
  const missing = type.description ? [] : [type.name];
  if (isObjectType(type) || isInterfaceType(type)) {
    for (const field of Object.values(type.getFields())) {
      if (!field.description) missing.push(`${type.name}.${field.name}`);
      for (const arg of field.args) if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
    }
  }
  if (isInputObjectType(type)) {
    for (const field of Object.values(type.getFields())) if (!field.description) missing.push(`${type.name}.${field.name}`);
  }
  if (isEnumType(type)) {
    for (const value of type.getValues()) if (!value.description) missing.push(`${type.name}.${value.name}`);
  }
  return missing;
}

test('every type, field, argument and enum value has a description', () => {
  const missing = Object.values(schema.getTypeMap())
    .filter((type) => !type.name.startsWith('__'))
    .flatMap(undocumented);
  expect(missing).toEqual([]);
});
