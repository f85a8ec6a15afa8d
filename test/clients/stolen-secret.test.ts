// A stolen client secret is worth little: allowed sources, a rotation with an
// overlap, and mints from new addresses standing out in the audit trail. Over
// real HTTP against the real service, behind a proxy the service trusts
// (TRUST_PROXY=1: the proxy appends the caller's address to X-Forwarded-For),
// so the address compared is the one the proxy saw, never the caller's own
// leftmost entry.
import { rotateClientSecret, updateClient } from '../../src/clients/commands.js';
import { listAudit } from '../../src/audit/query.js';
import { runCli } from '../helpers/cli.js';
import { addClient, basic, BUILD, exchange, MINT, mint, postForm, startTestService, type TestService } from '../helpers/service.js';
import { sampleValue } from '../helpers/metrics.js';

let t: TestService;
let secret: string;

/** A request as the trusted proxy forwards it: `from` is the address the proxy saw (the caller may have written its own entries to the left). */
const via = (from: string, written = '') => ({ 'x-forwarded-for': written ? `${written}, ${from}` : from });

beforeAll(async () => {
  t = await startTestService({ TRUST_PROXY: '1', METRICS_PORT: '0' });
  ({ secret } = await addClient(t, 'ci-main'));
});
afterAll(async () => t.stop());

async function auditRows(sql: string, params: unknown[] = []) {
  await t.service.audit.flush(true);
  return t.database.query(sql, params);
}

