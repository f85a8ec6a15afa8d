// What every connection and request meets before the Koa app: the caps that
// keep one process's cost bounded, and discovery and JWKS sent straight from
// memory.
//
// Caps (README "Capacity"): past MAX_CONNECTIONS a new connection is answered
// 503 and closed; past MAX_IN_FLIGHT requests being worked on (a request with
// a body counts once its body is in), or with
// DATABASE_MAX_QUEUE queries already waiting for a pooled connection, a
// request is answered 503 temporarily_unavailable with Retry-After at once.
// Under overload memory then stays flat and a client learns it quickly,
// instead of every request queueing in memory until it times out. Health
// checks are never refused by a cap: an orchestrator that saw /healthz fail
// under load would restart a replica that is only busy.
//
// Discovery and JWKS are what relying parties fetch most (AWS, on every
// AssumeRoleWithWebIdentity it has not cached). They are complete byte
// strings per key set: sent here without Koa, its middleware or a log line
// per request (they are counted in the request metrics). Anything that is not
// exactly `GET`/`HEAD` of the path, without a query, or whose headers the edge
// would refuse, goes on to the app, which answers it as before.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { checkHeaders } from './edge.js';
import { PATHS, type OidcRuntime, type OidcRuntimeHolder } from './provider.js';
import type { HttpDrain } from '../process/shutdown.js';
import { wellKnownCacheControl } from './routes/well-known.js';

export type Cap = 'connections' | 'in_flight' | 'database_queue';

export interface FrontDoorInput {
  config: Pick<Config, 'basePath' | 'maxConnections' | 'maxInFlight' | 'databaseMaxQueue' | 'keyPublishLead'>;
  runtime: OidcRuntimeHolder;
  drain: HttpDrain;
  logger: Logger;
  metrics?: Metrics;
  /** The process's database pool, whose waiting queue is capped. */
  pool: pg.Pool;
}

/** A rendered document: the body and the headers it is always sent with. */
interface Document {
  route: 'discovery' | 'jwks';
  body: Buffer;
  headers: Record<string, string>;
}

/** Seconds between two log lines about the same cap (each line gives the count since the last). */
const OVERLOAD_LOG_INTERVAL_MS = 10_000;

