// A loopback HTTP proxy that tunnels CONNECT requests for chosen hosts (port
// 443) to a local stand-in, and refuses every other destination: a client
// that cannot be pointed at another server (the Azure CLI: MSAL's authority
// and ARM are fixed public hosts) reaches the stand-in through HTTPS_PROXY,
// and nothing leaves the machine. Refused destinations are recorded, so a
// test can show the client asked for nothing else.
import http from 'node:http';
import net from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:<port>, for HTTPS_PROXY. */
  url: string;
  /** host:port of each tunnel opened, in order. */
  tunnels: string[];
  /** Destinations refused (not in the routed hosts). */
  refused: string[];
  close(): Promise<void>;
}

export async function startConnectProxy(routes: { hosts: string[]; port: number }): Promise<ConnectProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: ConnectProxy = { url: '', tunnels: [], refused: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    // Plain-http proxying: nothing the tests route goes in clear.
    proxy.refused.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const [host, port] = (req.url ?? '').split(':');
    if (!host || port !== '443' || !routes.hosts.includes(host.toLowerCase())) {
      proxy.refused.push(req.url ?? '');
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    proxy.tunnels.push(req.url!);
    const upstream = net.connect(routes.port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
