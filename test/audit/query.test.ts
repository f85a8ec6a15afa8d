// Reading the audit trail: every filter of `audit list` and `audit export`
// returns exactly the rows it names, and the export's keyset pages neither
// skip nor repeat a row, even when many rows share a millisecond.
import { InputError } from '../../src/claims/text.js';
import { AUDIT_EVENT_NAMES, auditRows, listAudit, outcomeOf, parseWhen, type AuditFilter } from '../../src/audit/query.js';
import { closePrisma, poolOf } from '../../src/store/prisma.js';
import { createTestDatabase, testPrisma, type TestDatabase } from '../helpers/database.js';

let d: TestDatabase;
const T = (minute: number, ms = 0) => new Date(Date.UTC(2026, 10, 20, 10, minute, 0, ms));
const rows: Record<string, string> = {};

beforeAll(async () => {
  d = await createTestDatabase();
  // name -> [at, event, client, job, kid]
  const seed: [string, Date, string, string | null, string | null, string | null][] = [
    ['mint', T(0), 'request_token.issued', 'ci-main', 'team/app', null],
    ['exchange', T(1), 'id_token.issued', 'ci-main', 'team/app', 'kid-old'],
    ['badAudience', T(2), 'id_token.refused', 'ci-main', 'team/app', null],
    ['badSecret', T(3), 'token.refused', 'ci-other', null, null],
    ['otherJob', T(4), 'id_token.issued', 'ci-main', 'team/lib', 'kid-new'],
    ['otherClient', T(5), 'id_token.issued', 'ci-other', 'team/app', 'kid-new'],
    ['revoked', T(6), 'request_token.revoked', 'ci-main', 'team/app', null],
    ['badRevocation', T(7), 'revocation.refused', null, null, null],
    ['badMint', T(8), 'request_token.refused', 'ci-main', 'team/app', null],
  ];
  for (const [name, at, event, client, job, kid] of seed) {
    const [row] = await d.query<{ id: string }>('INSERT INTO audit_events (at, event, client_name, job, kid) VALUES ($1, $2, $3, $4, $5) RETURNING id::text', [at, event, client, job, kid]);
    rows[name] = row!.id;
  }
});
afterAll(async () => d.drop());

const names = (ids: string[]) => ids.map((id) => Object.keys(rows).find((k) => rows[k] === id) ?? id);

test.each<[string, AuditFilter, string[]]>([
  ['no filter: every row, newest first', {},
    ['badMint', 'badRevocation', 'revoked', 'otherClient', 'otherJob', 'badSecret', 'badAudience', 'exchange', 'mint']],
  ['--client', { client: 'ci-other' }, ['otherClient', 'badSecret']],
  ['--job', { job: 'team/lib' }, ['otherJob']],
  ['--kid: the ID tokens one key signed', { kid: 'kid-new' }, ['otherClient', 'otherJob']],
  ['--event, one name', { events: ['id_token.issued'] }, ['otherClient', 'otherJob', 'exchange']],
  ['--event, several names', { events: ['request_token.issued', 'request_token.revoked'] }, ['revoked', 'mint']],
  ['--outcome refused: every *.refused event', { outcome: 'refused' }, ['badMint', 'badRevocation', 'badSecret', 'badAudience']],
  ['--outcome ok: tokens issued and revoked', { outcome: 'ok' }, ['revoked', 'otherClient', 'otherJob', 'exchange', 'mint']],
  ['--since is inclusive', { since: T(6) }, ['badMint', 'badRevocation', 'revoked']],
  ['--until is exclusive', { until: T(2) }, ['exchange', 'mint']],
  ['--since and --until: a half-open window', { since: T(2), until: T(4) }, ['badSecret', 'badAudience']],
  ['filters combine', { client: 'ci-main', outcome: 'refused', since: T(1) }, ['badMint', 'badAudience']],
  ['--event and --outcome that exclude each other: nothing', { events: ['id_token.issued'], outcome: 'refused' }, []],
  ['an unknown value: nothing', { kid: 'no-such-kid' }, []],
])('list %s', async (_name, filter, expected) => {
  expect(names((await listAudit(d.db, filter)).map((r) => r.id))).toEqual(expected);
});

test('list --limit keeps the newest rows', async () => {
  expect(names((await listAudit(d.db, { limit: 2 })).map((r) => r.id))).toEqual(['badMint', 'badRevocation']);
});

test('a row is shown with every field', async () => {
  const [row] = await listAudit(d.db, { kid: 'kid-old' });
  expect(row).toEqual({
    id: rows.exchange, at: '2026-11-20T10:01:00.000Z', event: 'id_token.issued', client: 'ci-main', job: 'team/app',
    buildNumber: null, audience: null, jti: null, kid: 'kid-old', requestTokenId: null, remoteAddr: null, detail: null,
  });
});

test('outcome: every event written today is on the side its name says', () => {
  expect(Object.fromEntries(AUDIT_EVENT_NAMES.map((e) => [e, outcomeOf(e)]))).toEqual({
    'request_token.issued': 'ok',
    'request_token.revoked': 'ok',
    'id_token.issued': 'ok',
    'request_token.refused': 'refused',
    'id_token.refused': 'refused',
    'token.refused': 'refused',
    'revocation.refused': 'refused',
    'client.secret_rotated': 'ok',
    'id_token.commit_unknown': 'ok',
    'request_token.commit_unknown': 'ok',
  });
});

