// The calls the pipeline library makes as the controller, over real HTTP:
// revoking a block's request token by its id (nothing read back from the
// agent), an ID token minted in one call (jenkinsOidcToken), restarted builds,
// and mint warnings.
import { updateClient } from '../../src/clients/commands.js';
import { addClient, basic, BUILD, decodeJwt, exchange, mint, postForm, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
let secret: string;
let other: string;

beforeAll(async () => {
  t = await startTestService();
  ({ secret } = await addClient(t, 'ci-main', { audiences: ['sts.amazonaws.com', 'vault'] }));
  ({ secret: other } = await addClient(t, 'ci-other'));
});
afterAll(async () => t.stop());

const revokeById = (id: string, form: Record<string, string>, auth = basic('ci-main', secret)) =>
  postForm(`${t.url}/token/revocation`, { token: id, ...form }, { authorization: auth });

describe('revocation by request token id', () => {
  test('the controller revokes its build\'s token by id; the token is dead, the row says who and with which secret', async () => {
    const minted = await mint(t, secret);
    const id = minted.json.request_token_id as string;
    const res = await revokeById(id, { job: BUILD.job, build_number: BUILD.build_number });
    expect([res.status, res.text]).toEqual([200, '']);
    expect(await t.database.query('SELECT revoked_by FROM request_tokens WHERE id = $1', [id])).toEqual([{ revoked_by: 'ci-main' }]);
    expect(await t.database.query("SELECT client_name, job, build_number, detail FROM audit_events WHERE request_token_id = $1 AND event = 'request_token.revoked'", [id]))
      .toEqual([{ client_name: 'ci-main', job: 'folder/app', build_number: 42, detail: { revoked_by: 'ci-main', client_secret: 'current' } }]);
    const after = await exchange(t, minted.json.access_token as string);
    expect([after.status, after.json.error_description]).toEqual([400, 'the build request token has been revoked']);
    // Again: idempotent, one audit row.
    expect((await revokeById(id, { job: BUILD.job, build_number: BUILD.build_number })).status).toBe(200);
    expect(await t.database.query("SELECT count(*)::int AS n FROM audit_events WHERE request_token_id = $1 AND event = 'request_token.revoked'", [id])).toEqual([{ n: 1 }]);
  });

  test.each([
    ['another build of the same controller', { job: BUILD.job, build_number: '43' }, 'request token ID was not minted for folder/app #43'],
    ['another job', { job: 'prod/deploy', build_number: BUILD.build_number }, 'request token ID was not minted for prod/deploy #42'],
    ['no build named', {}, 'revoking a request token by its id needs the job and build_number of the build it was minted for'],
    ['a malformed build number', { job: BUILD.job, build_number: '0x2a' }, 'build_number: must be a positive whole number up to 2147483647, got "0x2a"'],
  ])('an id is refused for %s: the token stays live', async (_name, form, description) => {
    const minted = await mint(t, secret);
    const id = minted.json.request_token_id as string;
    const res = await revokeById(id, form);
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_request', error_description: description.replace('ID', id) });
    expect(await t.database.query('SELECT revoked_at FROM request_tokens WHERE id = $1', [id])).toEqual([{ revoked_at: null }]);
    expect((await exchange(t, minted.json.access_token as string)).status).toBe(200);
  });

  test('only the controller that minted it: not another controller, not the build (an id is no proof of possession)', async () => {
    const minted = await mint(t, secret);
    const id = minted.json.request_token_id as string;
    const byOther = await revokeById(id, { job: BUILD.job, build_number: BUILD.build_number }, basic('ci-other', other));
    expect(byOther.json).toEqual({ error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' });
    const byBuild = await postForm(`${t.url}/token/revocation`, { client_id: 'jenkins-build', token: id, job: BUILD.job, build_number: BUILD.build_number });
    expect(byBuild.json).toEqual({ error: 'invalid_request', error_description: 'a build revokes its request token by presenting the token itself; revoking by id is for the controller that minted it' });
    expect(await t.database.query('SELECT revoked_at FROM request_tokens WHERE id = $1', [id])).toEqual([{ revoked_at: null }]);
  });

  test('an unknown id answers 200 and revokes nothing (RFC 7009)', async () => {
    const res = await revokeById('00000000-0000-4000-8000-000000000000', { job: BUILD.job, build_number: BUILD.build_number });
    expect([res.status, res.text]).toEqual([200, '']);
  });
});

describe('an ID token in one call (requested_token_type=id_token)', () => {
  test('the controller gets one ID token for one audience; its request token is already revoked; three audit rows', async () => {
    const res = await mint(t, secret, { audience: 'vault', requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ access_token: expect.stringMatching(/^eyJ/), issued_token_type: 'urn:ietf:params:oauth:token-type:id_token', token_type: 'N_A', expires_in: expect.any(Number) });
    const { payload } = decodeJwt(res.json.access_token as string);
    expect(payload).toMatchObject({ aud: 'vault', job: 'folder/app', build_number: '42', jenkins_instance: 'ci-main', sub: 'jenkins_instance:ci-main:job:folder/app' });
    const rows = await t.database.query<{ event: string; request_token_id: string }>(
      "SELECT event, request_token_id FROM audit_events WHERE request_token_id = (SELECT request_token_id FROM audit_events WHERE jti = $1) ORDER BY id",
      [payload.jti],
    );
    expect(rows.map((r) => r.event)).toEqual(['request_token.issued', 'id_token.issued', 'request_token.revoked']);
    const [token] = await t.database.query<{ revoked_by: string; lifetime: unknown; expires_at: Date }>(
      'SELECT revoked_by, expires_at - created_at AS lifetime, expires_at FROM request_tokens WHERE id = $1', [rows[0]!.request_token_id]);
    expect({ revoked_by: token!.revoked_by, lifetime: token!.lifetime }).toEqual({ revoked_by: 'ci-main', lifetime: { minutes: 5 } });
    // The ID token ends when its request token does, in whole seconds: the
    // request token was minted (milliseconds and all) a moment before the ID
    // token's iat, so when a second boundary falls between the two the answer
    // is 299, not 300 (CI saw it). Exact either way: derived from the stored row.
    const iat = payload.iat as number;
    const exp = Math.min(iat + 300, Math.floor(token!.expires_at.getTime() / 1000));
    expect([payload.exp, res.json.expires_in]).toEqual([exp, exp - iat]);
  });

  test.each([
    ['no audience (two allowed)', {}, 'invalid_target', 'an ID token is for exactly one audience; name it with audience (allowed: sts.amazonaws.com, vault)'],
    ['two audiences', { audience: ['vault', 'sts.amazonaws.com'] }, 'invalid_target', 'an ID token is for exactly one audience; name it with audience (allowed: sts.amazonaws.com, vault)'],
    ['an unknown token type', { audience: 'vault', requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' }, 'invalid_request',
      'requested_token_type must be urn:jenkins-oidc:token-type:build-request-token (the default) or urn:ietf:params:oauth:token-type:id_token'],
  ])('refused: %s, nothing minted', async (_name, form, error, description) => {
    const before = await t.database.query('SELECT count(*)::int AS n FROM request_tokens');
    const res = await mint(t, secret, { requested_token_type: 'urn:ietf:params:oauth:token-type:id_token', ...form });
    expect([res.status, res.json]).toEqual([400, { error, error_description: description }]);
    expect(await t.database.query('SELECT count(*)::int AS n FROM request_tokens')).toEqual(before);
  });
});

describe('restarted builds', () => {
  test('restarted_from is a claim of every ID token, usable in sub', async () => {
    await updateClient(t.database.db, 'ci-main', { subClaims: ['jenkins_instance', 'job', 'restarted_from'] }, t.config.requestTokenMaxTtl);
    try {
      const minted = await mint(t, secret, { replayed: 'false', restarted_from: '41' });
      expect(minted.status).toBe(200);
      const { payload } = decodeJwt((await exchange(t, minted.json.access_token as string)).json.access_token as string);
      expect(payload).toMatchObject({ replayed: 'false', restarted_from: '41', sub: 'jenkins_instance:ci-main:job:folder/app:restarted_from:41' });
      const fresh = decodeJwt((await exchange(t, (await mint(t, secret)).json.access_token as string)).json.access_token as string).payload;
      expect(fresh.sub).toBe('jenkins_instance:ci-main:job:folder/app:restarted_from:');
      expect(fresh).not.toHaveProperty('restarted_from');
    } finally {
      await updateClient(t.database.db, 'ci-main', { subClaims: ['jenkins_instance', 'job'] }, t.config.requestTokenMaxTtl);
    }
  });

  test.each([
    ['a later build', '43', 'restarted_from: must be an earlier build than 42, got 43'],
    ['itself', '42', 'restarted_from: must be an earlier build than 42, got 42'],
    ['not a number', 'x', 'restarted_from: must be a positive whole number up to 2147483647, got "x"'],
  ])('restarted_from refused: %s', async (_name, value, description) => {
    const res = await mint(t, secret, { restarted_from: value });
    expect([res.status, res.json]).toEqual([400, { error: 'invalid_request', error_description: description }]);
  });
});

describe('mint warnings', () => {
  test('a session tag too long for AWS is left out, and the mint says so (and keeps it with the audit row)', async () => {
    await updateClient(t.database.db, 'ci-main', { sessionTags: ['job', 'jenkins_instance'] }, t.config.requestTokenMaxTtl);
    try {
      const job = `team/${'#'.repeat(100)}`;
      const res = await mint(t, secret, { job, build_url: `https://jenkins.example.com/job/team/42/` });
      expect(res.status).toBe(200);
      const warning = 'session tag job left out: its value is 305 characters once escaped for AWS, which allows 256';
      expect(res.json.warnings).toEqual([warning]);
      const { payload } = decodeJwt((await exchange(t, res.json.access_token as string)).json.access_token as string);
      expect(payload['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'] } });
      expect(await t.database.query("SELECT detail->'warnings' AS warnings FROM audit_events WHERE request_token_id = $1 AND event = 'request_token.issued'", [res.json.request_token_id]))
        .toEqual([{ warnings: [warning] }]);
    } finally {
      await updateClient(t.database.db, 'ci-main', { sessionTags: [] }, t.config.requestTokenMaxTtl);
    }
  });
});
