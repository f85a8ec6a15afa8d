// Prometheus metrics, served on a listener of their own (METRICS_PORT, off by
// default) so the public issuer never exposes them. One Metrics per service
// (tests run several services in one process; each has its own registry).
//
// Label values are bounded: routes are our own names, statuses numbers,
// reasons the OAuth error codes this service uses, clients the registered
// controller names (only after they authenticated). Job names, audiences and
// anything else a caller chooses never become a label.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import client from 'prom-client';
import type { Db } from '../store/prisma.js';

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
  private readonly overload: client.Counter<'cap'>;

  constructor(info: BuildInfo) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'jenkins_oidc_' });
    new client.Gauge({
      name: 'jenkins_oidc_build_info',
      help: 'Always 1; the labels say which version runs on which Node with which signing algorithm.',
      labelNames: ['version', 'node', 'alg'],
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
            db.signingKey.findMany({ where: { status: { not: 'removed' } }, select: { status: true, activatedAt: true, activateAfter: true } }),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
          ]);
          cached = { at: Date.now(), rows, up: true };
        } catch {
          cached = { ...cached, at: Date.now(), up: false };
        }
      }
      return cached.rows;
    };
    new client.Gauge({
      name: 'jenkins_oidc_database_up',
      help: '1 when the database answered the last scrape\'s query within 2 s, else 0.',
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
      registers,
      async collect() {
        const rows = await keys();
        for (const status of ['pending', 'active', 'retired']) this.set({ status }, rows.filter((k) => k.status === status).length);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_signing_key_age_seconds',
      help: 'How long the active key has been signing.',
      registers,
      async collect() {
        const active = (await keys()).find((k) => k.status === 'active');
        this.set(active?.activatedAt ? (Date.now() - active.activatedAt.getTime()) / 1000 : 0);
      },
    });
    new client.Gauge({
      name: 'jenkins_oidc_signing_key_next_step_seconds',
      help: 'Seconds until the schedule next moves a key: a pending key starts signing, or the active key gets a successor (negative: overdue).',
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
  async serve(host: string, port: number): Promise<http.Server> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
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

  static portOf(server: http.Server): number {
    return (server.address() as AddressInfo).port;
  }
}
