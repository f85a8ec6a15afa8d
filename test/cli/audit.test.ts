// `jenkins-oidc audit ...` as operators and scripts run it: the exact text on
// stdout and stderr, exit codes, and the rows left in the database.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { RETENTION_LOCK } from '../../src/retention/prune.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { CLI, runCli } from '../helpers/cli.js';

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

describe('audit export', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 21, 8, minute)).toISOString();
  const window = ['--client', 'export-ci', '--since', at(0), '--until', at(3)];
  let id: string[];

  beforeAll(async () => {
    id = [];
    const seed: [string, string, string | null, string | null, string | null, string | null, string][] = [
      [at(0), 'request_token.issued', 'sts.amazonaws.com', null, null, '00000000-0000-4000-8000-0000000000e1', '{"expires_at":"2026-11-21T09:00:00.000Z"}'],
      [at(1), 'id_token.issued', 'sts.amazonaws.com', 'jti-1', 'kid-1', '00000000-0000-4000-8000-0000000000e1', '{"sub":"jenkins_instance:export-ci:job:team/app"}'],
      [at(2), 'id_token.refused', '=HYPERLINK("http://evil.example","click"),x', null, null, null, '{"error":"invalid_target","error_description":"not allowed"}'],
      [at(3), 'id_token.issued', 'sts.amazonaws.com', 'jti-2', 'kid-1', null, '{}'],
    ];
    for (const [when, event, audience, jti, kid, rt, detail] of seed) {
      const [row] = await d.query<{ id: string }>(
        `INSERT INTO audit_events (at, event, client_name, job, build_number, audience, jti, kid, request_token_id, remote_addr, detail)
         VALUES ($1, $2, 'export-ci', 'team/app', 12, $3, $4, $5, $6, '10.0.0.1', $7) RETURNING id::text`,
        [when, event, audience, jti, kid, rt, detail],
      );
      id.push(row!.id);
    }
  });

  test('jsonl (the default): one exact object per row, oldest first, the window half-open; the count on stderr', async () => {
    const res = await runCli(['audit', 'export', ...window], env);
    expect(res).toEqual({
      code: 0,
      stdout:
        `{"id":"${id[0]}","at":"${at(0)}","event":"request_token.issued","client":"export-ci","job":"team/app","buildNumber":12,"audience":"sts.amazonaws.com","jti":null,"kid":null,"requestTokenId":"00000000-0000-4000-8000-0000000000e1","remoteAddr":"10.0.0.1","detail":{"expires_at":"2026-11-21T09:00:00.000Z"}}\n` +
        `{"id":"${id[1]}","at":"${at(1)}","event":"id_token.issued","client":"export-ci","job":"team/app","buildNumber":12,"audience":"sts.amazonaws.com","jti":"jti-1","kid":"kid-1","requestTokenId":"00000000-0000-4000-8000-0000000000e1","remoteAddr":"10.0.0.1","detail":{"sub":"jenkins_instance:export-ci:job:team/app"}}\n` +
        `{"id":"${id[2]}","at":"${at(2)}","event":"id_token.refused","client":"export-ci","job":"team/app","buildNumber":12,"audience":"=HYPERLINK(\\"http://evil.example\\",\\"click\\"),x","jti":null,"kid":null,"requestTokenId":null,"remoteAddr":"10.0.0.1","detail":{"error":"invalid_target","error_description":"not allowed"}}\n`,
      stderr: `exported 3 row(s) from ${at(0)} (inclusive) to ${at(3)} (exclusive)\n`,
    });
  });

  test('csv: RFC 4180 with a header row, a formula defused', async () => {
    const res = await runCli(['audit', 'export', ...window, '--format', 'csv', '--event', 'id_token.issued,id_token.refused'], env);
    expect(res).toEqual({
      code: 0,
      stdout:
        'id,at,event,client,job,buildNumber,audience,jti,kid,requestTokenId,remoteAddr,detail\r\n' +
        `${id[1]},${at(1)},id_token.issued,export-ci,team/app,12,sts.amazonaws.com,jti-1,kid-1,00000000-0000-4000-8000-0000000000e1,10.0.0.1,"{""sub"":""jenkins_instance:export-ci:job:team/app""}"\r\n` +
        `${id[2]},${at(2)},id_token.refused,export-ci,team/app,12,"'=HYPERLINK(""http://evil.example"",""click""),x",,,,10.0.0.1,"{""error"":""invalid_target"",""error_description"":""not allowed""}"\r\n`,
      stderr: `exported 2 row(s) from ${at(0)} (inclusive) to ${at(3)} (exclusive)\n`,
    });
  });

  test('nothing matching: an empty stream (a CSV header only), still exit 0', async () => {
    expect(await runCli(['audit', 'export', ...window, '--outcome', 'refused', '--kid', 'kid-1'], env)).toEqual({
      code: 0, stdout: '', stderr: `exported 0 row(s) from ${at(0)} (inclusive) to ${at(3)} (exclusive)\n`,
    });
    expect((await runCli(['audit', 'export', ...window, '--outcome', 'refused', '--kid', 'kid-1', '--format', 'csv'], env)).stdout)
      .toBe('id,at,event,client,job,buildNumber,audience,jti,kid,requestTokenId,remoteAddr,detail\r\n');
  });

  test('a reader that goes away (| head) ends it with exit 1 and advice, not a crash', async () => {
    await d.query(`INSERT INTO audit_events (at, event, client_name, job) SELECT $1::timestamptz + i * interval '1 ms', 'id_token.issued', 'pipe-ci', 'team/app' FROM generate_series(1, 3000) i`, [at(30)]);
    const child = spawn(process.execPath, [CLI, 'audit', 'export', '--client', 'pipe-ci'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({
      code: 1,
      stderr: 'error: the reader of the export went away before the end\n  export again; from --since at the last row received, nothing is lost\n',
    });
  });

  test('an unknown --format is refused with the choices', async () => {
    expect(await runCli(['audit', 'export', '--format', 'xml'], env)).toEqual({
      code: 1, stdout: '', stderr: "error: option '--format <format>' argument 'xml' is invalid. Allowed choices are jsonl, csv.\n",
    });
  });
});