describe('allowed sources', () => {
  beforeAll(async () => {
    await updateClient(t.database.db, 'ci-main', { allowedSources: ['10.20.0.0/16', '2001:db8::7'] }, t.config.requestTokenMaxTtl);
  });
  afterAll(async () => {
    await updateClient(t.database.db, 'ci-main', { allowedSources: [] }, t.config.requestTokenMaxTtl);
  });

  test('the controller mints from an allowed address', async () => {
    const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret), ...via('10.20.3.4') });
    expect(res.status).toBe(200);
    const [row] = await t.database.query('SELECT remote_addr FROM audit_events WHERE request_token_id = $1', [res.json.request_token_id]);
    expect(row).toEqual({ remote_addr: '10.20.3.4' });
  });

  test('the right secret from another address is refused 401 naming the address, mints nothing, and is audited per minute with its client', async () => {
    const tokensBefore = await t.database.query('SELECT count(*)::int AS n FROM request_tokens');
    const answers = [];
    // The caller writes an allowed address itself: the proxy's entry, to its right, is the one believed.
    for (let i = 0; i < 3; i++) answers.push(await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret), ...via('203.0.113.50', '10.20.3.4') }));
    for (const res of answers) {
      expect(res.status).toBe(401);
      expect(res.json).toEqual({
        error: 'invalid_client',
        error_description: 'client "ci-main" may not be used from 203.0.113.50: it is not among the client\'s allowed sources (jenkins-oidc clients update ci-main --allowed-sources ...)',
      });
    }
    expect(await t.database.query('SELECT count(*)::int AS n FROM request_tokens')).toEqual(tokensBefore);
    // One row per minute window (two if the three straddled a minute), the client kept.
    const rows = await auditRows("SELECT event, client_name, remote_addr, detail FROM audit_events WHERE remote_addr = '203.0.113.50'");
    for (const row of rows) {
      expect(row).toEqual({
        event: 'token.refused',
        client_name: 'ci-main',
        remote_addr: '203.0.113.50',
        detail: { error: 'invalid_client', error_description: answers[0]!.json.error_description, count: expect.any(Number), window_start: expect.any(String), window_end: expect.any(String) },
      });
    }
    expect(rows.reduce((n, r) => n + (r.detail as { count: number }).count, 0)).toBe(3);
    expect(rows.length).toBeLessThanOrEqual(2);
  });

  test("the controller's revocations from another address are refused too; the build's own revocation is not", async () => {
    const minted = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret), ...via('2001:db8::7') });
    expect(minted.status).toBe(200);
    const token = minted.json.access_token as string;
    const byController = await postForm(`${t.url}/token/revocation`, { token }, { authorization: basic('ci-main', secret), ...via('198.51.100.4') });
    expect(byController.status).toBe(401);
    expect(byController.json.error_description).toBe('client "ci-main" may not be used from 198.51.100.4: it is not among the client\'s allowed sources (jenkins-oidc clients update ci-main --allowed-sources ...)');
    // Even for a token that does not exist (RFC 7009 would answer 200): the secret is refused before any token is looked at.
    const unknown = await postForm(`${t.url}/token/revocation`, { token: 'jort_' + 'x'.repeat(43) }, { authorization: basic('ci-main', secret), ...via('198.51.100.4') });
    expect(unknown.status).toBe(401);
    expect((await exchange(t, token)).status).toBe(200);
    const [live] = await t.database.query('SELECT revoked_at FROM request_tokens WHERE id = $1', [minted.json.request_token_id]);
    expect(live).toEqual({ revoked_at: null });
    const byBuild = await postForm(`${t.url}/token/revocation`, { client_id: 'jenkins-build', token }, via('198.51.100.4'));
    expect(byBuild.status).toBe(200);
    const [row] = await t.database.query('SELECT revoked_by FROM request_tokens WHERE id = $1', [minted.json.request_token_id]);
    expect(row).toEqual({ revoked_by: 'jenkins-build' });
    const refused = await auditRows("SELECT event, client_name, sum((detail->>'count')::int)::int AS count FROM audit_events WHERE remote_addr = '198.51.100.4' AND event = 'revocation.refused' GROUP BY 1, 2");
    expect(refused).toEqual([{ event: 'revocation.refused', client_name: 'ci-main', count: 2 }]);
  });

  test('a wrong secret from an allowed address is still just a wrong secret', async () => {
    const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', 'jocs_wrong'), ...via('10.20.3.4') });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  test('bad ranges are refused when saved, naming the value', async () => {
    await expect(updateClient(t.database.db, 'ci-main', { allowedSources: ['10.0.0.0/40'] }, t.config.requestTokenMaxTtl)).rejects.toThrow('allowed_sources: "10.0.0.0/40": the prefix length must be 0-32');
    await expect(updateClient(t.database.db, 'ci-main', { allowedSources: ['jenkins.example.com'] }, t.config.requestTokenMaxTtl)).rejects.toThrow('allowed_sources: "jenkins.example.com" is not an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32');
    const [row] = await t.database.query("SELECT allowed_sources FROM clients WHERE name = 'ci-main'");
    expect(row).toEqual({ allowed_sources: ['10.20.0.0/16', '2001:db8::7/128'] });
  });
});

