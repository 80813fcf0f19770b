// Initialises an empty PGlite data folder once, at install (`npm ci` runs it: the prepare script), which the
// embedded default copies into a fresh DATA_DIR instead of running PGlite's initdb at every first start.
// Does nothing when the folder for the installed PGlite exists.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { EMBEDDED_TEMPLATE_DIR } from '../src/infra/embedded-database.js';

if (!existsSync(join(EMBEDDED_TEMPLATE_DIR, 'PG_VERSION'))) {
  const started = performance.now();
  // Made beside, then renamed: a start never copies half a template.
  const partial = `${EMBEDDED_TEMPLATE_DIR.replace(/\/$/, '')}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(dirname(partial), { recursive: true });
  const database = await PGlite.create(partial);
  await database.close();
  await rm(EMBEDDED_TEMPLATE_DIR, { recursive: true, force: true });
  await rename(partial, EMBEDDED_TEMPLATE_DIR);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`Made the embedded database's template, ${relative(process.cwd(), EMBEDDED_TEMPLATE_DIR)}, in ${seconds} s\n`);
}
