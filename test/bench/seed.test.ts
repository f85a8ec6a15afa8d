// The bench's seed (bench/seed.mjs) on a real database, at 1,000 rows: the
// counts and shapes it promises, indexes as the migrations made them, and
// nothing due for pruning under the default retentions (so a service running
// during the bench never deletes what was seeded).
import { seedDatabase } from '../../bench/seed.mjs';
import { AUDIT_EVENT_NAMES } from '../../src/audit/query.js';
import { registerClient } from '../../src/clients/commands.js';
import { pruneExpiredData } from '../../src/retention/prune.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const DAY = 86400;
let d: TestDatabase;
const now = new Date();
const log: string[] = [];
let result: Awaited<ReturnType<typeof seedDatabase>>;
let indexesBefore: unknown[];

const indexes = () => d.query(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('audit_events', 'request_tokens') ORDER BY indexname`);

beforeAll(async () => {
  d = await createTestDatabase();
  await registerClient(d.db, { name: 'bench', jenkinsUrl: 'https://jenkins.example.com', audiences: ['sts.amazonaws.com'] }, 86400);
  indexesBefore = await indexes();
  result = await seedDatabase(d.url, 1000, { log: (m: string) => log.push(m), now });
});
afterAll(async () => d.drop());

test('1,000 audit rows and 100 request tokens, said so, with progress and the time taken', () => {
  expect(result).toEqual({ auditRows: 1000, requestTokens: 100, seconds: expect.any(Number), databaseBytes: expect.any(Number) });
  expect(log.find((l) => l.startsWith('seed: audit_events '))).toMatch(/^seed: audit_events 1,000 \/ 1,000 \([\d,]+ rows\/s\)$/);
  expect(log.find((l) => l.startsWith('seed: request_tokens '))).toMatch(/^seed: request_tokens 100 \/ 100 \([\d,]+ rows\/s\)$/);
  expect(log.at(-1)).toMatch(/^seed: done in \d+ s; database \d+\.\d\d GiB$/);
});

test('every event kind, in the mix the seed describes', async () => {
  const rows = await d.query<{ event: string; n: number }>('SELECT event, count(*)::int AS n FROM audit_events GROUP BY event ORDER BY event');
  expect(Object.fromEntries(rows.map((r) => [r.event, r.n]))).toEqual({
    'id_token.issued': 550,
    'id_token.refused': 50,
    'request_token.issued': 150,
    'request_token.refused': 25,
    'request_token.revoked': 150,
    'revocation.refused': 24,
    'token.refused': 50,
    'client.secret_rotated': 1,
  });
  // All but the rows of a database failure (a statement lost mid-flight): a handful per incident, no volume to seed.
  expect(rows.map((r) => r.event).sort()).toEqual(AUDIT_EVENT_NAMES.filter((e) => !e.endsWith('.commit_unknown')).sort());
});

test('audit rows span the last 399 days, ids follow time, more of them recently', async () => {
  const [span] = await d.query<{ oldest: Date; newest: Date; out_of_order: number; last_month: number; first_month: number }>(`
    SELECT min(at) AS oldest, max(at) AS newest,
           (SELECT count(*)::int FROM (SELECT at < lag(at) OVER (ORDER BY id) AS back FROM audit_events) s WHERE back) AS out_of_order,
           count(*) FILTER (WHERE at >= $1::timestamptz - interval '30 days')::int AS last_month,
           count(*) FILTER (WHERE at < $1::timestamptz - interval '369 days')::int AS first_month
    FROM audit_events`, [now]);
  expect(span!.oldest.getTime()).toBeGreaterThanOrEqual(now.getTime() - 399 * DAY * 1000);
  expect(span!.newest.getTime()).toBeLessThanOrEqual(now.getTime());
  expect(span!.out_of_order).toBe(0);
  // Density grows linearly to three times the oldest day's: the last 30 days hold about 2.8 times the first 30.
  expect(span!.last_month / span!.first_month).toBeGreaterThan(2.4);
});

test('rows have the columns and detail the service writes for their kind', async () => {
  const one = async (event: string) => (await d.query(`SELECT * FROM audit_events WHERE event = $1 ORDER BY id DESC LIMIT 1`, [event]))[0]!;
  const claimKeys = ['build_number', 'build_url', 'commit', 'jenkins_instance', 'jenkins_url', 'job', 'ref', 'ref_type', 'replayed', 'sub'];

  const issued = await one('id_token.issued');
  expect(issued).toMatchObject({ audience: 'sts.amazonaws.com', jti: expect.stringMatching(/^[0-9a-f-]{36}$/), kid: expect.stringMatching(/^[\w-]{16}$/), remote_addr: expect.stringMatching(/^10\.20\./) });
  expect(issued.detail).toEqual({ sub: `jenkins_instance:${issued.client_name}:job:${issued.job}` });

  const minted = await one('request_token.issued');
  expect(Object.keys(minted.detail as object).sort()).toEqual(['claims', 'client_secret', 'expires_at']);
  expect((minted.detail as { client_secret: string }).client_secret).toBe('current');
  const claims = (minted.detail as { claims: Record<string, unknown> }).claims;
  expect(Object.keys(claims).sort()).toEqual(claimKeys);
  expect(claims).toMatchObject({ jenkins_instance: minted.client_name, job: minted.job, build_number: minted.build_number, sub: `jenkins_instance:${minted.client_name}:job:${minted.job}` });
  expect((minted.detail as { expires_at: string }).expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  expect((await one('request_token.revoked')).detail).toEqual({ revoked_by: expect.any(String) });
  expect((await one('id_token.refused')).detail).toEqual({ error: 'invalid_grant', error_description: 'the build request token has expired' });
  const window = await one('token.refused');
  expect(window).toMatchObject({ client_name: null, job: null, build_number: null, remote_addr: expect.stringMatching(/^203\.0\.113\./) });
  expect(Object.keys(window.detail as object).sort()).toEqual(['count', 'error', 'error_description', 'window_end', 'window_start']);

  const rotated = await one('client.secret_rotated');
  expect(rotated).toMatchObject({ job: null, build_number: null, request_token_id: null, remote_addr: null, client_name: expect.stringMatching(/^ci-|^bench$/) });
  expect(rotated.detail).toEqual({ new_secret: expect.stringMatching(/^jocs_…[0-9a-f]{4}$/), previous_secret: expect.stringMatching(/^jocs_…[0-9a-f]{4}$/), previous_secret_valid_until: expect.stringMatching(/Z$/) });

  const tokenClaims = (await d.query<{ claims: object }>('SELECT claims FROM request_tokens LIMIT 1'))[0]!.claims;
  expect(Object.keys(tokenClaims).sort()).toEqual(claimKeys);
});

test('request tokens: half expired, 15 revoked, unique hashes, several controllers beside the registered one', async () => {
  const [t] = await d.query(`
    SELECT count(*)::int AS total,
           count(*) FILTER (WHERE expires_at <= $1)::int AS expired,
           count(*) FILTER (WHERE revoked_at IS NOT NULL)::int AS revoked,
           count(DISTINCT token_hash)::int AS hashes,
           count(*) FILTER (WHERE token_hash ~ '^[0-9a-f]{64}$')::int AS hex
    FROM request_tokens`, [now]);
  expect(t).toEqual({ total: 100, expired: 50, revoked: 15, hashes: 100, hex: 100 });
  expect((await d.query('SELECT name FROM clients ORDER BY name')).map((r) => r.name)).toEqual(['bench', 'ci-data', 'ci-main', 'ci-mobile', 'ci-platform']);
  expect((await d.query('SELECT count(DISTINCT client_name)::int AS n FROM audit_events')).at(0)).toEqual({ n: 5 });
});

test('the indexes are the migrations\' own again, and nothing is due under the default retentions', async () => {
  expect(await indexes()).toEqual(indexesBefore);
  const due = await pruneExpiredData(d.db, { auditRetention: 400 * DAY, requestTokenRetention: 7 * DAY }, { now, dryRun: true });
  expect([due.auditEvents.rows, due.requestTokens.rows]).toEqual([0, 0]);
});
