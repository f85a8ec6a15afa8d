// A TCP relay between a service and its PostgreSQL that fails the way a real
// network does during a failover: it never closes anything (no FIN, no RST),
// it just stops forwarding. `blackhole('existing')` silences the connections
// open now and lets new ones through (the old primary's host died, a new one
// answers at the same address); `blackhole('new')` accepts new connections
// and forwards nothing on them (SYNs dropped on the way, as seen from the
// client once the kernel completed the handshake); `blackhole('both')` does
// both. `pointAt` repoints new connections (the DNS name or the virtual IP
// now leads to the promoted standby); silenced connections stay silent
// forever, as they do after a real failover. `delay(ms)` holds every chunk
// that long each way (a slow network path, not a dead one).
//
// Unlike tcp-proxy.ts (which destroys open connections), nothing here is
// ever noticed by the client's TCP stack: only a deadline of its own can end
// a wait.
import net from 'node:net';

export type Silence = 'existing' | 'new' | 'both';

export interface Relay {
  port: number;
  /** Connections accepted since start (the service's view: each is one of its database connections). */
  readonly accepted: number;
  /** Connections forwarded now. */
  readonly forwarding: number;
  blackhole(which: Silence): void;
  /** Forward new connections again (silenced ones stay silent). */
  pass(): void;
  /** Every chunk, both ways, forwarded this much later (0: at once). */
  delay(ms: number): void;
  /** New connections go to this port on 127.0.0.1 (or `host`). */
  pointAt(port: number, host?: string): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  silenced: boolean;
}

export async function startRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<Relay> {
  let target = { port: targetPort, host: targetHost };
  let silenceNew = false;
  let accepted = 0;
  let delayMs = 0;
  const pairs = new Set<Pair>();

  // Chunks go through here rather than pipe(): a silenced pair drops them,
  // and a delay holds them (timers of one delay fire in order).
  const forward = (pair: Pair, to: net.Socket, chunk: Buffer) => {
    const send = () => {
      if (!pair.silenced && !to.destroyed) to.write(chunk);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };

  // Whatever arrives from now on vanishes; the sockets stay open.
  const silence = (pair: Pair) => {
    pair.silenced = true;
  };

  const server = net.createServer((client) => {
    accepted += 1;
    const pair: Pair = { client, upstream: undefined, silenced: false };
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pairs.delete(pair);
      // A client that gave up (destroyed its end) frees the upstream, as the
      // server would once its own keepalive noticed; the relay itself never
      // closes a silenced client.
      pair.upstream?.destroy();
    });
    if (silenceNew) {
      silence(pair);
      client.on('data', () => undefined);
      return;
    }
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      if (!pair.silenced) client.destroy();
    });
    client.on('data', (chunk: Buffer) => forward(pair, upstream, chunk));
    upstream.on('data', (chunk: Buffer) => forward(pair, client, chunk));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });

  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get forwarding() {
      return [...pairs].filter((p) => !p.silenced).length;
    },
    blackhole(which) {
      if (which === 'existing' || which === 'both') for (const p of pairs) silence(p);
      if (which === 'new' || which === 'both') silenceNew = true;
    },
    pass() {
      silenceNew = false;
    },
    delay(ms) {
      delayMs = ms;
    },
    pointAt(port, host = '127.0.0.1') {
      target = { port, host };
    },
    close: async () => {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