describe('rotate-secret --overlap', () => {
  test('both secrets work during the overlap, each use says which; the old one stops when it ends', async () => {
    const { secret: fresh, client } = await rotateClientSecret(t.database.db, 'ci-main', 3600);
    expect(client.previousSecret).toEqual({ hint: `jocs_…${secret.slice(-4)}`, expiresAt: expect.any(String) });
    const old = await mint(t, secret);
    const next = await mint(t, fresh);
    expect([old.status, next.status]).toEqual([200, 200]);
    const detail = async (id: unknown) => (await t.database.query("SELECT detail->>'client_secret' AS used FROM audit_events WHERE request_token_id = $1 AND event = 'request_token.issued'", [id]))[0];
    expect(await detail(old.json.request_token_id)).toEqual({ used: 'previous' });
    expect(await detail(next.json.request_token_id)).toEqual({ used: 'current' });
    // A revocation with the old secret says so too.
    const revoked = await postForm(`${t.url}/token/revocation`, { token: old.json.access_token as string }, { authorization: basic('ci-main', secret) });
    expect(revoked.status).toBe(200);
    expect(await t.database.query("SELECT detail FROM audit_events WHERE request_token_id = $1 AND event = 'request_token.revoked'", [old.json.request_token_id]))
      .toEqual([{ detail: { revoked_by: 'ci-main', client_secret: 'previous' } }]);
    // The rotation itself is in the trail.
    const [rotation] = await t.database.query("SELECT client_name, detail FROM audit_events WHERE event = 'client.secret_rotated' ORDER BY id DESC LIMIT 1");
    expect(rotation).toEqual({
      client_name: 'ci-main',
      detail: { new_secret: `jocs_…${fresh.slice(-4)}`, previous_secret: `jocs_…${secret.slice(-4)}`, previous_secret_valid_until: client.previousSecret!.expiresAt },
    });
    // The overlap ends (moved into the past here rather than waited for).
    await t.database.query("UPDATE clients SET previous_secret_expires_at = now() - interval '1 second' WHERE name = 'ci-main'");
    const late = await mint(t, secret);
    expect(late.status).toBe(401);
    expect(late.json).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    expect((await mint(t, fresh)).status).toBe(200);
    secret = fresh;
  });

  test('without --overlap the old secret stops at once, over HTTP (the CLI as an operator runs it)', async () => {
    const res = await runCli(['clients', 'rotate-secret', 'ci-main', '--json'], { DATABASE_URL: t.database.url });
    expect(res.code).toBe(0);
    const fresh = (JSON.parse(res.stdout) as { client_secret: string; client: { previousSecret: unknown } });
    expect(fresh.client.previousSecret).toBeNull();
    expect((await mint(t, secret)).status).toBe(401);
    expect((await mint(t, fresh.client_secret)).status).toBe(200);
    secret = fresh.client_secret;
  });

  test('an overlap beyond 30 days is refused by the CLI, naming the flag', async () => {
    const res = await runCli(['clients', 'rotate-secret', 'ci-main', '--overlap', '31d'], { DATABASE_URL: t.database.url });
    expect(res).toEqual({ code: 1, stdout: '', stderr: 'error: overlap: must be between 0 and 2592000 seconds (30d), got 2678400\n' });
  });
});

describe('mints from an address the controller never used', () => {
  test('the first mint from each address is marked new_source, counted, and listed by audit list --new-sources', async () => {
    const before = await metric();
    const ids: unknown[] = [];
    for (const from of ['192.0.2.10', '192.0.2.10', '192.0.2.11', '192.0.2.10']) {
      const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', secret), ...via(from) });
      expect(res.status).toBe(200);
      ids.push(res.json.request_token_id);
    }
    const marks = await t.database.query<{ id: string; new_source: boolean }>(
      "SELECT request_token_id AS id, detail ? 'new_source' AS new_source FROM audit_events WHERE request_token_id = ANY($1::uuid[]) AND event = 'request_token.issued'",
      [ids],
    );
    expect(ids.map((id) => marks.find((m) => m.id === id)!.new_source)).toEqual([true, false, true, false]);
    expect((await metric()) - before).toBe(2);
    const listed = await listAudit(t.database.db, { client: 'ci-main', newSources: true, limit: 100 });
    expect(listed.filter((r) => ids.includes(r.requestTokenId)).map((r) => r.remoteAddr)).toEqual(['192.0.2.11', '192.0.2.10']);
    const cli = await runCli(['audit', 'list', '--new-sources', '--client', 'ci-main', '--since', '1h'], { DATABASE_URL: t.database.url });
    expect(cli.code).toBe(0);
    const lines = cli.stdout.split('\n').filter((l) => l.includes('192.0.2.1'));
    expect(lines.map((l) => l.split(/\s{2,}/).slice(1, 3))).toEqual([['request_token.issued', 'new source'], ['request_token.issued', 'new source']]);
    const [sources] = await t.database.query("SELECT count(*)::int AS n FROM client_sources WHERE client_name = 'ci-main' AND address LIKE '192.0.2.%'");
    expect(sources).toEqual({ n: 2 });
  });
});

async function metric(): Promise<number> {
  const text = await (await fetch(t.service.metricsUrl!)).text();
  return sampleValue(text, 'jenkins_oidc_new_client_sources_total{client="ci-main"}') ?? 0;
}
