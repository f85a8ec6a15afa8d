// The export formats, cell by cell: RFC 4180 quoting, spreadsheet formulas
// defused, JSONL exact.
import { csvCell, csvHeader, csvLine, exportAudit, jsonLine } from '../../src/audit/export.js';
import type { AuditView } from '../../src/audit/query.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

test.each<[string, unknown, string]>([
  ['absent', null, ''],
  ['plain text', 'team/app/main', 'team/app/main'],
  ['a number', 42, '42'],
  ['a comma is quoted', 'a,b', '"a,b"'],
  ['quotes are doubled inside quotes', 'say "hi"', '"say ""hi"""'],
  ['a line break is kept, quoted', 'line\nbreak', '"line\nbreak"'],
  ['CRLF is kept, quoted', 'a\r\nb', '"a\r\nb"'],
  ['an object becomes its JSON', { error: 'invalid_grant', n: 1 }, '"{""error"":""invalid_grant"",""n"":1}"'],
  ['= would be a formula', '=1+1', "'=1+1"],
  ['+ would be a formula', '+1', "'+1"],
  ['- would be a formula', '-2+3', "'-2+3"],
  ['@ would be a formula', '@SUM(A1:A9)', "'@SUM(A1:A9)"],
  ['a leading tab is defused', '\t=1', "'\t=1"],
  ['a leading CR is defused and quoted', '\r=1', `"'\r=1"`],
  ['a formula with quotes and commas: defused, then quoted', '=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
  ['= later in the text is harmless', 'a=b', 'a=b'],
  ['an IPv6 address is not a formula', '::1', '::1'],
])('csv cell: %s', (_name, value, expected) => {
  expect(csvCell(value)).toBe(expected);
});

const row: AuditView = {
  id: '7', at: '2026-11-20T10:00:00.000Z', event: 'id_token.refused', client: 'ci-main', job: 'team/app', buildNumber: 12,
  audience: '=cmd|"/c calc"!A1', jti: null, kid: null, requestTokenId: '00000000-0000-4000-8000-000000000001', remoteAddr: '10.0.0.1',
  detail: { error: 'invalid_target', error_description: 'audience "x" is not allowed' },
};

test('csv: a header and one CRLF-terminated line per row, in the header order', () => {
  expect(csvHeader()).toBe('id,at,event,client,job,buildNumber,audience,jti,kid,requestTokenId,remoteAddr,detail\r\n');
  expect(csvLine(row)).toBe(
    '7,2026-11-20T10:00:00.000Z,id_token.refused,ci-main,team/app,12,"\'=cmd|""/c calc""!A1",,,00000000-0000-4000-8000-000000000001,10.0.0.1,' +
    '"{""error"":""invalid_target"",""error_description"":""audience \\""x\\"" is not allowed""}"\r\n',
  );
});

test('jsonl: one JSON object per line that reads back exactly, nothing in it a terminal acts on', () => {
  const job = 'a\nb\u001b[31m\u009b2J\u202e\u2028\u{E0001}';
  const line = jsonLine({ ...row, job });
  expect(line).toBe(
    `{"id":"7","at":"2026-11-20T10:00:00.000Z","event":"id_token.refused","client":"ci-main",` +
    `"job":"a\\nb\\u001b[31m\\u009b2J\\u202e\\u2028\\udb40\\udc01","buildNumber":12,"audience":"=cmd|\\"/c calc\\"!A1","jti":null,"kid":null,` +
    `"requestTokenId":"00000000-0000-4000-8000-000000000001","remoteAddr":"10.0.0.1","detail":{"error":"invalid_target","error_description":"audience \\"x\\" is not allowed"}}\n`,
  );
  expect(JSON.parse(line)).toEqual({ ...row, job });
});

describe('exportAudit', () => {
  let d: TestDatabase;
  beforeAll(async () => {
    d = await createTestDatabase();
    // ~2,500 rows of ~200 bytes: several 64 KiB chunks.
    await d.query(`INSERT INTO audit_events (at, event, job) SELECT now() - interval '1 day' + i * interval '1 ms', 'id_token.issued', 'team/app' FROM generate_series(1, 2500) i`);
  });
  afterAll(async () => d.drop());

  test('writes every row in chunks of about 64 KiB, waiting for each write', async () => {
    const chunks: string[] = [];
    let writing = false;
    const count = await exportAudit(d.db, {}, 'jsonl', async (chunk) => {
      expect(writing).toBe(false);
      writing = true;
      await new Promise((r) => setTimeout(r, 5));
      chunks.push(chunk);
      writing = false;
    });
    expect(count).toBe(2500);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(65_536);
    const lines = chunks.join('').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => Number(JSON.parse(l).id))).toEqual([...Array(2500).keys()].map((i) => i + 1));
  });

  test('a write that fails ends the export with its error', async () => {
    let writes = 0;
    const gone = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    await expect(exportAudit(d.db, {}, 'csv', async () => {
      writes += 1;
      if (writes === 2) throw gone;
    })).rejects.toBe(gone);
    expect(writes).toBe(2);
  });
});
