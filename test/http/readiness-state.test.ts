// /readyz's answer from kept state (http/readiness.ts), table-driven over
// the token path's health, with a stand-in pool and clock: which states are
// 503 and with which reason, and how often the database is probed.
import type pg from 'pg';
import { TokenPathHealth } from '../../src/request-tokens/path-health.js';
import { PROBE_INTERVAL_MS, Readiness } from '../../src/http/readiness.js';

interface Stand {
  readiness: Readiness;
  health: TokenPathHealth;
  clock: { now: number };
  probes: { answer: () => Promise<unknown>; count: number };
}

function stand(): Stand {
  const clock = { now: 1_000_000 };
  const probes = { answer: async (): Promise<unknown> => ({ rows: [{ in_recovery: false }] }), count: 0 };
  const pool = { query: () => { probes.count += 1; return probes.answer(); } } as unknown as pg.Pool;
  const health = new TokenPathHealth(() => clock.now);
  const readiness = new Readiness({ pool, tokenPath: health, stalledAfterMs: 3000, now: () => clock.now });
  return { readiness, health, clock, probes };
}

const lost = Object.assign(new Error('database statement deadline missed'), { name: 'StatementDeadlineMissed' });

test('ready when the probe answers as a primary and no token statement is failing or stuck', async () => {
  const s = stand();
  expect(await s.readiness.check()).toEqual({ ready: true });
});

test('a standby, or a database out of reach, is 503 with the probe\'s reason', async () => {
  const s = stand();
  s.probes.answer = async () => ({ rows: [{ in_recovery: true }] });
  expect(await s.readiness.check()).toEqual({ ready: false, reason: 'database unreachable: server in recovery (standby)' });
  s.clock.now += PROBE_INTERVAL_MS;
  s.probes.answer = async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); };
  expect(await s.readiness.check()).toEqual({ ready: false, reason: 'database unreachable: connection refused' });
});

test('a token statement unanswered for DATABASE_ACQUIRE_TIMEOUT is 503 even while the probe succeeds, and ready once it ends', async () => {
  const s = stand();
  let finish: (v: unknown) => void = () => undefined;
  const stuck = s.health.track(() => new Promise((resolve) => (finish = resolve)));
  s.clock.now += 2999;
  expect(await s.readiness.check()).toEqual({ ready: true });
  s.clock.now += 1;
  expect(await s.readiness.check()).toEqual({ ready: false, reason: 'database not answering token statements for 3 s' });
  finish(undefined);
  await stuck;
  expect(await s.readiness.check()).toEqual({ ready: true });
});

test('a token statement that failed for want of the database is 503 until a token statement, or a probe begun after it, succeeds', async () => {
  const s = stand();
  expect(await s.readiness.check()).toEqual({ ready: true });
  s.clock.now += 10;
  await expect(s.health.track(() => Promise.reject(lost))).rejects.toBe(lost);
  // The last probe began before the failure: it proves nothing about it.
  expect(await s.readiness.check()).toEqual({ ready: false, reason: 'token statements failing: statement deadline missed' });
  // A token statement succeeds: ready at once.
  await s.health.track(async () => 1);
  expect(await s.readiness.check()).toEqual({ ready: true });
  // Failing again; a probe that begins after the failure and succeeds clears it.
  s.clock.now += 1;
  await expect(s.health.track(() => Promise.reject(lost))).rejects.toBe(lost);
  expect(await s.readiness.check()).toEqual({ ready: false, reason: 'token statements failing: statement deadline missed' });
  s.clock.now += PROBE_INTERVAL_MS;
  expect(await s.readiness.check()).toEqual({ ready: true });
});

test('a failure that is not the database (a refused input) leaves readiness alone', async () => {
  const s = stand();
  const constraint = Object.assign(new Error('duplicate key'), { code: '23505' });
  await expect(s.health.track(() => Promise.reject(constraint))).rejects.toBe(constraint);
  expect(await s.readiness.check()).toEqual({ ready: true });
});

test('callers share one probe a second: concurrent ones wait for the one in flight, later ones reuse its answer', async () => {
  const s = stand();
  let release: () => void = () => undefined;
  s.probes.answer = () => new Promise((resolve) => (release = () => resolve({ rows: [{ in_recovery: false }] })));
  const concurrent = Array.from({ length: 100 }, () => s.readiness.check());
  release();
  expect(await Promise.all(concurrent)).toEqual(concurrent.map(() => ({ ready: true })));
  expect(s.probes.count).toBe(1);
  s.probes.answer = async () => ({ rows: [{ in_recovery: false }] });
  s.clock.now += PROBE_INTERVAL_MS - 1;
  await s.readiness.check();
  expect(s.probes.count).toBe(1);
  s.clock.now += 1;
  await s.readiness.check();
  expect(s.probes.count).toBe(2);
  expect(s.readiness.probes).toBe(2);
});
