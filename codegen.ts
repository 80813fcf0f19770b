import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the operations written with `graphql(...)` in the tests (and the README's
// examples, under test/operations). The schema is the checked-in SDL, printed from src/schema.
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  documents: ['test/**/*.ts', '!test/generated/**'],
  ignoreNoDocuments: true,
  importExtension: '.js',
  generates: {
    'test/generated/': {

      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number' },
      },
    },
  },
};

export default config;
