// The native schema engine cannot be downloaded here; `prisma generate` never runs it, and
// migrations go through scripts/migrate.ts (WebAssembly engine). /bin/false makes any
// accidental use of the native migrate commands fail loudly instead of silently doing nothing.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= '/bin/false';

import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/audience_sync' },
});
