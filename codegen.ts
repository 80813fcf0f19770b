import type { CodegenConfig } from '@graphql-codegen/cli';

const scalars = { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number', File: 'File' };

// Typed documents for the operations written with `graphql(...)` in the tests and for the README's
// examples (test/operations/readme.graphql), and for the console's (src/console). The schema is the
// checked-in SDL, printed from src/schema.
const config: CodegenConfig = {
  schema: 'schema/schema.graphql',
  ignoreNoDocuments: true,
  importExtension: '.js',
  generates: {
    'test/generated/': {
      documents: ['test/**/*.ts', 'test/**/*.graphql', '!test/generated/**'],
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { useTypeImports: true, enumsAsTypes: true, scalars },
    },
    'src/generated/console/': {
      documents: ['src/console/**/*.tsx', 'src/console/**/*.ts'],
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { useTypeImports: true, enumsAsTypes: true, scalars },
    },
  },
};

export default config;
