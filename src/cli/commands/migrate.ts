// `migrate`: applies pending migrations; a deployment's migration Job runs it
// before the new replicas start.
import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { describeWait, waitForDatabase } from '../../process/startup.js';
import { openDatabase } from '../../store/database.js';
import { migrate, readMigrations } from '../../store/migrate.js';
import { note, printJson } from '../output.js';

export function register(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (safe to run from several replicas at once)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      // Migrations need neither the key-encryption key nor the public issuer (a migration Job has neither).
      const config = loadConfig(process.env, process.cwd(), { keyEncryptionKey: false, publicIssuer: false });
      // A migration Job may start before its database: wait, as serve does.
      if (config.databaseUrl) {
        await waitForDatabase(config.databaseUrl, { timeoutSeconds: config.databaseConnectTimeout, attemptSeconds: config.databaseAcquireTimeout, report: (e) => note(describeWait(e)) });
      }
      const database = await openDatabase(config, 'cli', undefined, note);
      try {
        const result = await migrate(database.url, { onProgress: (m) => !opts.json && note(m) });
        if (opts.json) return printJson({ ...result, available: readMigrations().map((m) => m.name) });
        process.stdout.write(result.applied.length ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}\n` : 'database is up to date\n');
        if (result.modified.length) note(`warning: applied migrations changed since: ${result.modified.join(', ')}`);
      } finally {
        await database.close();
      }
    });
}
