import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import codegenConfig from '../codegen.js';
import { CONSOLE_BUILD_DIR, CONSOLE_PATH } from '../src/gateway/console.js';

// Builds the console (src/console) into dist/console, which the gateway serves at /console: its
// typed operations (codegen.ts), then Vite's bundle. `npm ci` runs it (the prepare script); it does
// nothing when the bundle was built from the same sources (`--force` builds anyway).

const root = fileURLToPath(new URL('..', import.meta.url));
const sourceDir = join(root, 'src/console');
const CODEGEN_OUTPUT = 'src/generated/console/';
const STAMP = join(CONSOLE_BUILD_DIR, 'build-inputs.sha256');

/** A hash of everything the bundle is made from: its sources, the schema, the build's own code and
 * the installed packages' versions. */
async function inputsHash(): Promise<string> {
  const files = [
    ...(await readdir(sourceDir, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name)),
    ...['schema/schema.graphql', 'codegen.ts', 'scripts/build-console.ts', 'package-lock.json'].map((path) => join(root, path)),
  ].sort();
  const hash = createHash('sha256');
  for (const file of files) hash.update(relative(root, file)).update('\0').update(await readFile(file)).update('\0');
  return hash.digest('hex');
}

async function builtFrom(): Promise<string | null> {
  try {
    return (await readFile(STAMP, 'utf8')).trim();
  } catch {
    return null;
  }
}

async function buildConsole(force: boolean): Promise<void> {
  const hash = await inputsHash();
  if (!force && (await builtFrom()) === hash) return;
  const started = performance.now();
  // Loaded only for a build: the check above stays quick.
  const [{ generate }, { build }] = await Promise.all([import('@graphql-codegen/cli'), import('vite')]);
  const target = codegenConfig.generates[CODEGEN_OUTPUT];
  if (!target) throw new Error(`codegen.ts has no ${CODEGEN_OUTPUT} output`);
  // Without codegen.ts's hooks: they copy the tests' trusted documents, which this build does not write.
  await generate({ ...codegenConfig, hooks: {}, cwd: root, silent: true, generates: { [CODEGEN_OUTPUT]: target } }, true);
  await build({
    configFile: false,
    root: sourceDir,
    base: `${CONSOLE_PATH}/`,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: { outDir: CONSOLE_BUILD_DIR, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  });
  await mkdir(CONSOLE_BUILD_DIR, { recursive: true });
  await writeFile(STAMP, `${hash}\n`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`Built the console into ${relative(root, CONSOLE_BUILD_DIR)} in ${seconds} s\n`);
}

await buildConsole(process.argv.includes('--force'));
