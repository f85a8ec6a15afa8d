// `serve` never sends a Prisma query (src/store/sql.ts says why: Prisma's
// query compiler costs a process about 40 MB for life). A real `serve`, with
// a reporter of the compiler's loading preloaded (helpers/record-prisma.mjs),
// goes through every statement it has: start-up (migrations, the first key),
// a mint, an exchange, GET /id-token, revocation by id and by token, refused
// requests (the audit windows, flushed at shutdown), a key step taken by its
// own schedule, the key reload that follows, and a metrics scrape. The CLI,
// which may use Prisma, runs beside it with the same reporter: the control
// that shows the reporter sees a query when there is one.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase } from '../helpers/database.js';
import { basic, decodeJwt, EXCHANGE, MINT, REQUEST_TOKEN_TYPE } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const RECORD_PRISMA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/record-prisma.mjs');
const LOADED = 'prisma query compiler loaded: ';
let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
let s: ServeProcess | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  database = await createEmptyDatabase();
  env = {
    DATABASE_URL: database.url,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ISSUER: 'http://127.0.0.1',
    ALLOW_INSECURE_ISSUER: 'true',
    DATABASE_POOL_SIZE: '2',
    // The schedule looks every second; a key rotated by hand signs as soon as it looks.
    KEY_CHECK_INTERVAL: '1',
    KEY_PUBLISH_LEAD: '0',
    METRICS_PORT: '0',
    NODE_OPTIONS: `--import=${RECORD_PRISMA}`,
  };
});
afterAll(async () => {
  if (s && s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
  await database.drop();
});

const form = (url: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });

test('serve goes through every statement it has without loading Prisma\'s query compiler; the CLI beside it does load it', async () => {
  s = await startServe(env);
  expect(s.url).toBeDefined();
  const added = await runCli(['clients', 'add', 'ci-main', '--jenkins-url', 'https://jenkins.example.com', '--json'], env);
  expect(added.code).toBe(0);
  // The control: a CLI command's Prisma query is seen.
  expect(added.stderr).toContain(LOADED);
  const secret = (JSON.parse(added.stdout) as { client_secret: string }).client_secret;
  const auth = { authorization: basic('ci-main', secret) };
  const build = { job: 'app', build_number: '7', build_url: 'https://jenkins.example.com/job/app/7/' };

  const mintOne = async () => {
    const res = await form(`${s!.url}/token`, { grant_type: MINT, ...build }, auth);
    expect(res.status).toBe(200);
    return (await res.json()) as { access_token: string; request_token_id: string };
  };
  const minted = await mintOne();
  const exchanged = await form(`${s.url}/token`, { grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: minted.access_token, subject_token_type: REQUEST_TOKEN_TYPE });
  expect(exchanged.status).toBe(200);
  const firstKid = decodeJwt(((await exchanged.json()) as { access_token: string }).access_token).header.kid;
  const idToken = await fetch(`${s.url}/id-token?audience=sts.amazonaws.com`, { headers: { authorization: `Bearer ${minted.access_token}` } });
  expect(idToken.status).toBe(200);
  // Refusals: a wrong secret and a junk bearer token, each an audit window.
  expect((await form(`${s.url}/token`, { grant_type: MINT, ...build }, { authorization: basic('ci-main', 'wrong') })).status).toBe(401);
  expect((await fetch(`${s.url}/id-token?audience=sts.amazonaws.com`, { headers: { authorization: 'Bearer jort_nothing' } })).status).toBe(401);
  // Revocation by id (the controller at a block's end) and by the token itself.
  expect((await form(`${s.url}/token/revocation`, { token: minted.request_token_id, job: build.job, build_number: build.build_number }, auth)).status).toBe(200);
  const second = await mintOne();
  expect((await form(`${s.url}/token/revocation`, { token: second.access_token }, auth)).status).toBe(200);

  // A key rotated by hand, published with no lead: serve's own schedule makes it sign, then every replica reloads.
  const rotated = await runCli(['keys', 'rotate', '--json'], env);
  expect(rotated.code).toBe(0);
  const newKid = (JSON.parse(rotated.stdout) as { kid: string }[])[0]!.kid;
  await waitFor('the schedule in serve to promote the rotated key', async () => s!.lines().some((l) => l.msg === 'signing key step' && l.kid === newKid && l.to === 'active'));
  // The step is logged before the process swaps its signer in: an exchange between the two signs with the old key.
  await waitFor('serve to sign with the rotated key', async () => s!.lines().some((l) => l.msg === 'signing keys swapped' && l.kid === newKid));
  const third = await mintOne();
  const afterRotation = await form(`${s.url}/token`, { grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: third.access_token, subject_token_type: REQUEST_TOKEN_TYPE });
  const kid = decodeJwt(((await afterRotation.json()) as { access_token: string }).access_token).header.kid;
  expect([kid, kid === firstKid]).toEqual([newKid, false]);

  const metrics = await (await fetch(`${s.metricsUrl}`)).text();
  expect(metrics).toMatch(/^jenkins_oidc_signing_keys\{status="active"\} 1$/m);

  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
  // What those statements wrote: both revocations, with their audit rows, and the refusals' windows.
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const tokens = await client.query('SELECT id, revoked_by FROM request_tokens ORDER BY created_at');
    expect(tokens.rows).toEqual([
      { id: minted.request_token_id, revoked_by: 'ci-main' },
      { id: second.request_token_id, revoked_by: 'ci-main' },
      { id: third.request_token_id, revoked_by: null },
    ]);
    const events = await client.query("SELECT event, count(*)::int AS n FROM audit_events WHERE event LIKE '%revoked' OR event LIKE '%refused' GROUP BY event ORDER BY event");
    expect(events.rows).toEqual([
      { event: 'id_token.refused', n: 1 },
      { event: 'request_token.revoked', n: 2 },
      { event: 'token.refused', n: 1 },
    ]);
  } finally {
    await client.end();
  }
  expect(s.output().split('\n').filter((l) => l.startsWith(LOADED))).toEqual([]);
});
