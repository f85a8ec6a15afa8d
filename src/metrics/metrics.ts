// Prometheus metrics, served on a listener of their own (METRICS_PORT, off by
// default) so the public issuer never exposes them. One Metrics per service
// (tests run several services in one process; each has its own registry).
//
// With WORKERS > 1 each worker keeps its own Metrics and opens no listener:
// the primary (ClusterMetrics) asks every worker for its registry over the
// cluster's IPC channel and serves the aggregate. Each metric says how it
// aggregates (prom-client's `aggregator`, sum unless said): counters,
// histograms and pool gauges add up; facts every worker reads alike from the
// one database (keys, database_up, build info) must not be multiplied.
//
// Label values are bounded: routes are our own names, statuses numbers,
// reasons the OAuth error codes this service uses, clients the registered
// controller names (only after they authenticated). Job names, audiences and
// anything else a caller chooses never become a label.
import type { Cluster, Worker } from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import client from 'prom-client';
import type { RedeemQueue } from '../request-tokens/redeem.js';
import type { TokenPathHealth } from '../request-tokens/path-health.js';
import type { Readiness } from '../http/readiness.js';
import type { ConnectionCounts } from '../store/deadlines.js';
import { retentionLockConnections } from '../retention/lock-connections.js';
import { poolOf, type Db } from '../store/prisma.js';

/** OAuth error codes and our own refusal reasons; anything else is counted as `other`. */
const REASONS = new Set([
  'invalid_request', 'invalid_client', 'invalid_grant', 'invalid_target', 'invalid_token', 'unauthorized_client',
  'unsupported_grant_type', 'slow_down', 'temporarily_unavailable', 'server_error',
]);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'OPTIONS']);

export interface BuildInfo {
  version: string;
  alg: string;
}

export interface KeyTiming {
  rotationInterval: number;
  publishLead: number;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Histogram<'route' | 'method' | 'status'>;
  private readonly issued: client.Counter<'kind' | 'client'>;
  private readonly refused: client.Counter<'event' | 'reason'>;
  private readonly connectionHold: client.Histogram<never>;
  private readonly pruned: client.Counter<'table'>;
  private readonly newSources: client.Counter<'client'>;
  private readonly clientAborts: client.Counter;
  private readonly overload: client.Counter<'cap'>;

