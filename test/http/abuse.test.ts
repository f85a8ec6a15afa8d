// Abuse limits and bounded audit writes (issue 9): a flood of junk from one
// address ends in 429 with Retry-After and writes a handful of rows, while a
// build behind the same address keeps getting ID tokens.
import { FailureBudget } from '../../src/http/abuse-limits.js';
import { addClient, basic, BUILD, MINT, postForm, startTestService, type TestService } from '../helpers/service.js';

describe('FailureBudget', () => {
  test('refills continuously, says how long to wait, and trusts what worked', () => {
    let now = 0;
    const budget = new FailureBudget({ perMinute: 6, now: () => now });
    for (let i = 0; i < 6; i++) {
      expect(budget.retryAfter('10.0.0.1')).toBe(0);
      budget.fail('10.0.0.1');
    }
    expect(budget.retryAfter('10.0.0.1')).toBe(10); // one attempt refills every 10 s
    expect(budget.retryAfter('10.0.0.2')).toBe(0); // other addresses are not affected
    now += 4_000;
    expect(budget.retryAfter('10.0.0.1')).toBe(6);
    now += 6_000;
    expect(budget.retryAfter('10.0.0.1')).toBe(0);
    budget.trust('token:abc');
    expect(budget.isTrusted('token:abc')).toBe(true);
    now += 15 * 60_000 + 1;
    expect(budget.isTrusted('token:abc')).toBe(false);
    expect(new FailureBudget({ perMinute: 0 }).retryAfter('x')).toBe(0);
  });
});

describe('a flood from one address', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    t = await startTestService({ FAILED_ATTEMPTS_PER_MINUTE: '30' });
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => t.stop());

  const idToken = async (bearer: string) => {
    const started = performance.now();
    const res = await fetch(`${t.url}/id-token?api-version=1&audience=sts.amazonaws.com`, { headers: { authorization: `Bearer ${bearer}` } });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json(), ms: performance.now() - started };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  test('429 past the budget, a bounded number of audit rows, and the build behind the same address unharmed', async () => {
    const minted = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: auth });
    const token = minted.json.access_token as string;
    const auditBefore = (await t.database.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events'))[0]!.n;
    // Rows of the flood are the ones after this id (the trail's own 5 s flush may write a closed
    // minute window's rows early, before many of the build's rows: "the last N ids" could miss them).
    const lastIdBefore = (await t.database.query<{ id: string | null }>('SELECT max(id)::text AS id FROM audit_events'))[0]!.id ?? '0';

    // Baseline: the build alone.
    const baseline: number[] = [];
    for (let i = 0; i < 40; i++) baseline.push((await idToken(token)).ms);

    // 16 connections of junk (well-shaped, unknown tokens) while the build keeps asking.
    const junk = Array.from({ length: 800 }, (_, i) => `jort_${String(i).padStart(43, 'x')}`);
    const statuses: Record<number, number> = {};
    let retryAfter: string | null = null;
    const flood = (async () => {
      const workers = Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < junk.length; i += 16) {
          const r = await idToken(junk[i]!);
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status === 429) {
            retryAfter = r.retryAfter;
            expect(r.body).toEqual({ error: 'slow_down', error_description: `too many failed attempts from this address; retry in ${r.retryAfter} s` });
          }
        }
      });
      await Promise.all(workers);
    })();
    const underFlood: { status: number; ms: number }[] = [];
    const started = performance.now();
    while (performance.now() - started < 60_000) {
      const r = await idToken(token);
      underFlood.push({ status: r.status, ms: r.ms });
      if (Object.values(statuses).reduce((a, b) => a + b, 0) >= junk.length) break;
    }
    await flood;
    const floodSeconds = (performance.now() - started) / 1000;

    // The budget let 30 attempts through, plus its refill of 0.5/s, then turned the rest
    // away without a database lookup.
    expect(statuses[401]).toBeGreaterThanOrEqual(30);
    expect(statuses[401]).toBeLessThanOrEqual(30 + Math.ceil(floodSeconds / 2) + 1);
    expect(statuses[429]).toBe(junk.length - statuses[401]!);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(2);
    // The build was never refused.
    expect(underFlood.every((r) => r.status === 200)).toBe(true);

    // The whole flood is a few aggregated rows whose counts add up: one per
    // reason and minute window (two windows if a minute ended during the flood).
    await t.service.audit.flush(true);
    const rows = await t.database.query<{ event: string; error: string; window: string; count: number }>(
      `SELECT event, detail->>'error' AS error, detail->>'window_start' AS window, (detail->>'count')::int AS count FROM audit_events WHERE id > $1::bigint AND detail ? 'count'`,
      [lastIdBefore],
    );
    const total = (await t.database.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events'))[0]!.n;
    const refusalRows = rows.length;
    expect(new Set(rows.map((r) => `${r.error}|${r.window}`)).size).toBe(refusalRows);
    expect(new Set(rows.map((r) => r.error))).toEqual(new Set(['invalid_token', 'slow_down']));
    expect(new Set(rows.map((r) => r.window)).size).toBeLessThanOrEqual(Math.ceil(floodSeconds / 60) + 1);
    expect(rows.filter((r) => r.error === 'invalid_token').reduce((a, r) => a + r.count, 0)).toBe(statuses[401]);
    expect(rows.filter((r) => r.error === 'slow_down').reduce((a, r) => a + r.count, 0)).toBe(statuses[429]);
    // Everything else written meanwhile is the build's own ID tokens, one row each.
    expect(total - auditBefore).toBe(refusalRows + baseline.length + underFlood.length);

    console.log(
      `flood: ${junk.length} junk requests in ${floodSeconds.toFixed(1)} s (${(junk.length / floodSeconds).toFixed(0)}/s) -> ${statuses[401]} x 401, ${statuses[429]} x 429, ${refusalRows} audit rows; ` +
        `legitimate /id-token p50 ${median(baseline).toFixed(1)} ms alone, ${median(underFlood.map((r) => r.ms)).toFixed(1)} ms under the flood (${underFlood.length} requests, all 200)`,
    );
  });

});

describe('wrong client secrets from one address', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    // A budget of its own, spent by this test alone (one attempt back every 30 s: none comes back meanwhile).
    t = await startTestService({ FAILED_ATTEMPTS_PER_MINUTE: '2' });
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => t.stop());

  test('a wrong client secret counts, and the controller that minted before is still served', async () => {
    const mintWith = (authorization: string) => postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization });
    // A controller whose secret worked is trusted from then on.
    expect((await mintWith(auth)).status).toBe(200);
    const wrong = basic('ci-main', 'jocs_wrong');
    for (let i = 0; i < 2; i += 1) {
      const bad = await mintWith(wrong);
      expect({ status: bad.status, body: bad.json }).toEqual({ status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } });
    }
    const over = await mintWith(wrong);
    expect({ status: over.status, body: over.json }).toEqual({
      status: 429,
      body: { error: 'slow_down', error_description: expect.stringMatching(/^too many failed attempts from this address; retry in \d+ s$/) },
    });
    expect((await mintWith(auth)).status).toBe(200);
  });
});
