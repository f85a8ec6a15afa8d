// The agent getting its ID token from the token service (GET /id-token with
// the bearer request token) through trouble: a 5xx, a 429, a connection reset,
// a refused connection are retried with backoff; a redirect is never followed
// (the bearer token must not go wherever a Location points). The real service
// answers behind a proxy of the test's own, which fails the requests the test
// says, in order, and passes the rest on.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runAgent } from '../helpers/agent.js';
import { decodeJwt, startWithToken, type TestService } from '../helpers/service.js';

type Fault = { status: number; headers?: Record<string, string> } | 'reset';

interface FaultProxy {
  url: string;
  /** What each request carried, in order. */
  seen: { path: string; authorization: string | undefined }[];
  /** The next requests' fates, in order; once empty, requests go to the service. */
  faults: Fault[];
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startFaultProxy(target: string): Promise<FaultProxy> {
  const proxy: FaultProxy = { url: '', seen: [], faults: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    proxy.seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    const fault = proxy.faults.shift();
    if (fault === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault) {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers }).end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'injected' }));
      return;
    }
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  proxy.url = await listen(server);
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}

let t: TestService;
let proxy: FaultProxy;
let requestToken: string;
beforeAll(async () => {
  ({ t, token: requestToken } = await startWithToken());
  proxy = await startFaultProxy(t.url);
});
afterAll(async () => {
  await proxy.close();
  await t.stop();
});
beforeEach(() => {
  proxy.seen.length = 0;
  proxy.faults.length = 0;
});

const buildEnv = (url = `${proxy.url}/id-token?api-version=1`) => ({ JENKINS_ID_TOKEN_REQUEST_URL: url, JENKINS_ID_TOKEN_REQUEST_TOKEN: requestToken });
/** Backoff delays are random: the notes are compared with the delay left out. */
const notes = (stderr: string) => stderr.replace(/retrying in [\d.]+ s/g, 'retrying in N s');

test('a 503, a 429 and a reset connection are retried with backoff, each time with the bearer token, until the service answers', async () => {
  proxy.faults.push({ status: 503, headers: { 'retry-after': '3' } }, { status: 429 }, 'reset');
  const res = await runAgent(['token', '--audience', 'sts.amazonaws.com', '--retry-base-delay-ms', '1'], buildEnv());
  expect({ code: res.code, stderr: notes(res.stderr) }).toEqual({
    code: 0,
    stderr: [
      'jenkins-oidc-agent: HTTP 503; retrying in N s (attempt 2 of 5)',
      'jenkins-oidc-agent: HTTP 429; retrying in N s (attempt 3 of 5)',
      'jenkins-oidc-agent: ECONNRESET; retrying in N s (attempt 4 of 5)',
      '',
    ].join('\n'),
  });
  // The token printed is the service's, for this build.
  const { payload } = decodeJwt(res.stdout.trim());
  expect(payload).toMatchObject({ aud: 'sts.amazonaws.com', jenkins_instance: 'ci-main', job: 'folder/app' });
  expect(proxy.seen).toEqual(Array(4).fill({ path: '/id-token?api-version=1&audience=sts.amazonaws.com', authorization: `Bearer ${requestToken}` }));
});

test('retries stop at --retry-max-attempts, exit 3, naming the last failure', async () => {
  proxy.faults.push({ status: 502 }, { status: 503 }, { status: 500 }, { status: 503 });
  const res = await runAgent(['token', '--retry-max-attempts', '3', '--retry-base-delay-ms', '1'], buildEnv());
  expect({ code: res.code, stdout: res.stdout, stderr: notes(res.stderr) }).toEqual({
    code: 3,
    stdout: '',
    stderr: [
      'jenkins-oidc-agent: HTTP 502; retrying in N s (attempt 2 of 3)',
      'jenkins-oidc-agent: HTTP 503; retrying in N s (attempt 3 of 3)',
      `jenkins-oidc-agent: could not get an ID token from ${proxy.url} after 3 attempt(s): HTTP 500`,
      '',
    ].join('\n'),
  });
  expect(proxy.seen).toHaveLength(3);
});

test('a refused connection is retried too', async () => {
  // A privileged port nothing of this run binds, and not one of the ports
  // fetch refuses to use ("bad port": 9, 25 and others).
  const closed = 'http://127.0.0.1:1021';
  const res = await runAgent(['token', '--retry-max-attempts', '2', '--retry-base-delay-ms', '1'], buildEnv(`${closed}/id-token?api-version=1`));
  expect({ code: res.code, stdout: res.stdout, stderr: notes(res.stderr) }).toEqual({
    code: 3,
    stdout: '',
    stderr: `jenkins-oidc-agent: ECONNREFUSED; retrying in N s (attempt 2 of 2)\njenkins-oidc-agent: could not get an ID token from ${closed} after 2 attempt(s): ECONNREFUSED\n`,
  });
});

describe.each([301, 302, 303, 307, 308])('a %i redirect', (status) => {
  test('is never followed: the bearer token goes nowhere else', async () => {
    const elsewhere: { path: string; authorization: string | undefined }[] = [];
    const thief = http.createServer((req, res) => {
      elsewhere.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: 'stolen' }));
    });
    const thiefUrl = await listen(thief);
    try {
      proxy.faults.push({ status, headers: { location: `${thiefUrl}/id-token?api-version=1` } }, { status, headers: { location: `${thiefUrl}/id-token?api-version=1` } });
      const res = await runAgent(['token', '--retry-max-attempts', '2', '--retry-base-delay-ms', '1'], buildEnv());
      expect({ code: res.code, stdout: res.stdout, stderr: notes(res.stderr) }).toEqual({
        code: 3,
        stdout: '',
        stderr: `jenkins-oidc-agent: unexpected redirect; retrying in N s (attempt 2 of 2)\njenkins-oidc-agent: could not get an ID token from ${proxy.url} after 2 attempt(s): unexpected redirect\n`,
      });
      expect(elsewhere).toEqual([]);
      expect(proxy.seen).toHaveLength(2);
    } finally {
      await new Promise((resolve) => thief.close(resolve));
    }
  });
});
