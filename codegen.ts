import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the operations written with `graphql(...)` in the tests and for the README's
// examples (test/operations/readme.graphql). The schema is the checked-in SDL, printed from src/schema.
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['test/**/*.ts', 'test/**/*.graphql', '!test/generated/**'],
  ignoreNoDocuments: true,
  importExtension: '.js',
  generates: {
    'test/generated/': {

      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number', File: 'File' },
      },
    },
  },
};

export default config;
