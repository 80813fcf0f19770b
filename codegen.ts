import { copyFileSync } from 'node:fs';
import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the operations written with `graphql(...)` in the tests and for the README's
// examples (test/operations/*.graphql). The schema is the checked-in SDL, printed from src/schema.
// The same operations are the gateway's trusted documents: the client preset writes their manifest
// (SHA-256 of each document → the document), copied beside the SDL, where the gateway reads it.
// https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#persisted-documents
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['test/**/*.ts', 'test/**/*.graphql', '!test/generated/**', '!test/relay/**'],
  ignoreNoDocuments: true,
  importExtension: '.js',
  generates: {
    'test/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number', File: 'File' },
      },
    },
  },
  hooks: {
    afterAllFileWrite: () => copyFileSync('test/generated/persisted-documents.json', 'schema/persisted-documents.json'),
  },
};

export default config;
