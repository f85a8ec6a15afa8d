// Graceful shutdown of the HTTP side, in the order a load balancer needs:
//
// 1. stop():  /readyz answers 503 "shutting down" at once, and every response
//             from then on (those already being prepared included) carries
//             `Connection: close`, so keep-alive clients reconnect — to another
//             replica once the balancer has noticed. Everything else is still
//             served: the balancer needs SHUTDOWN_GRACE to see the 503.
// 2. close(): the listener closes (new connections are refused by the kernel);
//             requests in flight finish, each on a connection that closes after
//             its response; connections with no request on them (idle
//             keep-alive ones) are closed every SETTLE_MS. Past SHUTDOWN_TIMEOUT the connections
//             still open are destroyed, so a stuck client cannot hold the process.
//
// Resets this cannot rule out: a connection the kernel completed but Node had
// not yet accepted when the listener closed (the kernel resets it: no request
// of it was read), and a client that writes on a keep-alive connection idle
// for the whole grace at the instant it is closed. A balancer that stopped
// sending during the grace does neither.
import type http from 'node:http';
import net, { type Socket } from 'node:net';
import type { Lifecycle } from '../http/deps.js';
import { InFlight } from './in-flight.js';

/** How long connections accepted before the listener closed get to present their request before idle ones are closed. */
const SETTLE_MS = 250;

export type { Lifecycle };

export interface DrainResult {
  /** Requests being served when the listener closed. */
  inFlight: number;
  /** Connections destroyed at the deadline (their requests got no answer). */
  forced: number;
}

export class HttpDrain implements Lifecycle {
  private stopped = false;
  // Not Sets: a Set made here at start-up holds its entries in the old
  // generation, and kept every finished request alive through minor
  // collections (in-flight.ts).
  private readonly responses = new InFlight<http.ServerResponse>();
  private readonly sockets = new InFlight<Socket>();

  constructor(private readonly server: http.Server) {
    server.on('connection', (socket: Socket) => {
      const held = this.sockets.add(socket);
      socket.once('close', () => this.sockets.take(held));
    });
  }

  get stopping(): boolean {
    return this.stopped;
  }

  /** Wraps the app's request listener: tracks requests in flight and says Connection: close once stopping. */
  wrap(listener: http.RequestListener): http.RequestListener {
    return (req, res) => {
      const held = this.responses.add(res);
      res.once('close', () => this.responses.take(held));
      if (this.stopped) res.setHeader('Connection', 'close');
      listener(req, res);
    };
  }

  /** Step 1: not ready any more; no connection is kept alive after its current response. */
  stop(): void {
    this.stopped = true;
    for (const res of this.responses) {
      if (!res.headersSent) res.setHeader('Connection', 'close');
    }
  }

  /** Step 2: stop listening, let requests in flight finish until `timeoutMs`, then close what is left. */
  async close(timeoutMs: number): Promise<DrainResult> {
    this.stop();
    // Right after a poll phase, when libuv has just accepted every connection
    // the kernel had queued: those still queued when the socket closes are
    // reset by the kernel, and this keeps that queue as short as it gets.
    await new Promise((resolve) => setImmediate(resolve));
    // Only the listener: http.Server.close() would also destroy every idle
    // connection at once, among them connections accepted a moment ago whose
    // first request is still unread in the socket buffer — their clients would
    // see a reset. Those get SETTLE_MS to be read, answered and closed. (It
    // would also stop the server's request-timeout checks: an unref'd timer,
    // harmless to leave running.)
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(this.server, () => resolve()));
    const inFlight = this.responses.size;
    // Then, every SETTLE_MS, close the connections with no request on them:
    // idle keep-alive ones, and any that turn idle later (a response that had
    // already started, keep-alive, when the shutdown began).
    const sweep = setInterval(() => this.server.closeIdleConnections(), Math.min(SETTLE_MS, timeoutMs));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), timeoutMs);
    });
    const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline]);
    clearInterval(sweep);
    clearTimeout(timer);
    let forced = 0;
    if (outcome === 'deadline') {
      forced = this.sockets.size;
      this.server.closeAllConnections();
      // Sockets with a request still being received are not "HTTP connections"
      // to closeAllConnections: destroy whatever is left.
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    return { inFlight, forced };
  }
}
