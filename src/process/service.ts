// Starting and stopping the whole service: database (embedded or not),
// migrations, signing key, OIDC runtime, HTTP server. `jenkins-oidc serve`
// and the tests both go through startService.
import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import type { Config } from '../config.js';
import { flushLogs, type Logger } from '../logger.js';
import { loadSigningKeys } from '../signing-keys/keys.js';
import { timingOf } from '../signing-keys/lifecycle.js';
import { KeyWatcher, keySetFingerprint } from '../signing-keys/watcher.js';
import { resolveKeyEncryptionKey } from '../signing-keys/key-encryption-key.js';
import { openDatabase, type Database } from '../store/database.js';
import { databaseUnavailable } from '../store/connectivity.js';
import { AuditTrail } from '../audit/trail.js';
import { Metrics } from '../metrics/metrics.js';
import { redeemQueueOf } from '../request-tokens/redeem.js';
import { connectionCountsOf, poolOf } from '../store/prisma.js';
import { VERSION } from '../version.js';
import { createApp } from '../http/app.js';
import { Readiness } from '../http/readiness.js';
import { tokenPathHealthOf } from '../request-tokens/path-health.js';
import { onClientError } from '../http/client-errors.js';
import { prepareDatabase } from './prepare.js';
import { createOidcRuntime, OidcRuntimeHolder } from '../http/provider.js';
import { FrontDoor } from '../http/front-door.js';
import { HttpDrain, type Lifecycle } from './shutdown.js';
import { checkPortFree, METRICS_LISTENER, waitForDatabase } from './startup.js';

export interface StartOptions {
  /**
   * This process is worker N of `serve` with WORKERS > 1 (src/process/cluster.ts).
   * The primary has checked the port, applied migrations and ensured the
   * signing key before forking, so the worker skips those; it opens no metrics
   * listener and answers the primary's requests for its registry instead.
   * Everything else is a whole replica of its own: pool, key watcher, audit
   * trail, listener (the port is shared through the primary).
   */
  worker?: number;
  /**
   * A socket already listening, to serve on instead of binding HOST:PORT (a
   * test binds port 0 itself, so that ISSUER can name the port before the
   * service starts and no other process can take the port in between).
   */
  listener?: Server;
}

export interface RunningService {
  url: string;
  server: http.Server;
  database: Database;
  runtime: OidcRuntimeHolder;
  watcher: KeyWatcher;
  /** Refusal rows; flush() writes the aggregated windows now. */
  audit: AuditTrail;
  /** The /metrics URL when METRICS_PORT is set. */
  metricsUrl: string | undefined;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** The caps and the documents sent from memory. */
  frontDoor: FrontDoor;
  /**
   * The shutdown sequence (README "Shutdown"): /readyz 503 and Connection: close
   * at once, serve on for SHUTDOWN_GRACE, close the listener, let requests in
   * flight finish within SHUTDOWN_TIMEOUT, then stop the key watcher and the
   * database and flush the log. Idempotent.
   */
  close(): Promise<void>;
  /** Skips what is left of the grace (a second signal). */
  hurry(): void;
}

