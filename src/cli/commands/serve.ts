// `serve`: the token service in the foreground, with its signal handling and
// the retention scheduler. With WORKERS > 1 this process becomes the primary
// of a cluster (src/process/cluster.ts), and the processes it forks run this
// same command again: first a one-shot one that applies migrations and
// ensures the signing key, then the workers.
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { loadConfig, VARIABLES, type Config } from '../../config.js';
import { DomainError } from '../../errors.js';
import { createLogger, flushLogs, type Logger } from '../../logger.js';
import { RetentionScheduler } from '../../retention/scheduler.js';
import { exitOnCrash } from '../../process/crash.js';
import { applyServeRuntime } from '../../process/runtime.js';
import { PREPARE_VARIABLE, WORKER_SLOT_VARIABLE, type StartFailure } from '../../process/worker-protocol.js';
import { note } from '../output.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the token service (migrates first unless MIGRATE_ON_START=false)')
    // The names come from the record config.ts validates, so the list cannot
    // miss one; their defaults and meanings are in the generated reference.
    .addHelpText('after', `
Settings are environment variables, checked at start (a wrong one stops serve, naming it):
${wrap(Object.keys(VARIABLES).join(', '), 96, '  ')}

Each one's default and meaning: docs/configuration.md in the source repository
(generated from the same declarations). No DATABASE_URL: embedded PostgreSQL in DATA_DIR.`)
    .action(async () => {
    const config = loadConfig();
    // Before anything is loaded or written: the heap flags are start-up flags,
    // so this replaces the process with itself plus them (process/runtime.ts).
    const withoutFlags = applyServeRuntime(config);
    // Set by the primary for each worker it forks (not a setting): the worker's
    // number, 1..WORKERS, kept by its replacement. A cluster worker without it
    // was forked by something else (a process manager's cluster mode): it runs
    // as one whole process.
    const slotText = cluster.isWorker ? process.env[WORKER_SLOT_VARIABLE] : undefined;
    const slot = slotText ? Number(slotText) : undefined;
    const preparing = cluster.isWorker && process.env[PREPARE_VARIABLE] === '1';
    const primary = cluster.isPrimary && config.workers > 1;
    // Several processes on one stdout: keep each write a whole number of lines (logger.ts).
    const root = createLogger(config.logLevel, undefined, { sharedStdout: primary || preparing || slot !== undefined });
    const logger = slot === undefined ? root : root.child({ worker: slot });
    if (withoutFlags.length > 0 && !cluster.isWorker) {
      logger.warn({ flags: withoutFlags }, `running without ${withoutFlags.join(' ')}: V8's default heap grows to about twice the memory under load; serve could not restart itself with them (a Node before 22.15 has no process.execve; a process forked by a process manager keeps its channel only as it is), so give them to node (docs/performance.md#memory)`);
    }
    // A crash leaves its reason in the JSON log, as its last line (process/crash.ts).
    exitOnCrash(logger);
    if (primary) {
      // The primary supervises only: it never loads oidc-provider.
      const { runPrimary } = await import('../../process/cluster.js');
      const { code, error } = await runPrimary(config, logger);
      // Why the primary stopped the workers, where a single process's start-up error goes.
      const advice = error instanceof DomainError ? error.advice : undefined;
      if (error) note(`error: ${error.message}${advice ? `\n  ${advice}` : ''}`);
      await flushLogs(logger);
      process.exit(code);
    }
    if (preparing) {
      await runPreparation(config, logger);
      return;
    }
    await runService(config, logger, slot);
  });
}

/** Ctrl-C and a closed terminal signal the whole process group; the primary decides what they mean. */
function leaveSignalsToThePrimary(logger: Logger): void {
  const ignore = (signal: string) => logger.debug({ signal }, 'ignored: the primary forwards stop signals');
  process.on('SIGINT', () => ignore('SIGINT'));
  process.on('SIGHUP', () => ignore('SIGHUP'));
}

/** The primary's one-shot child: migrations and the signing key, then exit (src/process/cluster.ts says why a process of its own). */
async function runPreparation(config: Config, logger: Logger): Promise<void> {
  leaveSignalsToThePrimary(logger);
  const { openDatabase } = await import('../../store/database.js');
  const { prepareDatabase } = await import('../../process/prepare.js');
  try {
    // Two connections are plenty for migrations and one key check.
    const database = await openDatabase({ ...config, databasePoolSize: 2 }, 'serve');
    try {
      await prepareDatabase(database, config, logger);
    } finally {
      await database.close();
    }
  } catch (err) {
    // The primary ends `serve` with this error, as a single process would.
    const failure: StartFailure = { type: 'jenkins-oidc:start-failed', error: (err as Error).message ?? String(err), advice: (err as { advice?: string }).advice };
    await new Promise<void>((resolve) => process.send!(failure, undefined, {}, () => resolve()));
    await flushLogs(logger);
    process.exit(1);
  }
  await flushLogs(logger);
  process.exit(0);
}

/** One replica: the whole process (WORKERS=1), or worker `slot` of a cluster. */
async function runService(config: Config, logger: Logger, slot: number | undefined): Promise<void> {
  // Loaded here only: the other commands need no HTTP server nor oidc-provider.
  const { startService } = await import('../../process/service.js');
  if (config.mode === 'embedded') note(`starting with the embedded PostgreSQL in ${config.dataDir} (set DATABASE_URL for production)`);
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
  if (slot === undefined) {
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A closed terminal: stop cleanly too, rather than leave PostgreSQL orphaned.
    process.on('SIGHUP', () => stop('SIGHUP'));
  } else {
    // A worker takes its orders from the primary, which forwards every stop
    // signal as SIGTERM (a second one: hurry). Ctrl-C and a closed terminal
    // signal the whole process group, the workers with the primary: acting on
    // those too would count each as two signals and skip the grace. So SIGINT
    // and SIGHUP are ignored here; a SIGTERM sent to one worker drains and
    // ends just that worker, which the primary replaces.
    leaveSignalsToThePrimary(logger);
    process.on('SIGTERM', () => stop('SIGTERM'));
  }
  try {
    service = await startService(config, logger, { worker: slot });
  } catch (err) {
    if (slot === undefined) throw err;
    // The primary stops everything and exits non-zero when a worker cannot
    // start (a wrong key-encryption key would fail every worker alike): say
    // why, here and to the primary for its own line.
    logger.fatal({ err }, 'worker failed to start');
    const failure: StartFailure = { type: 'jenkins-oidc:start-failed', error: (err as Error).message ?? String(err), advice: (err as { advice?: string }).advice };
    await new Promise<void>((resolve) => process.send!(failure, undefined, {}, () => resolve()));
    await flushLogs(logger);
    process.exit(1);
  }
  // Deletes expired request tokens and old audit rows, on one replica at a
  // time (an advisory lock). In a cluster, only worker 1 runs the schedule
  // (its replacement takes it over): the others would only tick to find the
  // lock taken. Not the primary: it holds no database connection once the
  // workers run, and supervising is all it does.
  if (slot === undefined || slot === 1) {
    retention = new RetentionScheduler({
      db: service.database.db,
      databaseUrl: service.database.url,
      retention: config,
      logger,
      onPruned: (table, rows) => service!.metrics.rowsPruned(table, rows),
    });
  }
  if (stopping) {
    // Stopped before it was ever ready: no balancer needs a grace.
    clearTimeout(startupDeadline);
    service.hurry();
    await finish();
  } else {
    retention?.start();
  }
}

/** Words joined by ", " broken into lines of at most width characters, each indented. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}
