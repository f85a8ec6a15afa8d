// A TCP proxy between a service and its PostgreSQL, to make the database
// unreachable in ways a stopped server cannot: `blackhole` drops every open
// connection and accepts new ones without ever answering, as a vanished host
// behind a firewall that drops packets does. Only the connect timeout can end
// a wait on such a connection.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  mode: 'pass' | 'blackhole';
  setMode(mode: 'pass' | 'blackhole'): void;
  close(): Promise<void>;
}

/** Listens on listenHost:listenPort (port 0: any), forwards to 127.0.0.1:targetPort. */
export async function startTcpProxy(targetPort: number, listenPort = 0, listenHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
  };
  const proxy: TcpProxy = {
    port: 0,
    mode: 'pass',
    setMode(mode) {
      proxy.mode = mode;
      if (mode === 'blackhole') for (const s of open) s.destroy();
    },
    close: async () => undefined,
  };
  const server = net.createServer((client) => {
    track(client);
    if (proxy.mode === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, listenHost, resolve);
  });
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
