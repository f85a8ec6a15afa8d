// `serve`: the token service in the foreground, with its signal handling and
// the retention scheduler.
import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { createLogger } from '../../logger.js';
import { RetentionScheduler } from '../../retention/scheduler.js';
import { note } from '../output.js';

export function register(program: Command): void {
  program.command('serve').description('run the token service (migrates first unless MIGRATE_ON_START=false)').action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    // Loaded here only: the other commands need no HTTP server nor oidc-provider.
    const { startService } = await import('../../server/service.js');
    if (config.mode === 'embedded') note(`starting with the embedded PostgreSQL in ${config.dataDir} (set DATABASE_URL for production)`);
    // A crash leaves its reason in the JSON log; pino's exit hook then writes
    // out every line still buffered.
    process.on('uncaughtException', (err) => {
      logger.fatal({ err }, 'uncaught exception: exiting');
      process.exit(1);
    });
    process.on('unhandledRejection', (err) => {
      logger.fatal({ err }, 'unhandled promise rejection: exiting');
      process.exit(1);
    });
    // Signal handlers go in before anything starts: a SIGTERM during start-up
    // (a fast rolling update) must still end with PostgreSQL stopped cleanly.
    let service: Awaited<ReturnType<typeof startService>> | undefined;
    let retention: RetentionScheduler | undefined;
    let stopping = false;
    let startupDeadline: NodeJS.Timeout | undefined;
    const finish = () =>
      Promise.resolve(retention?.stop()).then(() => service!.close()).then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    const stop = (signal: string) => {
      if (stopping) {
        // Twice Ctrl-C, or an impatient orchestrator: skip the rest of the
        // grace; requests in flight still get their SHUTDOWN_TIMEOUT.
        logger.info({ signal }, 'second signal: ending the grace now');
        service?.hurry();
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      if (service) void finish();
      // Start-up stuck (an unreachable database, say): do not outlive the signal by long.
      else startupDeadline = setTimeout(() => process.exit(1), 10_000).unref();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A closed terminal: stop cleanly too, rather than leave PostgreSQL orphaned.
    process.on('SIGHUP', () => stop('SIGHUP'));
    service = await startService(config, logger);
    // Deletes expired request tokens and old audit rows, on one replica at a time.
    retention = new RetentionScheduler({
      db: service.database.db,
      databaseUrl: service.database.url,
      retention: config,
      logger,
      onPruned: (table, rows) => service!.metrics.rowsPruned(table, rows),
    });
    if (stopping) {
      // Stopped before it was ever ready: no balancer needs a grace.
      clearTimeout(startupDeadline);
      service.hurry();
      await finish();
    } else {
      retention.start();
    }
  });
}