describe('export pages (keyset on at, id)', () => {
  const all = async (filter: AuditFilter, pageSize: number) => {
    const out: string[] = [];
    for await (const r of auditRows(d.db, filter, pageSize)) out.push(r.id);
    return names(out);
  };

  test('oldest first, the same rows whatever the page size, filters applied', async () => {
    const expected = ['mint', 'exchange', 'badAudience', 'badSecret', 'otherJob', 'otherClient', 'revoked', 'badRevocation', 'badMint'];
    for (const size of [1, 2, 4, 9, 100]) expect(await all({}, size)).toEqual(expected);
    expect(await all({ outcome: 'refused', since: T(3), until: T(8) }, 1)).toEqual(['badSecret', 'badRevocation']);
  });

  test('rows sharing one millisecond are neither skipped nor repeated across pages', async () => {
    const at = T(30, 123);
    const same = (await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) SELECT $1, 'id_token.issued' FROM generate_series(1, 7) RETURNING id::text`, [at])).map((r) => r.id);
    const later = (await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) VALUES ($1, 'id_token.issued') RETURNING id::text`, [T(30, 124)]))[0]!.id;
    try {
      for (const size of [1, 2, 3, 7]) expect(await all({ since: at }, size)).toEqual([...same, later]);
    } finally {
      await d.query('DELETE FROM audit_events WHERE at >= $1', [at]);
    }
  });

  test('without --until the export ends at its start: rows written later are not in it', async () => {
    const future = (await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) VALUES (now() + interval '1 hour', 'id_token.issued') RETURNING id::text`))[0]!.id;
    try {
      expect(await all({ since: T(8) }, 1)).toEqual(['badMint']);
      expect(await all({ since: T(8), until: new Date(Date.now() + 2 * 3600_000) }, 1)).toEqual(['badMint', future]);
    } finally {
      await d.query('DELETE FROM audit_events WHERE id = $1', [future]);
    }
  });
});

describe('order: by time, then id', () => {
  // A transaction that began first stamps an earlier `at` but may insert after
  // one that began later: ids then disagree with time, and both commands go by time.
  let ids: { t41: string; t43: string; t42: string };
  beforeAll(async () => {
    const insert = async (at: Date) => (await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) VALUES ($1, 'id_token.issued') RETURNING id::text`, [at]))[0]!.id;
    ids = { t41: await insert(T(41)), t43: await insert(T(43)), t42: await insert(T(42)) };
  });
  afterAll(async () => {
    await d.query('DELETE FROM audit_events WHERE at >= $1', [T(40)]);
  });

  test('list: newest first by time, whatever order the ids say', async () => {
    expect((await listAudit(d.db, { since: T(40) })).map((r) => r.id)).toEqual([ids.t43, ids.t42, ids.t41]);
    expect((await listAudit(d.db, { since: T(40), limit: 1 })).map((r) => r.id)).toEqual([ids.t43]);
  });

  test('export: oldest first by time, the list reversed', async () => {
    for (const size of [1, 2, 3]) {
      const out: string[] = [];
      for await (const r of auditRows(d.db, { since: T(40) }, size)) out.push(r.id);
      expect(out).toEqual([ids.t41, ids.t42, ids.t43]);
    }
  });
});

describe('export streams', () => {
  test('one page at a time: the next is asked for as the current one is handed out, never more', async () => {
    const pool = poolOf(d.db);
    // (The one overload the export uses: text and values.)
    const query = pool.query.bind(pool) as (text: string, values: unknown[]) => ReturnType<typeof pool.query>;
    const original = pool.query;
    const limits: unknown[] = [];
    pool.query = ((text: string, values: unknown[]) => {
      limits.push(values.at(-1));
      return query(text, values);
    }) as typeof pool.query;
    try {
      // 9 rows (T(0) to T(8)) in pages of 2.
      const rows = auditRows(d.db, { until: T(9) }, 2)[Symbol.asyncIterator]();
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        await rows.next();
        seen.push(limits.length);
      }
      // Row 1: pages 1 and 2 asked for; row 3 (page 2's first): page 3; row 5: page 4.
      expect(seen).toEqual([2, 2, 3, 3, 4]);
      expect(limits).toEqual([2, 2, 2, 2]);
      await rows.return(undefined);
    } finally {
      pool.query = original;
    }
  });
});

test('a process that only reads the trail never starts Prisma, and closePrisma still ends its pool', async () => {
  const db = testPrisma(d.url, 2);
  expect(await listAudit(db, { limit: 1 })).toHaveLength(1);
  // $disconnect alone leaves a pool that Prisma never connected open.
  await db.$disconnect();
  expect(poolOf(db).ended).toBe(false);
  await closePrisma(db);
  expect(poolOf(db).ended).toBe(true);
  // Closing twice is harmless (a service closes once on every path).
  await closePrisma(db);
});

describe('--since and --until values', () => {
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);
  test.each([
    ['30m', '2026-11-25T11:30:00.000Z'],
    ['12h', '2026-11-25T00:00:00.000Z'],
    ['7d', '2026-11-18T12:00:00.000Z'],
    ['45s', '2026-11-25T11:59:15.000Z'],
    ['2026-11-01', '2026-11-01T00:00:00.000Z'],
    ['2026-11-01T10:00:00+02:00', '2026-11-01T08:00:00.000Z'],
  ])('%s', (value, expected) => {
    expect(parseWhen('since', value, now).toISOString()).toBe(expected);
  });

  test.each(['yesterday', '90', '2026', '7 days', ''])('"%s" is refused, naming the option', (value) => {
    expect(() => parseWhen('until', value, now)).toThrow(
      new InputError('until', `must be an ISO time (2026-11-25T10:00:00Z) or a duration such as 30m, 12h, 7d; got "${value}"`),
    );
  });
});
