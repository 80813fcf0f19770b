import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createApiKey } from './api-keys.js';
import { db } from '../infra/db.js';
import { logger } from '../infra/logger.js';

/** First start of an empty database: creates the `default` workspace and an API key, prints the
 * key once and writes it to `$DATA_DIR/api-key`. Does nothing when any workspace exists. */
export async function bootstrapDefaultWorkspace(dataDir: string): Promise<void> {
  const created = await db().$transaction(async (tx) => {
    // Serialises concurrent first starts: only one of them creates the workspace.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('bootstrap-default-workspace'))`;
    if ((await tx.workspace.count()) > 0) return null;
    const workspace = await tx.workspace.create({ data: { name: 'default' } });
    const { key } = await createApiKey(workspace.id, 'first-start key', 'WRITE', tx);
    return { workspace, key };
  });
  if (!created) return;
  const { workspace, key } = created;
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, 'api-key');
  await writeFile(path, `${key}\n`, { mode: 0o600 });
  logger.info({ workspaceId: workspace.id, file: path }, 'Created the default workspace and its first API key');
  process.stdout.write(`\nAPI key for the default workspace (shown once, also saved to ${path}):\n  ${key}\n\n`);
}
