import { copyFileSync } from 'node:fs';
import type { CodegenConfig } from '@graphql-codegen/cli';

const scalars = { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number', File: 'File' };

// Typed documents for the operations written with `graphql(...)` in the tests and for the README's
// examples (test/operations/*.graphql), and for the console's (src/console). The schema is the
// checked-in SDL, printed from src/schema. The tests' and README's operations are the gateway's trusted
// documents: the client preset writes their manifest (SHA-256 of each document → the document), copied
// beside the SDL, where the gateway reads it.
// https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#persisted-documents
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  ignoreNoDocuments: true,
  importExtension: '.js',
  generates: {
    'test/generated/': {
      documents: ['test/**/*.ts', 'test/**/*.graphql', '!test/generated/**', '!test/relay/**'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: { useTypeImports: true, enumsAsTypes: true, scalars },
    },
    'src/generated/console/': {
      documents: ['src/console/**/*.tsx', 'src/console/**/*.ts'],
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { useTypeImports: true, enumsAsTypes: true, scalars },
    },
  },
  hooks: {
    afterAllFileWrite: () => copyFileSync('test/generated/persisted-documents.json', 'schema/persisted-documents.json'),
  },
};

export default config;
