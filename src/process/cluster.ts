// `serve` with WORKERS > 1: one JavaScript thread per process cannot use more
// than one core, so this process (the primary) forks WORKERS workers sharing
// the port through node:cluster (round-robin: the primary accepts and hands
// each connection to the next worker). Each worker runs `serve` again and is
// a whole, stateless replica: its own pool, key watcher, audit trail, its
// /healthz and /readyz, as if it were one more pod.
//
// The primary supervises and does nothing else; it never loads oidc-provider.
// 1. Once, before any worker exists: checks the port, waits for the database,
//    then applies migrations (MIGRATE_ON_START) and ensures the signing key,
//    so workers never race on them. Those two run in a one-shot child process
//    (`serve` again, with JENKINS_OIDC_PREPARE=1), so that the primary keeps
//    only what supervising needs: a process keeps the memory it once used
//    (the primary: 84 MB resident, a worker 107 MB idle, Node 24).
// 2. Serves /metrics (METRICS_PORT) for all workers: ClusterMetrics.
// 3. Forks the workers. A worker that fails before it ever listened, during
//    the first start, stops everything (exit 1): a wrong key-encryption key
//    fails every worker alike, and forking on would only loop. Later, a worker
//    that dies is logged and replaced, unless more than MAX_DEATHS died within
//    DEATH_WINDOW_MS: a crash loop, so the primary stops everything (exit 1)
//    and leaves restarting to the supervisor (systemd, Kubernetes).
// 4. On SIGTERM, SIGINT or SIGHUP: forwards SIGTERM to every worker (each
//    drains on its own: SHUTDOWN_GRACE, SHUTDOWN_TIMEOUT), waits for all to
//    exit, exits 0 (1 if one did not stop cleanly). A second signal is
//    forwarded too: the workers skip what is left of their grace.
import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import type { Config } from '../config.js';
import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ClusterMetrics, Metrics, serveMetrics } from '../metrics/metrics.js';
import { checkPortFree, METRICS_LISTENER, waitForDatabase } from './startup.js';
import { isStartFailure, PREPARE_VARIABLE, WORKER_SLOT_VARIABLE } from './worker-protocol.js';

/** More deaths than this within DEATH_WINDOW_MS is a crash loop. */
export const MAX_DEATHS = 5;
export const DEATH_WINDOW_MS = 60_000;
/** Beyond SHUTDOWN_GRACE + SHUTDOWN_TIMEOUT: what a worker may take to stop its database and flush its log. */
const STOP_MARGIN_SECONDS = 15;

interface Slot {
  /** 1..WORKERS: the `worker` field of its log lines; a replacement takes the same number. */
  n: number;
  worker: Worker | undefined;
  /** Listening since it was forked. */
  listening: boolean;
  /** Its own reason, when it failed to start. */
  startError?: string;
  startAdvice?: string;
}

/** How `serve` ends once every worker has exited; `error`: why the primary stopped them (for stderr, as a single process's error). */
export interface PrimaryOutcome {
  code: number;
  error?: Error;
}

