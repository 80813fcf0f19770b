// Creates an API key from the command line, against DATABASE_URL (the first key of a new deployment):
//   npm run api-key -- --workspace <name or id> --name <key name> [--role READ|WRITE] [--create-workspace]
// The key is printed once; only its hash is stored.
import { parseArgs } from 'node:util';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createApiKey } from '../src/identity/api-keys.js';
import { connectDatabase, disconnectDatabase } from '../src/infra/db.js';
import { applyMigrations } from '../src/infra/migrations.js';
import { createWorkspaceWithKey, findWorkspace } from '../src/identity/workspaces.js';

const usage =
  'Usage: npm run api-key -- --workspace <name or id> --name <key name> [--role READ|WRITE] [--create-workspace]';

class UsageError extends Error {}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      workspace: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string', default: 'WRITE' },
      'create-workspace': { type: 'boolean', default: false },
    },
  });
  const workspace = values.workspace?.trim();
  const name = values.name?.trim();
  if (!workspace || workspace.length > 255) throw new UsageError('--workspace: give a workspace name (1–255 characters) or id');
  if (!name || name.length > 255) throw new UsageError('--name: give the key a name of 1–255 characters');
  const role = (['READ', 'WRITE'] as const).find((candidate) => candidate === values.role);
  if (!role) throw new UsageError('--role: READ or WRITE');
  return { workspace, name, role, createWorkspace: values['create-workspace'] };
}

async function main(): Promise<number> {
  const options = parseOptions();
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new UsageError('DATABASE_URL is not set: point it at the gateway’s PostgreSQL database');
  await applyMigrations(databaseUrl);
  connectDatabase(databaseUrl);
  try {
    const existing = await findWorkspace(options.workspace);
    let created;
    if (existing) {
      const { key, record } = await createApiKey(existing.id, options.name, options.role);
      created = { workspace: existing, apiKey: record, key };
    } else if (options.createWorkspace) {
      created = await createWorkspaceWithKey(options.workspace, options.name, options.role);
      if (!created) throw new UsageError(`The workspace "${options.workspace}" was created meanwhile: run the command again`);
    } else {
      throw new UsageError(`No workspace is named "${options.workspace}" or has this id: add --create-workspace to create it`);
    }
    const { workspace, apiKey, key } = created;
    console.log(
      `Created the ${apiKey.role} API key "${apiKey.name}" (${apiKey.prefix}…) in workspace "${workspace.name}" ` +
        `(id ${encodeGlobalID('Workspace', workspace.id)}).\nThe key, shown this once (only its hash is stored):\n${key}`,
    );
    return 0;
  } finally {
    await disconnectDatabase();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`${error.message}\n${usage}`);
  process.exitCode = 2;
}
