// Compiles src/ (the server: gateway and worker, not the browser bundles) to JavaScript in build/, file by
// file with esbuild, keeping the tree's depth so that paths resolved from import.meta.url (prisma/, dist/)
// stay right. `npm start` and its siblings run it first (a fraction of a second), then run build/ with plain
// node: no TypeScript loader in the process, which holds ~35 MB less. Plain JavaScript, so that running it
// needs nothing but node.
import { readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Browser code, bundled by Vite (scripts/build-console.ts, scripts/build-graphiql.ts), and type declarations. */
const BROWSER_ONLY = /^(console\/|generated\/console\/|graphiql\/main\.tsx$|graphiql\/sse-fetcher\.ts$)|\.d\.ts$/;

const entryPoints = readdirSync(`${root}src`, { recursive: true, encoding: 'utf8' })
  .filter((file) => /\.tsx?$/.test(file) && !BROWSER_ONLY.test(file))
  .map((file) => `${root}src/${file}`);
rmSync(`${root}build`, { recursive: true, force: true });
buildSync({
  entryPoints,
  outdir: `${root}build`,
  outbase: `${root}src`,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
