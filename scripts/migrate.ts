// Stand-in for `prisma migrate deploy | status | dev --create-only`, which need the native engine:
//   tsx scripts/migrate.ts deploy | status | create <name>
import { applyMigrations, createMigration, ensureDatabase, migrationStatus } from '../src/infra/migrations.js';

const databaseUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/audience_sync';
const usage = 'Usage: tsx scripts/migrate.ts deploy | status | create <name>';
const [command, name] = process.argv.slice(2);

const list = (names: string[]) => names.map((n) => `  ${n}\n`).join('');

async function main(): Promise<number> {
  switch (command) {
    case 'deploy': {
      await ensureDatabase(databaseUrl);
      const applied = await applyMigrations(databaseUrl);
      console.log(applied.length ? `Applied ${applied.length} migration(s):\n${list(applied)}` : 'No pending migrations.');
      return 0;
    }
    case 'status': {
      const { applied, pending, problems } = await migrationStatus(databaseUrl);
      console.log(`Applied (${applied.length}):\n${list(applied)}Pending (${pending.length}):\n${list(pending)}`);
      if (problems.length) console.log(`Problems:\n${list(problems)}`);
      console.log(pending.length || problems.length ? 'Database is NOT up to date.' : 'Database is up to date.');
      return pending.length || problems.length ? 1 : 0;
    }
    case 'create': {
      if (!name) break;
      const folder = await createMigration(databaseUrl, name);
      console.log(folder ? `Created prisma/migrations/${folder}/migration.sql` : 'no changes');
      return 0;
    }
  }
  console.error(usage);
  return 2;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`migrate ${command} failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