  constructor(info: BuildInfo) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'jenkins_oidc_' });
    // prom-client sums it across workers; it is a limit of each process.
    const maxFds = this.registry.getSingleMetric('jenkins_oidc_process_max_fds') as { aggregator: client.Aggregator } | undefined;
    if (maxFds) maxFds.aggregator = 'min';
    new client.Gauge({
      name: 'jenkins_oidc_build_info',
      help: 'Always 1; the labels say which version runs on which Node with which signing algorithm.',
      labelNames: ['version', 'node', 'alg'],
      // Every worker runs the same build: 1, not the number of workers.
      aggregator: 'first',
      registers,
    }).set({ version: info.version, node: process.version, alg: info.alg }, 1);
    this.requests = new client.Histogram({
      name: 'jenkins_oidc_http_request_duration_seconds',
      help: 'Time from request to response, by route (our route names), method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.issued = new client.Counter({
      name: 'jenkins_oidc_tokens_issued_total',
      help: 'Tokens issued, by kind (request_token, id_token) and controller.',
      labelNames: ['kind', 'client'],
      registers,
    });
    this.refused = new client.Counter({
      name: 'jenkins_oidc_tokens_refused_total',
      help: 'Refusals, by audit event and OAuth error code.',
      labelNames: ['event', 'reason'],
      registers,
    });
    this.connectionHold = new client.Histogram({
      name: 'jenkins_oidc_db_connection_hold_seconds',
      help: 'How long each use of a database connection lasted (a query, or a transaction): database latency as the service sees it.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.overload = new client.Counter({
      name: 'jenkins_oidc_overload_refusals_total',
      help: 'Connections and requests answered 503 because a capacity limit was reached (connections, in_flight, database_queue).',
      labelNames: ['cap'],
      registers,
    });
    this.clientAborts = new client.Counter({
      name: 'jenkins_oidc_client_aborts_total',
      help: 'Requests whose client went away before the request had arrived (no answer sent; not a database outage).',
      registers,
    });
    this.newSources = new client.Counter({
      name: 'jenkins_oidc_new_client_sources_total',
      help: 'Mints from an address the controller had never minted from before (each is marked new_source in its audit row: a stolen client secret shows here).',
      labelNames: ['client'],
      registers,
    });
    this.pruned = new client.Counter({
      name: 'jenkins_oidc_rows_pruned_total',
      help: 'Rows deleted by the retention schedule, by table.',
      labelNames: ['table'],
      registers,
    });
  }

  observeRequest(route: string | undefined, method: string, status: number, seconds: number): void {
    this.requests.observe({ route: route ?? 'unknown', method: METHODS.has(method) ? method : 'other', status: String(status) }, seconds);
  }

  tokenIssued(kind: 'request_token' | 'id_token', clientName: string): void {
    this.issued.inc({ kind, client: clientName });
  }

  tokenRefused(event: string, reason: string, count = 1): void {
    this.refused.inc({ event, reason: REASONS.has(reason) ? reason : 'other' }, count);
  }

  overloadRefused(cap: 'connections' | 'in_flight' | 'database_queue'): void {
    this.overload.inc({ cap });
  }

  clientAborted(): void {
    this.clientAborts.inc();
  }

  newClientSource(clientName: string): void {
    this.newSources.inc({ client: clientName });
  }

  rowsPruned(table: 'audit_events' | 'request_tokens', count: number): void {
    if (count > 0) this.pruned.inc({ table }, count);
  }

  /** Pool size, idle and waiting connections at each scrape; how long each connection use lasts. */
  watchPool(pool: pg.Pool): void {
    const registers = [this.registry];
    new client.Gauge({ name: 'jenkins_oidc_db_pool_connections', help: 'Open connections in this process\'s pool.', registers, collect() { this.set(pool.totalCount); } });
    new client.Gauge({ name: 'jenkins_oidc_db_pool_idle_connections', help: 'Idle connections in the pool.', registers, collect() { this.set(pool.idleCount); } });
    new client.Gauge({ name: 'jenkins_oidc_db_pool_waiting_requests', help: 'Queries waiting for a free connection (the pool is exhausted when this stays above 0).', registers, collect() { this.set(pool.waitingCount); } });
    const started = new WeakMap<object, bigint>();
    pool.on('acquire', (c) => started.set(c, process.hrtime.bigint()));
    pool.on('release', (_err, c) => {
      const t = started.get(c);
      if (t !== undefined) this.connectionHold.observe(Number(process.hrtime.bigint() - t) / 1e9);
    });
  }

  /**
   * What the statement deadlines did to this process's connections
   * (store/deadlines.ts), and every connection it holds by kind: the pool
   * (at most DATABASE_POOL_SIZE; the redeem statements take theirs from it),
   * the key watcher's LISTEN (1), the retention lock (1 while pruning, in one
   * process per replica).
   */
  watchConnections(counts: ConnectionCounts, open: { pool: pg.Pool; listening: () => boolean }): void {
    const registers = [this.registry];
    new client.Gauge({
      name: 'jenkins_oidc_db_connections',
      help: 'Database connections this process holds, by kind: pool (at most DATABASE_POOL_SIZE), listen (key changes, 1), retention_lock (1 while pruning).',
      labelNames: ['kind'],
      registers,
      collect() {
        this.set({ kind: 'pool' }, open.pool.totalCount);
        this.set({ kind: 'listen' }, open.listening() ? 1 : 0);
        this.set({ kind: 'retention_lock' }, retentionLockConnections.open);
      },
    });
    // Counters read from the counts at each scrape.
    const counter = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, n: number) => void) => void) =>
      new client.Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          read((labels, n) => this.inc(labels, n));
        },
      });
    counter('jenkins_oidc_db_statement_timeouts_total', 'Statements that ran out of time: by="server" cancelled by statement_timeout (57014), by="client" unanswered a second past it (the connection was destroyed).', ['by'], (set) => {
      set({ by: 'server' }, counts.statementTimeouts);
      set({ by: 'client' }, counts.deadlinesMissed);
    });
    counter('jenkins_oidc_db_connections_destroyed_total', 'Connections destroyed by the service: a missed statement deadline, or a server that answered read-only (25006).', [], (set) => set({}, counts.destroyed));
    counter('jenkins_oidc_db_standby_refused_total', 'New connections refused because the server was in recovery (a standby).', [], (set) => set({}, counts.standbyRefused));
  }

  /** /readyz's probes, and how long ago the token path last succeeded. */
  watchReadiness(readiness: Readiness, tokenPath: TokenPathHealth): void {
    const registers = [this.registry];
    new client.Counter({
      name: 'jenkins_oidc_readiness_probes_total',
      help: 'Database probes run for /readyz (at most one a second, whatever the number of callers).',
      registers,
      collect() {
        this.reset();
        this.inc(readiness.probes);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_token_statement_last_success_age_seconds',
      help: 'Seconds since a token statement (a redeem for an exchange or GET /id-token, or a mint) last succeeded; -1: none yet.',
      aggregator: 'min',
      registers,
      collect() {
        this.set(tokenPath.lastSuccessAt === undefined ? -1 : (performance.now() - tokenPath.lastSuccessAt) / 1000);
      },
    });
  }

  /**
   * The token exchange's redeem queue (request-tokens/redeem.ts): how many
   * redeems each statement carried (_count statements, _sum redeems), and how
   * many wait for a statement at each scrape.
   */
  watchRedeems(queue: RedeemQueue): void {
    const registers = [this.registry];
    const sizes = new client.Histogram({
      name: 'jenkins_oidc_redeem_batch_size',
      help: 'Redeems (token exchanges and GET /id-token) carried by each redeem statement.',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    queue.onStatement = (redeems) => sizes.observe(redeems);
    new client.Gauge({ name: 'jenkins_oidc_redeem_backlog', help: 'Redeems waiting for a statement (each process runs at most 2 at once).', registers, collect() { this.set(queue.backlog); } });
  }

  /** Signing keys by status, the active key's age and the time to the next scheduled step, read at each scrape. */
  watchKeys(db: Db, timing: KeyTiming): void {
    const registers = [this.registry];
    type KeyRow = { status: string; activatedAt: Date | null; activateAfter: Date | null };
    let cached: { at: number; rows: KeyRow[]; up: boolean } = { at: 0, rows: [], up: false };
    // The gauges are scraped together: one query serves them all. A database
    // that does not answer must not fail the scrape: it shows as database_up 0
    // and the last key figures known.
    const keys = async (): Promise<KeyRow[]> => {
      if (Date.now() - cached.at > 1000) {
        try {
          const rows = await Promise.race([
            poolOf(db)
              .query<KeyRow>(`SELECT status, activated_at AS "activatedAt", activate_after AS "activateAfter" FROM signing_keys WHERE status <> 'removed'`)
              .then((r) => r.rows),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
          ]);
          cached = { at: Date.now(), rows, up: true };
        } catch {
          cached = { ...cached, at: Date.now(), up: false };
        }
      }
      return cached.rows;
    };
    // Every worker reads the same rows; across workers these take the most
    // alarming answer: down if any worker's query failed, the most keys (a
    // scrape straddling a rotation step), the oldest key, the nearest step.
    new client.Gauge({
      name: 'jenkins_oidc_database_up',
      help: '1 when the database answered the last scrape\'s query within 2 s, else 0.',
      aggregator: 'min',
      registers,
      async collect() {
        await keys();
        this.set(cached.up ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_signing_keys',
      help: 'Published signing keys by status (pending, active, retired).',
      labelNames: ['status'],
      aggregator: 'max',
      registers,
      async collect() {
        const rows = await keys();
        for (const status of ['pending', 'active', 'retired']) this.set({ status }, rows.filter((k) => k.status === status).length);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_signing_key_age_seconds',
      help: 'How long the active key has been signing.',
      aggregator: 'max',
      registers,
      async collect() {
        const active = (await keys()).find((k) => k.status === 'active');
        this.set(active?.activatedAt ? (Date.now() - active.activatedAt.getTime()) / 1000 : 0);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_signing_key_next_step_seconds',
      help: 'Seconds until the schedule next moves a key: a pending key starts signing, or the active key gets a successor (negative: overdue).',
      aggregator: 'min',
      registers,
      async collect() {
        const rows = await keys();
        const pending = rows.find((k) => k.status === 'pending');
        const active = rows.find((k) => k.status === 'active');
        const at = pending?.activateAfter?.getTime() ?? (active?.activatedAt ? active.activatedAt.getTime() + timing.rotationInterval * 1000 : undefined);
        this.set(at === undefined ? 0 : (at - Date.now()) / 1000);
      },
    });
  }

  /** Serves /metrics on its own listener; resolves once listening. */
  serve(host: string, port: number): Promise<http.Server> {
    return serveMetrics(host, port, this.registry);
  }

  /**
   * In a cluster worker: answers the primary's requests for this registry
   * (ClusterMetrics), instead of a listener of its own.
   */
  answerPrimary(): void {
    process.on('message', (message: unknown) => {
      if (!isRequest(message)) return;
      const reply = (answer: Omit<MetricsAnswer, 'type' | 'id'>) =>
        // With a callback, a primary gone meanwhile is not an 'error' event (an uncaught exception).
        process.send?.({ type: ANSWER, id: message.id, ...answer } satisfies MetricsAnswer, undefined, {}, () => undefined);
      this.registry.getMetricsAsJSON().then(
        (metrics) => reply({ metrics }),
        (err: Error) => reply({ error: err.message }),
      );
    });
  }

  static portOf(server: http.Server): number {
    return (server.address() as AddressInfo).port;
  }
}

type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;
const REQUEST = 'jenkins-oidc:metrics-request';
const ANSWER = 'jenkins-oidc:metrics';
interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}
interface MetricsAnswer {
  type: typeof ANSWER;
  id: number;
  metrics?: MetricsJson;
  error?: string;
}
const isRequest = (m: unknown): m is MetricsRequest => (m as MetricsRequest | undefined)?.type === REQUEST;
const isAnswer = (m: unknown): m is MetricsAnswer => (m as MetricsAnswer | undefined)?.type === ANSWER;

/** How long a scrape waits for a worker before it fails (Prometheus's own timeout is 10 s). */
const WORKER_ANSWER_MS = 3000;

/**
 * The primary's /metrics with WORKERS > 1: every listening worker's registry,
 * aggregated by prom-client (AggregatorRegistry.aggregate, each metric by its
 * `aggregator`), plus the primary's own two metrics about its workers.
 *
 * Not AggregatorRegistry.clusterMetrics(): it asks every connected worker,
 * also one still starting (which has no listener yet and drops the request)
 * and one dying mid-scrape; either way the scrape hangs for its 5 s and fails,
 * and the request stays in its table for good. Here only workers that are
 * listening are asked, and one that exits during the scrape is left out (its
 * counters are gone with it; Prometheus sees the drop as a counter reset).
 */
export class ClusterMetrics {
  readonly registry = new client.Registry();
  private readonly restarts: client.Counter<never>;
  private nextId = 0;

  /** `listening`: the workers to ask, with the number they go by in logs (their slot). */
  constructor(
    private readonly cluster: Cluster,
    private readonly listening: () => { worker: Worker; slot: number }[],
  ) {
    const registers = [this.registry];
    const count = () => this.listening().length;
    new client.Gauge({
      name: 'jenkins_oidc_workers',
      help: 'Worker processes listening now (WORKERS when all are up).',
      registers,
      collect() {
        this.set(count());
      },
    });
    this.restarts = new client.Counter({
      name: 'jenkins_oidc_worker_restarts_total',
      help: 'Workers that died and were replaced.',
      registers,
    });
  }

  workerRestarted(): void {
    this.restarts.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async metrics(): Promise<string> {
    const id = this.nextId++;
    const asked = this.listening();
    const waiting = new Map(asked.map(({ worker, slot }) => [worker.id, slot]));
    const answers: MetricsJson[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => end(new Error(`worker ${[...waiting.values()].join(', ')} did not answer within ${WORKER_ANSWER_MS / 1000} s`)), WORKER_ANSWER_MS);
      const onMessage = (worker: Worker, m: unknown) => {
        if (!isAnswer(m) || m.id !== id || !waiting.delete(worker.id)) return;
        if (m.error !== undefined) end(new Error(`worker ${asked.find((a) => a.worker === worker)?.slot}: ${m.error}`));
        else {
          answers.push(m.metrics!);
          if (waiting.size === 0) end();
        }
      };
      const onExit = (worker: Worker) => {
        if (waiting.delete(worker.id) && waiting.size === 0) end();
      };
      const end = (err?: Error) => {
        clearTimeout(timer);
        this.cluster.off('message', onMessage);
        this.cluster.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      this.cluster.on('message', onMessage);
      this.cluster.on('exit', onExit);
      for (const { worker } of asked) {
        // A worker whose channel closed meanwhile is about to exit: as above.
        worker.send({ type: REQUEST, id } satisfies MetricsRequest, undefined, (err) => err && onExit(worker));
      }
      if (waiting.size === 0) end();
    });
    answers.push(await this.registry.getMetricsAsJSON());
    return client.AggregatorRegistry.aggregate(answers).metrics();
  }
}

/** A /metrics listener over anything that renders the exposition text. */
export async function serveMetrics(host: string, port: number, source: { metrics(): Promise<string>; contentType: string }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`could not collect metrics: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