const OVERLOADED_CONNECTION = (() => {
  const body = JSON.stringify({ error: 'temporarily_unavailable', error_description: 'this server has too many open connections; retry shortly' });
  return Buffer.from(
    'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
})();

export class FrontDoor {
  private inFlight = 0;
  private documentsOf: OidcRuntime | undefined;
  private documents = new Map<string, Document>();
  private readonly databasePaths: Set<string>;
  private readonly healthPaths: Set<string>;
  private readonly refusedSinceLog = new Map<Cap, number>();
  private readonly lastLog = new Map<Cap, number>();
  private readonly cacheControl: string;

  constructor(private readonly input: FrontDoorInput) {
    const base = input.config.basePath;
    this.databasePaths = new Set([PATHS.token, PATHS.revocation, PATHS.idToken].map((p) => `${base}${p}`));
    this.healthPaths = new Set(['/healthz', '/readyz', `${base}/healthz`, `${base}/readyz`]);
    this.cacheControl = wellKnownCacheControl(input.config.keyPublishLead);
  }

  /** Requests being worked on now (not counting health checks and the documents). */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Caps connections on `server`, and serves it with `app` behind the caps and the documents. */
  attach(server: http.Server, app: http.RequestListener): void {
    let open = 0;
    server.on('connection', (socket: Socket) => {
      open += 1;
      socket.once('close', () => {
        open -= 1;
      });
      if (open > this.input.config.maxConnections) {
        this.refused('connections');
        // Answered before its request is read: a client sees a 503 for the
        // request it sent, not a reset, and reconnects later.
        socket.end(OVERLOADED_CONNECTION);
        // Read nothing more from it: a request parsed now would be answered on a closed stream.
        socket.pause();
        socket.setTimeout(1000, () => socket.destroy());
      }
    });
    server.on('request', this.input.drain.wrap((req, res) => this.handle(req, res, app)));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, app: http.RequestListener): void {
    const document = req.method === 'GET' || req.method === 'HEAD' ? this.documentFor(req) : undefined;
    if (document) {
      this.send(req, res, document);
      return;
    }
    if (this.healthPaths.has(req.url ?? '')) {
      app(req, res);
      return;
    }
    const { maxInFlight, databaseMaxQueue } = this.input.config;
    if (this.inFlight >= maxInFlight) {
      this.overloaded(res, 'in_flight', `this server is working on ${maxInFlight} requests already; retry shortly`);
      return;
    }
    if (this.input.pool.waitingCount >= databaseMaxQueue && this.databasePaths.has(pathOf(req.url))) {
      this.overloaded(res, 'database_queue', 'this server is waiting for the database on too many requests already; retry shortly');
      return;
    }
    // Counted while the service works on it: a request with a body from when
    // the body is in (the edge reads it, on a deadline), so callers that send
    // headers and then nothing cannot fill MAX_IN_FLIGHT (edge.ts bounds them
    // per address instead).
    let counted = false;
    const count = () => {
      counted = true;
      this.inFlight += 1;
    };
    if (Number(req.headers['content-length'] ?? 0) > 0) req.once('end', count);
    else count();
    res.once('close', () => {
      if (counted) this.inFlight -= 1;
    });
    app(req, res);
  }

  /** The document this request asks for, if it is exactly one of them. */
  private documentFor(req: http.IncomingMessage): Document | undefined {
    const runtime = this.input.runtime.current;
    if (runtime !== this.documentsOf) this.render(runtime);
    const document = this.documents.get(req.url ?? '');
    if (!document) return undefined;
    try {
      checkHeaders(req.headers);
    } catch {
      return undefined; // the app refuses it with the edge's error
    }
    return document;
  }

  /** Once per key set (a rotation swaps the runtime): the bytes and headers of both documents. */
  private render(runtime: OidcRuntime): void {
    const base = this.input.config.basePath;
    const make = (route: Document['route'], json: string): Document => {
      const body = Buffer.from(json);
      return {
        route,
        body,
        headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': this.cacheControl, 'Content-Length': String(body.length) },
      };
    };
    this.documents = new Map([
      [`${base}${PATHS.discovery}`, make('discovery', runtime.discoveryJson)],
      [`${base}${PATHS.jwks}`, make('jwks', runtime.jwksJson)],
    ]);
    this.documentsOf = runtime;
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, document: Document): void {
    const started = this.input.metrics ? process.hrtime.bigint() : 0n;
    res.writeHead(200, document.headers);
    res.end(req.method === 'HEAD' ? undefined : document.body);
    if (this.input.metrics) this.input.metrics.observeRequest(document.route, req.method!, 200, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private overloaded(res: http.ServerResponse, cap: Cap, description: string): void {
    this.refused(cap);
    const body = JSON.stringify({ error: 'temporarily_unavailable', error_description: description });
    res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1', 'Content-Length': String(Buffer.byteLength(body)) });
    res.end(body);
  }

  /** Counted in metrics at once; logged at most every OVERLOAD_LOG_INTERVAL_MS per cap, with the count. */
  private refused(cap: Cap): void {
    this.input.metrics?.overloadRefused(cap);
    this.refusedSinceLog.set(cap, (this.refusedSinceLog.get(cap) ?? 0) + 1);
    const now = Date.now();
    if (now - (this.lastLog.get(cap) ?? 0) >= OVERLOAD_LOG_INTERVAL_MS) {
      const { maxConnections, maxInFlight, databaseMaxQueue } = this.input.config;
      const limit = { connections: maxConnections, in_flight: maxInFlight, database_queue: databaseMaxQueue }[cap];
      this.input.logger.warn({ cap, limit, refused: this.refusedSinceLog.get(cap) }, 'over capacity: answered 503');
      this.refusedSinceLog.set(cap, 0);
      this.lastLog.set(cap, now);
    }
  }
}

function pathOf(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q === -1 ? (url ?? '') : url!.slice(0, q);
}
