import { readFileSync, writeFileSync } from 'node:fs';
import type { CodegenConfig } from '@graphql-codegen/cli';

const scalars = { DateTime: 'string', JSON: 'unknown', NonNegativeInt: 'number', File: 'File' };

// Typed documents for the operations written with `graphql(...)` in the tests and for the README's
// examples (test/operations/*.graphql), and for the console's (src/console). The schema is the
// checked-in SDL, printed from src/schema. The tests', README's and console's operations are the
// gateway's trusted documents: the client preset writes a manifest per output (SHA-256 of each
// document → the document); both are merged beside the SDL, where the gateway reads them. The
// console's documents carry their hash (`__meta__.hash`), which it sends instead of the text.
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
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256', mode: 'embedHashInDocument' } },
      config: { useTypeImports: true, enumsAsTypes: true, scalars },
    },
  },
  hooks: {
    afterAllFileWrite: () => {
      const manifests = ['test/generated/persisted-documents.json', 'src/generated/console/persisted-documents.json'];
      const merged = Object.assign({}, ...manifests.map((file) => JSON.parse(readFileSync(file, 'utf8')) as object));
      writeFileSync('schema/persisted-documents.json', `${JSON.stringify(merged, null, 2)}\n`);
    },
  },
};

export default config;
