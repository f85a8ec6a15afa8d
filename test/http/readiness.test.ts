// Readiness that costs nothing (issue 18, finding 2): /readyz answers from
// one shared probe a second at most, so a flood of keep-alive clients looping
// it runs a handful of database probes and never takes a pooled connection
// from a build. (Before: 150 such clients made every /id-token of a build
// fail with 503.) The truth-telling half, 503 while tokens cannot be issued,
// is in failover.test.ts.
import http from 'node:http';
import { sampleValue } from '../helpers/metrics.js';
import { exchange, startWithToken, type TestService } from '../helpers/service.js';

const FLOODERS = 150;
const BUILD_CALLS = 20;

let t: TestService;
let token: string;
beforeAll(async () => {
  ({ t, token } = await startWithToken());
});
afterAll(async () => t?.stop());

function get(agent: http.Agent, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

async function probes(): Promise<number> {
  return sampleValue(await t.service.metrics.registry.metrics(), 'jenkins_oidc_readiness_probes_total') ?? 0;
}

test(`${FLOODERS} keep-alive clients looping /readyz run at most one database probe a second, and a build's /id-token and exchanges all succeed meanwhile`, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: FLOODERS });
  const before = await probes();
  const started = performance.now();
  let flooding = true;
  const answers = new Map<string, number>();
  const flooders = Array.from({ length: FLOODERS }, async () => {
    while (flooding) {
      const r = await get(agent, `${t.url}/readyz`);
      const key = `${r.status} ${r.body}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
  });
  // The build, while the flood runs: every call must be served.
  const build: number[] = [];
  for (let i = 0; i < BUILD_CALLS; i += 1) {
    if (i % 2 === 0) {
      const res = await fetch(`${t.url}/id-token?api-version=1`, { headers: { authorization: `Bearer ${token}` } });
      await res.text();
      build.push(res.status);
    } else {
      build.push((await exchange(t, token)).status);
    }
  }
  flooding = false;
  await Promise.all(flooders);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const ran = (await probes()) - before;
  const readyz = [...answers.values()].reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({ seconds: Number(seconds.toFixed(1)), readyz, probes: ran, build: build.length }));

  expect(build).toEqual(build.map(() => 200));
  expect([...answers.keys()]).toEqual([`200 ${JSON.stringify({ status: 'ready', signing_kid: t.service.runtime.current.signer.kid })}`]);
  expect(readyz).toBeGreaterThan(FLOODERS);
  // One a second, shared: the first, then one per second that passed (and one in flight at the end).
  expect(ran).toBeGreaterThanOrEqual(1);
  expect(ran).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
}, 60_000);
