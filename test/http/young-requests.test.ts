// A token request's objects die young: nothing the service holds in V8's old
// generation may keep a finished request alive until the next full
// collection. Three ways it did, each found with V8's own GC counters
// (docs/performance.md, "Garbage collection"):
// - oidc-provider defines its per-request `ctx.oidc` as a new accessor on
//   every request's context, and V8 allocates accessor pairs in the old
//   generation: every minor collection took the whole request (context,
//   request, response, form) for alive and promoted it, about 7 KB a request.
//   src/http/app.ts hands oidc-provider a view of the context that keeps the
//   accessor off it.
// - store/deadlines.ts wrapped each statement's callback by writing it back
//   into the `...args` array it was called with: every statement's callback,
//   and through it the request waiting on it, survived until a full
//   collection: 3.7 KB an ES256 ID token even one request at a time. It
//   passes the arguments on one by one now.
// - signing-keys/signer.ts handed crypto.sign (RS256, on the thread pool) a
//   callback that resolved the request's promise itself: a finished job kept
//   it, and the request, alive as long. The callback holds a ticket now.
// - process/shutdown.ts held the responses in flight in a Set made at
//   start-up: V8 keeps such a Set's tables in the old generation, and each
//   table it replaces keeps its entries, so requests overlapping one another
//   were promoted whole (2.3 KB an ES256 ID token four at a time). It holds
//   them in array slots now (process/in-flight.ts).
// - signing-keys/signer.ts started RS256 jobs on the thread pool inside the
//   request's async context (oidc-provider runs its routes in an
//   AsyncLocalStorage), and the job kept that context, and the request, alive
//   through minor collections: 8 KB an RS256 exchange. Jobs start outside
//   any request's context now.
//
// Measured from outside on a real `serve`: V8's own GC profiler, preloaded
// (helpers/record-promotion.mjs), counts what the minor collections promoted
// while the requests go through. Few connections keep requests in flight far
// shorter than the time between two minor collections, on a busy machine too
// (each bound holds with three busy loops on two cores).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, scratchDir, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase } from '../helpers/database.js';
import { basic, EXCHANGE, MINT, REQUEST_TOKEN_TYPE } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const RECORD_PROMOTION = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/record-promotion.mjs');

let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
const serves: Measured[] = [];

interface Measured {
  s: ServeProcess;
  env: Record<string, string>;
  report: string;
}

/** A `serve` of its own, signing with `alg`, with the GC reporter preloaded. */
async function startMeasuredServe(alg: 'RS256' | 'ES256', databaseUrl: string): Promise<Measured> {
  const report = path.join(scratchDir('jo-promotion-'), 'report.json');
  const env = {
    DATABASE_URL: databaseUrl,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ISSUER: 'http://127.0.0.1',
    ALLOW_INSECURE_ISSUER: 'true',
    SIGNING_ALG: alg,
    DATABASE_POOL_SIZE: '2',
    // Refusals here are on purpose, all from one address.
    FAILED_ATTEMPTS_PER_MINUTE: '0',
    NODE_OPTIONS: `--import=${RECORD_PROMOTION}`,
    PROMOTION_REPORT: report,
  };
  const s = await startServe(env);
  const measured = { s, env, report };
  serves.push(measured);
  expect(s.url).toBeDefined();
  return measured;
}

/** Stops a serve of this file, if it still runs. */
async function stop(s: ServeProcess): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

beforeAll(async () => {
  database = await createEmptyDatabase();
});
afterAll(async () => {
  for (const { s } of serves) await stop(s);
  await database.drop();
});

interface Answer {
  status: number;
  body: string;
}

function send(agent: http.Agent, url: URL, options: { method: 'GET' | 'POST'; form?: string; headers?: Record<string, string> }): Promise<Answer> {
  const headers = { ...options.headers, ...(options.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(options.form)) }) };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end(options.form);
  });
}

/** Runs `count` requests on `connections` connections; returns how many got each status and error. */
async function load(connections: number, count: number, request: (i: number) => Promise<Answer>, outcome: (a: Answer) => string): Promise<Record<string, number>> {
  let next = 0;
  const outcomes = new Map<string, number>();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < count) {
      const key = outcome(await request(next++));
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
  }));
  return Object.fromEntries(outcomes);
}

/** Bytes the minor collections promoted per request while `run` sent `requests` of them. */
async function promotedPerRequest<T>({ s, report }: Measured, requests: number, run: () => Promise<T>): Promise<{ perRequest: number; minorCollections: number; result: T }> {
  rmSync(report, { force: true });
  rmSync(`${report}.started`, { force: true });
  s.child.kill('SIGUSR2');
  await waitFor('the GC profiler to start', () => existsSync(`${report}.started`));
  const result = await run();
  s.child.kill('SIGUSR2');
  await waitFor('the GC report', () => existsSync(report));
  const { minorCollections, promotedBytes } = JSON.parse(readFileSync(report, 'utf8')) as { minorCollections: number; promotedBytes: number };
  return { perRequest: Math.round(promotedBytes / requests), minorCollections, result };
}

const errorOf = (a: Answer) => `${a.status} ${(JSON.parse(a.body) as { error?: string }).error ?? 'ok'}`;

