// `clients rotate-secret` as an admin runs it against a running service: the
// CLI is a process of its own on the service's database, the controller
// talks HTTP. Without an overlap the old secret stops working at once, on the
// next request (the service caches no client), and the new one works; request
// tokens minted before keep working: their builds are not cut off.
import { runCli } from '../helpers/cli.js';
import { BUILD, basic, exchange, mint, postForm, MINT, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
let cli: Record<string, string>;
beforeAll(async () => {
  t = await startTestService();
  // The CLI's client commands need only DATABASE_URL (docs/reference.md "CLI").
  cli = { DATABASE_URL: t.database.url };
});
afterAll(async () => t.stop());

async function cliJson(args: string[]): Promise<Record<string, unknown>> {
  const res = await runCli([...args, '--json'], cli);
  expect({ code: res.code, stderr: res.stderr }).toMatchObject({ code: 0 });
  return JSON.parse(res.stdout) as Record<string, unknown>;
}

test('rotate-secret: the old secret is refused on the very next request, the new one mints, earlier builds keep working', async () => {
  const added = await cliJson(['clients', 'add', 'ci-rotating', '--jenkins-url', 'https://jenkins.example.com']);
  const oldSecret = added.client_secret as string;
  const before = await mint(t, oldSecret, {}, 'ci-rotating');
  expect(before.status).toBe(200);
  const buildInFlight = before.json.access_token as string;

  const rotated = await cliJson(['clients', 'rotate-secret', 'ci-rotating']);
  const newSecret = rotated.client_secret as string;
  expect(rotated.client_id).toBe('ci-rotating');
  expect(newSecret).toMatch(/^jocs_/);
  expect(newSecret).not.toBe(oldSecret);

  // Basic and form-post authentication alike.
  const refusedBasic = await mint(t, oldSecret, {}, 'ci-rotating');
  expect({ status: refusedBasic.status, body: refusedBasic.json }).toEqual({ status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } });
  const refusedPost = await postForm(`${t.url}/token`, { grant_type: MINT, client_id: 'ci-rotating', client_secret: oldSecret, ...BUILD });
  expect({ status: refusedPost.status, body: refusedPost.json }).toEqual({ status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } });
  // Nor may it revoke what it minted before.
  const revokeWithOld = await postForm(`${t.url}/token/revocation`, { token: buildInFlight }, { authorization: basic('ci-rotating', oldSecret) });
  expect({ status: revokeWithOld.status, body: revokeWithOld.json }).toEqual({ status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } });

  const after = await mint(t, newSecret, {}, 'ci-rotating');
  expect(after.status).toBe(200);
  expect((await exchange(t, after.json.access_token as string)).status).toBe(200);
  // A build that got its request token before the rotation still gets ID tokens.
  expect((await exchange(t, buildInFlight)).status).toBe(200);

  const [row] = await t.database.query<{ secret_rotated_at: Date | null }>('SELECT secret_rotated_at FROM clients WHERE name = $1', ['ci-rotating']);
  expect(row!.secret_rotated_at).toBeInstanceOf(Date);
});