/** Resolves once every worker has exited; rejects if the start fails before any worker exists. */
export async function runPrimary(config: Config, logger: Logger): Promise<PrimaryOutcome> {
  const slots: Slot[] = Array.from({ length: config.workers }, (_, i) => ({ n: i + 1, worker: undefined, listening: false }));
  // (A cast, not an annotation: the signal handlers change it between awaits.)
  let phase = 'preparing' as 'preparing' | 'starting' | 'running' | 'stopping';
  let exitCode = 0;
  let metricsServer: http.Server | undefined;
  const deaths: number[] = [];
  const alive = () => slots.filter((s) => s.worker);
  const slotOf = (worker: Worker) => slots.find((s) => s.worker === worker);

  let failure: Error | undefined;
  let ended: ((outcome: PrimaryOutcome) => void) | undefined;
  const done = new Promise<PrimaryOutcome>((resolve) => (ended = resolve));
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    if (metricsServer) {
      const server = metricsServer;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    logger.info({ exitCode: code }, 'jenkins-oidc stopped: every worker has exited');
    ended!({ code, error: failure });
  };

  const forward = () => {
    for (const s of alive()) s.worker!.process.kill('SIGTERM');
  };

  /** `signal`: an operator's stop; without one, the primary's own decision to stop (exit 1, `error` saying why). */
  const stop = (signal: string | undefined, error?: Error) => {
    if (phase === 'stopping') {
      if (signal) {
        logger.info({ signal }, 'second signal: forwarded, the workers end their grace now');
        forward();
      }
      return;
    }
    const was = phase;
    phase = 'stopping';
    if (!signal) {
      exitCode = 1;
      failure = error;
    }
    if (was === 'preparing') {
      if (signal) logger.info({ signal }, 'shutting down');
      // Migrations stuck (an unreachable database, say): do not outlive the signal by long.
      setTimeout(() => process.exit(1), 10_000).unref();
      return;
    }
    if (signal) logger.info({ signal, workers: alive().length }, 'shutting down: SIGTERM forwarded to every worker');
    forward();
    // Each worker bounds its own shutdown; this bounds a worker that hangs anyway.
    setTimeout(() => {
      logger.error({ workers: alive().map((s) => s.n) }, `workers still running ${STOP_MARGIN_SECONDS} s after SHUTDOWN_GRACE + SHUTDOWN_TIMEOUT: killed`);
      exitCode = 1;
      for (const s of alive()) s.worker!.process.kill('SIGKILL');
    }, (config.shutdownGrace + config.shutdownTimeout + STOP_MARGIN_SECONDS) * 1000).unref();
    if (alive().length === 0) void exit(exitCode);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));

  // 1. Once for all workers.
  await checkPortFree(config.host, config.port);
  if (config.metricsPort !== undefined) await checkPortFree(config.metricsHost, config.metricsPort, METRICS_LISTENER);
  if (config.databaseUrl) {
    await waitForDatabase(config.databaseUrl, {
      timeoutSeconds: config.databaseConnectTimeout,
      attemptSeconds: config.databaseAcquireTimeout,
      report: ({ kind, ...fields }) => (kind === 'waiting' ? logger.warn(fields, 'waiting for the database') : logger.info(fields, 'database is answering')),
    });
  }
  try {
    await prepareInChild();
  } catch (err) {
    // Signalled meanwhile (a process-group SIGTERM may have ended it too): just stop.
    if (phase !== 'stopping') throw err;
  }
  if (phase === 'stopping') {
    // Stopped before any worker existed.
    await exit(exitCode);
    return done;
  }

  // 2. Metrics for all workers, on the primary's listener.
  const metrics = new ClusterMetrics(cluster, () => slots.filter((s) => s.worker && s.listening).map((s) => ({ worker: s.worker!, slot: s.n })));
  if (config.metricsPort !== undefined) metricsServer = await serveMetrics(config.metricsHost, config.metricsPort, metrics);

  // 3. The workers.
  const fork = (slot: Slot) => {
    const worker = cluster.fork({ [WORKER_SLOT_VARIABLE]: String(slot.n) });
    slot.worker = worker;
    slot.listening = false;
    slot.startError = undefined;
    slot.startAdvice = undefined;
    // A signal that cannot be delivered (the worker just died): its 'exit' follows.
    worker.on('error', (err) => logger.warn({ worker: slot.n, err: err.message }, 'worker process error'));
    logger.info({ worker: slot.n, pid: worker.process.pid }, 'worker started');
  };
  cluster.on('listening', (worker, address) => {
    const slot = slotOf(worker);
    if (!slot || slot.listening) return;
    slot.listening = true;
    if (phase === 'starting' && slots.every((s) => s.listening)) {
      phase = 'running';
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      logger.info(
        // The port the workers share, as bound: PORT=0 takes any free one.
        { url: `http://${host}:${address.port}`, workers: config.workers, pids: slots.map((s) => s.worker!.process.pid), metrics: metricsServer ? `http://${config.metricsHost.includes(':') ? `[${config.metricsHost}]` : config.metricsHost}:${Metrics.portOf(metricsServer)}/metrics` : undefined },
        'jenkins-oidc workers listening',
      );
    }
  });
  cluster.on('message', (worker, message) => {
    const slot = slotOf(worker);
    if (slot && isStartFailure(message)) {
      slot.startError = message.error;
      slot.startAdvice = message.advice;
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const slot = slotOf(worker);
    if (!slot) return;
    slot.worker = undefined;
    const fields = { worker: slot.n, pid: worker.process.pid, code, signal, error: slot.startError };
    if (phase === 'stopping') {
      // Exit 0 is a worker that drained; SIGTERM kills one forked too late to have its handler yet.
      if (code !== 0 && signal !== 'SIGTERM') {
        if (slot.startError) logger.error(fields, `worker ${slot.n} failed to start: ${slot.startError}`);
        else logger.warn(fields, 'worker did not stop cleanly');
        exitCode = 1;
      }
      if (alive().length === 0) void exit(exitCode);
      return;
    }
    if (phase === 'starting' && !slot.listening) {
      const why = `worker ${slot.n} failed to start${slot.startError ? `: ${slot.startError}` : ` (exit code ${code}, signal ${signal})`}`;
      logger.fatal(fields, `${why}; stopping`);
      stop(undefined, slot.startError ? new DomainError(slot.startError, slot.startAdvice) : new Error(why));
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length && deaths[0]! <= now - DEATH_WINDOW_MS) deaths.shift();
    if (deaths.length > MAX_DEATHS) {
      const why = `${deaths.length} worker deaths within ${DEATH_WINDOW_MS / 1000} s: a crash loop`;
      logger.fatal({ ...fields, deaths: deaths.length, windowSeconds: DEATH_WINDOW_MS / 1000 }, `${why}; stopping`);
      stop(undefined, new Error(`${why}; the service log has each worker's exit`));
      return;
    }
    logger.error(fields, slot.listening ? 'worker died; starting a replacement' : 'worker failed to start; starting a replacement');
    metrics.workerRestarted();
    fork(slot);
  });
  phase = 'starting';
  for (const slot of slots) fork(slot);
  return done;
}

/**
 * Migrations and the signing key (src/process/prepare.ts) in a one-shot
 * process; resolves once it exited 0, rejects with its error otherwise (the
 * error `serve` then ends with, as a single process would). A cluster worker,
 * so that it exits by itself should the primary die meanwhile.
 */
function prepareInChild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = cluster.fork({ [PREPARE_VARIABLE]: '1' });
    let failure: { error: string; advice?: string } | undefined;
    child.on('message', (m) => {
      if (isStartFailure(m)) failure = m;
    });
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(failure ? new DomainError(failure.error, failure.advice) : new Error(`applying migrations and ensuring the signing key failed (exit code ${code}, signal ${signal})`));
    });
  });
}
