// A TLS-terminating reverse proxy on 127.0.0.1, as production runs the service
// (ISSUER=https://..., TRUST_PROXY=true): https in front, plain http to the
// service behind, X-Forwarded-For/-Proto set. It listens before the service
// starts, so the service's ISSUER can name the proxy's port.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCa } from './test-ca.js';

export interface TlsProxy {
  port: number;
  /** https://127.0.0.1:<port> */
  url: string;
  /** Where to forward, e.g. http://127.0.0.1:1234; set once the service runs. */
  target: string | undefined;
  close(): Promise<void>;
}

export async function startTlsProxy(ca: TestCa): Promise<TlsProxy> {
  const proxy: TlsProxy = { port: 0, url: '', target: undefined, close: async () => undefined };
  const agent = new http.Agent({ keepAlive: true });
  const server = https.createServer({ key: ca.serverKeyPem, cert: ca.serverChainPem }, (req, res) => {
    if (!proxy.target) {
      res.writeHead(502).end('no upstream');
      return;
    }
    const upstream = new URL(proxy.target);
    const forward = http.request(
      {
        agent,
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-proto': 'https' },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.writeHead(502).end('upstream error'));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `https://127.0.0.1:${proxy.port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      agent.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}
