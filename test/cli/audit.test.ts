// `jenkins-oidc audit ...` as operators and scripts run it: the exact text on
// stdout and stderr, exit codes, and the rows left in the database.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { RETENTION_LOCK } from '../../src/retention/prune.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/cli.js';

let d: TestDatabase;
let env: Record<string, string>;

beforeAll(async () => {
  d = await createTestDatabase();
  env = { DATABASE_URL: d.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: 'https://oidc.example.com' };
});
afterAll(async () => d.drop());

const ids = async (table: string) => (await d.query<{ id: string }>(`SELECT id::text FROM ${table} ORDER BY id`)).map((r) => r.id);
const ISO = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z';

describe('audit prune', () => {
  let kept: string[];
  let keptToken: string;

  beforeAll(async () => {
    await d.query(`INSERT INTO clients (name, jenkins_url, audiences, sub_claims, max_request_token_ttl, secret_hash, secret_prefix, secret_last4)
                   VALUES ('prune-ci', 'https://jenkins.example.com', '{sts.amazonaws.com}', '{jenkins_instance,job}', 3600, 'x', 'jocs_', 'abcd')`);
    await d.query(`INSERT INTO audit_events (at, event) VALUES (now() - interval '500 days', 'id_token.issued'), (now() - interval '401 days', 'token.refused')`);
    kept = (await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) VALUES (now() - interval '399 days', 'id_token.issued'), (now(), 'id_token.issued') RETURNING id::text`)).map((r) => r.id);
    await d.query(`INSERT INTO request_tokens (id, token_hash, client_name, job, build_number, claims, audiences, expires_at)
                   VALUES ('00000000-0000-4000-8000-000000000001', 'h1', 'prune-ci', 'a', 1, '{}', '{x}', now() - interval '8 days'),
                          ('00000000-0000-4000-8000-000000000002', 'h2', 'prune-ci', 'a', 2, '{}', '{x}', now() - interval '1 day')`);
    keptToken = '00000000-0000-4000-8000-000000000002';
  });

  test('--dry-run says what is due and deletes nothing', async () => {
    const before = await ids('audit_events');
    const res = await runCli(['audit', 'prune', '--dry-run'], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(new RegExp(
      `^audit_events    would delete 2 row\\(s\\) from before ${ISO} \\(AUDIT_RETENTION=400d\\)\n` +
      `request_tokens  would delete 1 row\\(s\\) that expired before ${ISO} \\(REQUEST_TOKEN_RETENTION=7d\\)\n$`,
    ));
    expect(await ids('audit_events')).toEqual(before);
  });

  test('a retention of 0 keeps everything, as the output says', async () => {
    const res = await runCli(['audit', 'prune'], { ...env, AUDIT_RETENTION: '0', REQUEST_TOKEN_RETENTION: '0' });
    expect(res).toEqual({
      code: 0,
      stdout: 'audit_events    kept forever (AUDIT_RETENTION=0)\nrequest_tokens  kept forever (REQUEST_TOKEN_RETENTION=0)\n',
      stderr: '',
    });
    expect(await ids('audit_events')).toHaveLength(4);
  });

  test('refuses to run while another process holds the retention lock', async () => {
    const other = new pg.Client({ connectionString: d.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1)', [RETENTION_LOCK]);
      expect(await runCli(['audit', 'prune'], env)).toEqual({
        code: 1,
        stdout: '',
        stderr: 'error: another jenkins-oidc process is pruning right now\n  its log line "retention: deleted expired rows" says what it deleted; run this again once it is done\n',
      });
    } finally {
      await other.end();
    }
    expect(await ids('audit_events')).toHaveLength(4);
  });

  test('--json deletes what is due and reports it', async () => {
    const res = await runCli(['audit', 'prune', '--json'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      dryRun: false,
      stopped: false,
      auditEvents: { retention: 400 * 86400, before: expect.stringMatching(new RegExp(`^${ISO}$`)), rows: 2, batches: 1 },
      requestTokens: { retention: 7 * 86400, before: expect.stringMatching(new RegExp(`^${ISO}$`)), rows: 1, batches: 1 },
    });
    expect(await ids('audit_events')).toEqual(kept);
    expect((await d.query<{ id: string }>('SELECT id FROM request_tokens')).map((r) => r.id)).toEqual([keptToken]);
  });
});

describe('audit list', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 20, 9, minute)).toISOString();
  let listed: Record<string, string>;

  beforeAll(async () => {
    const seed = [
      ['old', at(0), 'id_token.issued', 'kid-a'],
      ['issued', at(1), 'id_token.issued', 'kid-a'],
      ['otherKey', at(2), 'id_token.issued', 'kid-b'],
      ['refused', at(3), 'id_token.refused', null],
      ['late', at(9), 'id_token.issued', 'kid-a'],
    ];
    listed = {};
    for (const [name, when, event, kid] of seed) {
      const [row] = await d.query<{ id: string }>(`INSERT INTO audit_events (at, event, client_name, kid) VALUES ($1, $2, 'list-ci', $3) RETURNING id::text`, [when, event, kid]);
      listed[name!] = row!.id;
    }
  });

  test('--kid, --event, --outcome, --since and --until reach the query', async () => {
    const run = async (...args: string[]) => {
      const res = await runCli(['audit', 'list', '--client', 'list-ci', '--json', ...args], env);
      expect(res.code).toBe(0);
      return (JSON.parse(res.stdout) as { id: string }[]).map((r) => Object.keys(listed).find((k) => listed[k] === r.id));
    };
    expect(await run('--kid', 'kid-a', '--since', at(1), '--until', at(9))).toEqual(['issued']);
    expect(await run('--outcome', 'refused')).toEqual(['refused']);
    expect(await run('--event', 'id_token.refused,id_token.issued', '--until', at(3))).toEqual(['otherKey', 'issued', 'old']);
  });

  test('an unknown --outcome is refused with the choices', async () => {
    expect(await runCli(['audit', 'list', '--outcome', 'failed'], env)).toEqual({
      code: 1,
      stdout: '',
      stderr: "error: option '--outcome <outcome>' argument 'failed' is invalid. Allowed choices are ok, refused.\n",
    });
  });

  test('a bare number for --until is refused, naming the option', async () => {
    expect(await runCli(['audit', 'list', '--until', '90'], env)).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: until: must be an ISO time (2026-11-25T10:00:00Z) or a duration such as 30m, 12h, 7d; got "90"\n',
    });
  });
});