export async function startService(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningService> {
  const worker = options.worker !== undefined;
  // Before anything starts: a port in use is named now, not after PostgreSQL
  // was initialised; a database still starting is waited for, not a crash
  // (by a worker too: a replacement may start during a database outage).
  if (!worker && !options.listener) await checkPortFree(config.host, config.port);
  if (!worker && config.metricsPort !== undefined) await checkPortFree(config.metricsHost, config.metricsPort, METRICS_LISTENER);
  if (config.databaseUrl) {
    await waitForDatabase(config.databaseUrl, {
      timeoutSeconds: config.databaseConnectTimeout,
      attemptSeconds: config.databaseAcquireTimeout,
      report: ({ kind, ...fields }) => (kind === 'waiting' ? logger.warn(fields, 'waiting for the database') : logger.info(fields, 'database is answering')),
    });
  }
  const database = await openDatabase(config, 'serve', (m) => logger.debug({ component: 'embedded-postgres' }, m));
  // What a failed start-up has opened so far, closed before the error goes on:
  // a listener or a watcher left behind keeps the process alive forever.
  const opened: Array<() => Promise<unknown>> = [];
  try {
    if (!worker) await prepareDatabase(database, config, logger);
    const kek = resolveKeyEncryptionKey(config);
    const fingerprint = await keySetFingerprint(database.db);
    const keys = await loadSigningKeys(database.db, kek);
    const metrics = new Metrics({ version: VERSION, alg: config.signingAlg });
    if (worker) metrics.answerPrimary();
    const pool = poolOf(database.db);
    metrics.watchPool(pool);
    metrics.watchRedeems(redeemQueueOf(database.db));
    metrics.watchKeys(database.db, timingOf(config));
    const audit = new AuditTrail(database.db, {
      onError: (err) => logger.error({ err }, 'could not write aggregated refusals to the audit trail'),
      onRefusal: (event, error) => metrics.tokenRefused(event, error),
    });
    audit.start();
    opened.push(() => audit.close());
    const build = (set: typeof keys) =>
      createOidcRuntime({
        config,
        db: database.db,
        keys: set,
        audit,
        metrics,
        onServerError: (err) => {
          // (also a refusal audit write that failed alike while the database is away)
          const cause = databaseUnavailable(err);
          if (cause) logger.warn({ cause }, 'database unavailable');
          else logger.error({ err }, 'oidc-provider server_error');
        },
        onDatabaseUnavailable: (cause) => logger.warn({ cause }, 'database unavailable: answered 503'),
      });
    const runtime = new OidcRuntimeHolder(await build(keys));
    // Key rotation: requests already running keep the runtime they started
    // with; new ones get the rebuilt provider and signer.
    const watcher = new KeyWatcher({
      db: database.db,
      databaseUrl: database.url,
      kek,
      alg: config.signingAlg,
      timing: timingOf(config),
      intervalSeconds: config.keyCheckInterval,
      connectTimeoutSeconds: config.databaseAcquireTimeout,
      logger,
      onKeysChanged: async (set) => {
        runtime.current = await build(set);
        logger.info({ kid: runtime.current.signer.kid, published: runtime.current.kids }, 'signing keys swapped');
      },
    });
    await watcher.start(fingerprint);
    opened.push(() => watcher.stop());
    metrics.watchConnections(connectionCountsOf(pool), { pool, listening: () => watcher.listening });
    const server = http.createServer();
    const drain = new HttpDrain(server);
    tokenPathHealthOf(pool).onCommitUnknown = ({ kind, ids }, cause) => {
      logger.warn({ kind, count: ids.length, cause }, 'token statement lost mid-flight: it may have committed; callers were answered 503 and got no token (audit: commit_unknown)');
      audit.commitUnknown(kind, ids, cause);
    };
    const readiness = new Readiness({
      pool,
      tokenPath: tokenPathHealthOf(pool),
      stalledAfterMs: config.databaseAcquireTimeout * 1000,
      onUnexpected: (err) => logger.error({ err }, 'readiness check failed'),
    });
    metrics.watchReadiness(readiness, tokenPathHealthOf(pool));
    const app = createApp({ config, db: database.db, runtime, logger, lifecycle: drain, audit, metrics, readiness });
    const frontDoor = new FrontDoor({ config, runtime, drain, logger, metrics, pool });
    frontDoor.attach(server, app.callback());
    server.on('clientError', onClientError);
    // Longer than common load balancer idle timeouts (ALB: 60 s), so the
    // balancer, not us, closes idle connections and never hits a closed socket.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const listening = () => {
        server.off('error', reject);
        resolve();
      };
      if (options.listener) server.listen(options.listener, listening);
      else server.listen(config.port, config.host, listening);
    });
    opened.push(() => new Promise((resolve) => server.close(resolve)));
    // Metrics on a listener of their own: the public issuer never serves them.
    const metricsServer = config.metricsPort === undefined || worker ? undefined : await metrics.serve(config.metricsHost, config.metricsPort);
    const { port } = server.address() as AddressInfo;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const metricsUrl = metricsServer ? `http://${config.metricsHost.includes(':') ? `[${config.metricsHost}]` : config.metricsHost}:${Metrics.portOf(metricsServer)}/metrics` : undefined;
    logger.info({ url, issuer: config.issuer, mode: config.mode, kid: runtime.current.signer.kid, version: VERSION, metrics: metricsUrl }, 'jenkins-oidc listening');

    let closing: Promise<void> | undefined;
    let endGrace: () => void = () => {};
    let hurried = false;
    const shutdown = async () => {
      const started = Date.now();
      drain.stop();
      if (config.shutdownGrace > 0 && !hurried) {
        logger.info({ graceSeconds: config.shutdownGrace }, 'shutting down: /readyz answers 503, serving with Connection: close until the grace ends');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.shutdownGrace * 1000);
          endGrace = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const { inFlight, forced } = await drain.close(config.shutdownTimeout * 1000);
      if (forced) logger.warn({ forced, timeoutSeconds: config.shutdownTimeout }, 'connections still open at SHUTDOWN_TIMEOUT were closed');
      logger.info({ inFlight, forced }, 'listener closed, requests in flight answered');
      if (metricsServer) {
        await new Promise<void>((resolve) => {
          metricsServer.close(() => resolve());
          metricsServer.closeAllConnections();
        });
      }
      await watcher.stop();
      // The last windows of aggregated refusals, while the database is still there.
      await audit.close();
      await database.close();
      logger.info({ ms: Date.now() - started }, 'jenkins-oidc stopped');
      await flushLogs(logger);
    };
    return {
      url,
      server,
      database,
      runtime,
      watcher,
      audit,
      metricsUrl,
      metrics,
      lifecycle: drain,
      frontDoor,
      close: () => (closing ??= shutdown()),
      hurry: () => {
        hurried = true;
        endGrace();
      },
    };
  } catch (err) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw err;
  }
}
