// Pipeline code can make its controller send refused requests (a mint with an
// audience the client does not have). Those are the controller's own,
// authenticated, audited by name: they must not spend the failure budget of
// the controller's address, or one Jenkinsfile could get every other build of
// the controller refused with slow_down.
import { addClient, basic, BUILD, exchange, MINT, postForm, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
let secret: string;

beforeAll(async () => {
  t = await startTestService({ FAILED_ATTEMPTS_PER_MINUTE: '10' });
  ({ secret } = await addClient(t, 'ci-main'));
});
afterAll(async () => t.stop());

test('70 refused mints of an authenticated controller leave its address within budget; junk still spends it', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 70; i++) {
    const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD, audience: `junk-${i}` }, { authorization: basic('ci-main', secret) });
    statuses.push(res.status);
  }
  expect(statuses).toEqual(Array(70).fill(400));
  // The first good mint of this process (its secret not yet trusted here) and the build's exchange go through.
  const minted = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret) });
  expect(minted.status).toBe(200);
  expect((await exchange(t, minted.json.access_token as string)).status).toBe(200);
  // Unauthenticated junk from the same address still spends the budget: 10, plus the refill (one per 6 s) while it ran.
  const junk: number[] = [];
  const started = performance.now();
  while (junk.length < 40 && !junk.includes(429)) junk.push((await exchange(t, `jort_${String(junk.length).padStart(43, 'x')}`)).status);
  const refill = Math.ceil((performance.now() - started) / 6000);
  expect(junk.at(-1)).toBe(429);
  expect(junk.slice(0, -1).every((s) => s === 400)).toBe(true);
  expect(junk.length - 1).toBeGreaterThanOrEqual(10);
  expect(junk.length - 1).toBeLessThanOrEqual(10 + refill);
  // The controller, whose secret has now worked, is still served.
  expect((await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret) })).status).toBe(200);
});