test('token requests oidc-provider refuses promote almost nothing to the old generation', async () => {
  const REQUESTS = 4000;
  const m = await startMeasuredServe('RS256', database.url);
  const { s } = m;
  const url = new URL(`${s.url}/token`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const unsupported = 'grant_type=urn%3Aexample%3Aunsupported&client_id=jenkins-build';
  const unknownToken = (i: number) =>
    new URLSearchParams({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: `not-a-request-token-${i}`, subject_token_type: REQUEST_TOKEN_TYPE }).toString();
  const request = (i: number) => send(agent, url, { method: 'POST', form: i % 2 === 0 ? unsupported : unknownToken(i) });
  // The answers are what they always were, through the view as before it.
  const first = await request(0);
  expect({ status: first.status, body: JSON.parse(first.body) }).toEqual({ status: 400, body: { error: 'unsupported_grant_type', error_description: 'unsupported grant_type requested' } });
  const second = await request(1);
  expect({ status: second.status, body: JSON.parse(second.body) }).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'the build request token is not known to this service' } });
  // Warm: the code paths compiled and the connections open before the count.
  await load(4, 1000, request, errorOf);

  const measured = await promotedPerRequest(m, REQUESTS, () => load(4, REQUESTS, request, errorOf));
  agent.destroy();
  expect(measured.result).toEqual({ '400 unsupported_grant_type': REQUESTS / 2, '400 invalid_grant': REQUESTS / 2 });
  // Enough allocation for minor collections to have run: the measure measured something.
  expect(measured.minorCollections).toBeGreaterThanOrEqual(5);
  // Measured here: 7,056 to 7,182 bytes with the accessor on the context, 313 to 324 without.
  expect(measured.perRequest).toBeLessThan(2048);
}, 180_000);

interface TokenCase {
  alg: 'RS256' | 'ES256';
  /** GET /id-token, or the token exchange at /token. */
  path: 'id-token' | 'exchange';
  connections: number;
  /** Bytes promoted per token above which the case fails (what was measured is above TOKEN_CASES). */
  bound: number;
}

// Bytes promoted per token, measured here:
// - one at a time: ID tokens RS256 322 to 376 and ES256 100 to 110 (also with
//   three busy loops on the two cores); before the three fixes of 2026-12-05
//   5,465 to 5,727 and 3,657.
// - ES256 exchanges 16 at a time: 3,485 to 3,504 while the drain held the
//   responses in flight in a Set (process/in-flight.ts), 364 to 378 since.
//   The exchange, not GET /id-token: this client's own requests are too slow
//   for GET /id-token's to overlap much in the service (wrk's showed it:
//   2,083 to 2,335 per ID token four at a time, 146 since).
// - RS256 exchanges 4 at a time: 8,500 to 8,515 while the thread pool's
//   signing job carried oidc-provider's async context (signing-keys/signer.ts),
//   644 to 668 since.
const TOKEN_CASES: TokenCase[] = [
  { alg: 'RS256', path: 'id-token', connections: 1, bound: 1536 },
  { alg: 'ES256', path: 'id-token', connections: 1, bound: 1536 },
  { alg: 'ES256', path: 'exchange', connections: 16, bound: 1536 },
  { alg: 'RS256', path: 'exchange', connections: 4, bound: 2560 },
];

describe.each(TOKEN_CASES)('$alg, $path, $connections at a time', ({ alg, path: tokenPath, connections, bound }) => {
  test('tokens issued promote almost nothing to the old generation', async () => {
    const REQUESTS = 3000;
    // A database of its own: each serve makes its own first key.
    const own = await createEmptyDatabase();
    try {
      const m = await startMeasuredServe(alg, own.url);
      const { s, env } = m;
      const added = await runCli(['clients', 'add', 'ci-main', '--jenkins-url', 'https://jenkins.example.com', '--json'], env);
      expect(added.code).toBe(0);
      const auth = basic('ci-main', (JSON.parse(added.stdout) as { client_secret: string }).client_secret);
      const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
      const tokens: string[] = [];
      for (let n = 1; n <= 20; n += 1) {
        const form = new URLSearchParams({ grant_type: MINT, job: 'app', build_number: String(n), build_url: `https://jenkins.example.com/job/app/${n}/` }).toString();
        const minted = await send(agent, new URL(`${s.url}/token`), { method: 'POST', form, headers: { authorization: auth } });
        expect(minted.status).toBe(200);
        tokens.push((JSON.parse(minted.body) as { access_token: string }).access_token);
      }
      const idTokenUrl = new URL(`${s.url}/id-token?audience=sts.amazonaws.com`);
      const tokenUrl = new URL(`${s.url}/token`);
      const exchange = (token: string) =>
        new URLSearchParams({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: token, subject_token_type: REQUEST_TOKEN_TYPE, audience: 'sts.amazonaws.com' }).toString();
      const request = (i: number) => tokenPath === 'id-token'
        ? send(agent, idTokenUrl, { method: 'GET', headers: { authorization: `Bearer ${tokens[i % tokens.length]}` } })
        : send(agent, tokenUrl, { method: 'POST', form: exchange(tokens[i % tokens.length]!) });
      const first = await request(0);
      expect(first.status).toBe(200);
      const body = JSON.parse(first.body) as { value?: string; access_token?: string };
      const [header] = (tokenPath === 'id-token' ? body.value! : body.access_token!).split('.');
      expect((JSON.parse(Buffer.from(header!, 'base64url').toString()) as { alg: string }).alg).toBe(alg);
      await load(connections, 500, request, errorOf);

      const measured = await promotedPerRequest(m, REQUESTS, () => load(connections, REQUESTS, request, errorOf));
      agent.destroy();
      expect(measured.result).toEqual({ '200 ok': REQUESTS });
      expect(measured.minorCollections).toBeGreaterThanOrEqual(5);
      // Printed for the notes: the figure beside its bound.
      process.stdout.write(`young requests: ${alg} ${tokenPath}, ${connections} at a time: ${measured.perRequest} bytes promoted per token (bound ${bound})\n`);
      expect(measured.perRequest).toBeLessThan(bound);
    } finally {
      // Its database goes now: its serve first.
      for (const { s, env } of serves) if (env.DATABASE_URL === own.url) await stop(s);
      await own.drop();
    }
  }, 180_000);
});
