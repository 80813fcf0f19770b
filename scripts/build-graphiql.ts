import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GRAPHIQL_ASSETS_PATH, GRAPHIQL_BUILD_DIR } from '../src/gateway/graphiql.js';

// Builds GraphiQL (src/graphiql: graphiql and React, bundled by Vite with its editor's workers) into
// dist/graphiql, which the gateway serves at GET /graphql: no CDN, so it works offline. `npm ci` runs it
// (the prepare script); it does nothing when the bundle was built from the same sources (`--force` builds anyway).

const root = fileURLToPath(new URL('..', import.meta.url));
const sourceDir = join(root, 'src/graphiql');
const STAMP = join(GRAPHIQL_BUILD_DIR, 'build-inputs.sha256');

/** A hash of everything the bundle is made from: its sources, the build's own code and the installed packages' versions. */
async function inputsHash(): Promise<string> {
  const files = [
    ...(await readdir(sourceDir, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name)),
    ...['scripts/build-graphiql.ts', 'package-lock.json'].map((path) => join(root, path)),
  ].sort();
  const hash = createHash('sha256');
  for (const file of files) hash.update(relative(root, file)).update('\0').update(await readFile(file)).update('\0');
  return hash.digest('hex');
}

async function builtFrom(): Promise<string | null> {
  return readFile(STAMP, 'utf8').then(
    (stamp) => stamp.trim(),
    () => null,
  );
}

const hash = await inputsHash();
if (process.argv.includes('--force') || (await builtFrom()) !== hash) {
  const started = performance.now();
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: sourceDir,
    // Assets are addressed from the page at /graphql: under their own path, beside the endpoint.
    base: GRAPHIQL_ASSETS_PATH,
    logLevel: 'error',
    oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
    build: { outDir: GRAPHIQL_BUILD_DIR, emptyOutDir: true, target: 'es2022', reportCompressedSize: false, chunkSizeWarningLimit: 4096 },
  });
  await mkdir(GRAPHIQL_BUILD_DIR, { recursive: true });
  await writeFile(STAMP, `${hash}\n`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`Built GraphiQL into ${relative(root, GRAPHIQL_BUILD_DIR)} in ${seconds} s\n`);
}
