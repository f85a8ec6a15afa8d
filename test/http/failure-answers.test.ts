// The answers for what should not happen, each on the real service over real
// HTTP: /readyz when no signing key is loaded, the last-resort 500 when a
// route meets an error nobody expected, and the 408 for a request that never
// finishes arriving.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { onClientError } from '../../src/http/client-errors.js';
import type { Signer } from '../../src/signing-keys/signer.js';
import { startWithToken, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

let t: TestService;
let requestToken: string;
beforeAll(async () => {
  ({ t, token: requestToken } = await startWithToken());
});
afterAll(async () => t.stop());

async function getJson(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}${path}`, { headers });
  return { status: res.status, contentType: res.headers.get('content-type'), body: (await res.json()) as unknown };
}

test('/readyz: 503 "no signing key loaded" while the signer has no key, ready again once it has one', async () => {
  const runtime = t.service.runtime.current;
  // A signer behind the Signer seam that has not loaded its key (a KMS signer
  // still starting), swapped in as a key change swaps the runtime.
  const keyless: Signer = { kid: '', alg: runtime.signer.alg, sign: () => Promise.reject(new Error('no key')) };
  t.service.runtime.current = { ...runtime, signer: keyless };
  try {
    expect(await getJson('/readyz')).toEqual({ status: 503, contentType: 'application/json; charset=utf-8', body: { status: 'unavailable', reason: 'no signing key loaded' } });
    // The process itself is fine: /healthz says so.
    expect((await getJson('/healthz')).status).toBe(200);
  } finally {
    t.service.runtime.current = runtime;
  }
  expect(await getJson('/readyz')).toEqual({ status: 200, contentType: 'application/json; charset=utf-8', body: { status: 'ready', signing_kid: runtime.signer.kid } });
});

test('an error nobody expected is the generic 500 server_error: the cause goes to the log, never to the caller', async () => {
  // The redeem statement meets a table that is not there: an error of the
  // schema, not of the connection (those are 503s), so nothing but the last
  // resort catches it.
  await t.database.query('ALTER TABLE audit_events RENAME TO audit_events_away');
  let answer: Awaited<ReturnType<typeof getJson>>;
  try {
    answer = await getJson('/id-token?api-version=1', { authorization: `Bearer ${requestToken}` });
  } finally {
    await t.database.query('ALTER TABLE audit_events_away RENAME TO audit_events');
  }
  expect(answer).toEqual({
    status: 500,
    contentType: 'application/json; charset=utf-8',
    body: { error: 'server_error', error_description: 'an unexpected error occurred; the operator can find it in the service log' },
  });
  const logged = await waitFor('the error in the log', () => t.logs.find((l) => l.msg === 'unexpected error'));
  expect(logged).toMatchObject({ level: 50, route: 'id-token', err: { message: expect.stringContaining('audit_events') } });
  expect(t.logs.filter((l) => l.msg === 'request' && l.route === 'id-token').at(-1)).toMatchObject({ status: 500, outcome: 'server_error' });
  // Served again as soon as the table is back.
  expect((await getJson('/id-token?api-version=1', { authorization: `Bearer ${requestToken}` })).status).toBe(200);
});

describe('a request that never finishes arriving', () => {
  // Node raises the request timeout (the service sets 30 s) only on its
  // connection check, every 30 s, so the service's own listener would take up
  // to a minute: the same handler runs here on a server with a 500 ms timeout,
  // checked every 100 ms. That the service's listener has that handler and
  // those timeouts is checked below.
  test('gets 408 with the JSON error and its connection closed', async () => {
    const server = http.createServer({ requestTimeout: 500, connectionsCheckingInterval: 100 }, (_req, res) => res.end('unexpected'));
    server.on('clientError', onClientError);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      let raw = '';
      socket.on('data', (c) => (raw += c));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      // Headers begun, never finished.
      socket.write('POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n');
      await closed;
      const body = JSON.stringify({ error: 'invalid_request', error_description: 'the request took too long to arrive' });
      expect(raw).toBe(
        'HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('the service\'s listener answers client errors with that handler, with a 30 s request timeout', () => {
    const { server } = t.service;
    expect(server.listeners('clientError')).toEqual([onClientError]);
    expect({ requestTimeout: server.requestTimeout, headersTimeout: server.headersTimeout, keepAliveTimeout: server.keepAliveTimeout }).toEqual({
      requestTimeout: 30_000,
      headersTimeout: 66_000,
      keepAliveTimeout: 65_000,
    });
  });
});