describe('audit list escapes caller-chosen text', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 22, 7, minute)).toISOString();
  const window = ['--since', at(0), '--until', at(10)];
  const forgedClient = 'x\n2026-11-22T07:05:00.000Z  id_token.issued  ci-main';
  const hostile = {
    audience: 'sts.amazonaws.com\u001b[2K\r\u001b[32mok',
    job: 'team/app\u202e\u009b2J\u007f',
    literal: 'a\\nb',
  };

  beforeAll(async () => {
    await d.query(`INSERT INTO audit_events (at, event, client_name, audience, remote_addr) VALUES ($1, 'token.refused', $2, $3, '203.0.113.9')`, [at(1), forgedClient, hostile.audience]);
    await d.query(`INSERT INTO audit_events (at, event, client_name, job, build_number, audience, remote_addr) VALUES ($1, 'id_token.refused', 'ci-main', $2, 7, $3, '203.0.113.9')`, [at(2), hostile.job, hostile.literal]);
  });

  test('the table shows control characters as escapes: one line per row, nothing forged', async () => {
    const res = await runCli(['audit', 'list', ...window], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe([
      'at                        event             note  client                                                 job                       build_number  audience                              kid  remote_addr',
      '2026-11-22T07:02:00.000Z  id_token.refused  -     ci-main                                                team/app\\u202e\\x9b2J\\x7f  7            a\\\\nb                                 -    203.0.113.9',
      '2026-11-22T07:01:00.000Z  token.refused     -     x\\n2026-11-22T07:05:00.000Z  id_token.issued  ci-main  -                         -            sts.amazonaws.com\\x1b[2K\\r\\x1b[32mok  -    203.0.113.9',
      '',
    ].join('\n'));
  });

  test('--json keeps the exact values, with every character a terminal could act on \\u-escaped', async () => {
    const res = await runCli(['audit', 'list', ...window, '--json'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('"job": "team/app\\u202e\\u009b2J\\u007f",');
    expect(res.stdout).toContain('"audience": "sts.amazonaws.com\\u001b[2K\\r\\u001b[32mok",');
    expect(res.stdout).toContain('"audience": "a\\\\nb",');
    expect(res.stdout.replaceAll('\n', '')).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    const rows = JSON.parse(res.stdout) as { client: string; job: string | null; audience: string }[];
    expect(rows.map((r) => [r.client, r.job, r.audience])).toEqual([
      ['ci-main', hostile.job, hostile.literal],
      [forgedClient, null, hostile.audience],
    ]);
  });
});
