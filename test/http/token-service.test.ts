// The token service end to end over real HTTP and a real database: mint,
// exchange, GitHub-style /id-token, revocation, and the audit trail.
import { jwtVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { hashSecret } from '../../src/secrets/bearer-secrets.js';
import { registerClient, setClientEnabled } from '../../src/clients/commands.js';
import { addClient, basic, BUILD, decodeJwt, exchange, mint, postForm, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
let secret: string;

beforeAll(async () => {
  t = await startTestService();
  ({ secret } = await addClient(t, 'ci-main', { audiences: ['sts.amazonaws.com', 'vault'] }));
});
afterAll(async () => t.stop());

async function jwks(): Promise<JSONWebKeySet> {
  return (await (await fetch(`${t.url}/jwks`)).json()) as JSONWebKeySet;
}

/** Every claim of an ID token for sts.amazonaws.com of a BUILD ci-main minted, and `facts` besides: the whole payload. */
function buildTokenClaims(payload: { iat?: unknown }, facts: Record<string, unknown> = {}) {
  return {
    iss: t.config.issuer,
    sub: 'jenkins_instance:ci-main:job:folder/app',
    aud: 'sts.amazonaws.com',
    exp: (payload.iat as number) + 300,
    iat: expect.any(Number),
    nbf: payload.iat,
    jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    jenkins_instance: 'ci-main',
    jenkins_url: 'https://jenkins.example.com',
    job: 'folder/app',
    build_number: '42',
    build_url: 'https://jenkins.example.com/job/folder/job/app/42/',
    ...facts,
  };
}

describe('mint grant', () => {
  test('a controller mints a request token with the exact documented answer and a stored hash', async () => {
    const res = await mint(t, secret, { ref: 'refs/heads/main', commit: 'ABCDEF1234567', repository: 'https://git.example.com/app.git', triggered_by: 'alice', ttl: '600' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.json).toEqual({
      access_token: expect.stringMatching(/^jort_[A-Za-z0-9_-]{43}$/),
      issued_token_type: 'urn:jenkins-oidc:token-type:build-request-token',
      token_type: 'Bearer',
      expires_in: 600,
      request_token_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
    });
    const token = res.json.access_token as string;
    const rows = await t.database.query('SELECT * FROM request_tokens WHERE token_hash = $1', [hashSecret(token)]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: res.json.request_token_id,
      client_name: 'ci-main',
      job: 'folder/app',
      build_number: 42,
      audiences: ['sts.amazonaws.com', 'vault'],
      revoked_at: null,
      claims: {
        sub: 'jenkins_instance:ci-main:job:folder/app',
        jenkins_instance: 'ci-main',
        jenkins_url: 'https://jenkins.example.com',
        job: 'folder/app',
        build_number: '42',
        build_url: 'https://jenkins.example.com/job/folder/job/app/42/',
        ref: 'refs/heads/main',
        ref_type: 'branch',
        commit: 'abcdef1234567',
        repository: 'https://git.example.com/app.git',
        triggered_by: 'alice',
      },
    });
    // The token itself is stored nowhere.
    const dump = JSON.stringify(await t.database.query('SELECT * FROM request_tokens')) + JSON.stringify(await t.database.query('SELECT * FROM audit_events'));
    expect(dump).not.toContain(token);
    const lifetime = (new Date(rows[0]!.expires_at as string).getTime() - new Date(rows[0]!.created_at as string).getTime()) / 1000;
    expect(Math.round(lifetime)).toBe(600);
  });

  test('client_secret_post works as well as client_secret_basic', async () => {
    const res = await postForm(`${t.url}/token`, { grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', client_id: 'ci-main', client_secret: secret, ...BUILD });
    expect(res.status).toBe(200);
    expect(res.json.token_type).toBe('Bearer');
  });

  test('a wrong secret is invalid_client and mints nothing', async () => {
    // Refusals of other tests still counted in memory are written first: the rows after `since` are this test's.
    await t.service.audit.flush(true);
    const since = (await t.database.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM audit_events'))[0]!.id;
    const before = await t.database.query('SELECT count(*)::int AS n FROM request_tokens');
    const res = await mint(t, `${secret.slice(0, -1)}x`);
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    expect(await t.database.query('SELECT count(*)::int AS n FROM request_tokens')).toEqual(before);
    // An unauthenticated refusal: counted per address and minute, written as one row with its
    // count (here, at once). The client_id it claimed is not stored: it proved nothing.
    await t.service.audit.flush(true);
    const rows = await t.database.query(
      "SELECT event, client_name, remote_addr, detail - 'window_start' - 'window_end' AS detail FROM audit_events WHERE id > $1 AND event = 'token.refused'",
      [since],
    );
    expect(rows).toEqual([{ event: 'token.refused', client_name: null, remote_addr: '127.0.0.1', detail: { error: 'invalid_client', error_description: 'client authentication failed', count: 1 } }]);
  });

  test('ttl is capped by the client maximum', async () => {
    const { secret: s } = await addClient(t, 'ci-capped', { maxRequestTokenTtl: 900 });
    const res = await mint(t, s, { ttl: '86400' }, 'ci-capped');
    expect(res.status).toBe(200);
    expect(res.json.expires_in).toBe(900);
    const dflt = await mint(t, s, {}, 'ci-capped');
    expect(dflt.json.expires_in).toBe(900);
  });

  test('the default lifetime is REQUEST_TOKEN_TTL', async () => {
    const res = await mint(t, secret);
    expect(res.json.expires_in).toBe(3600);
  });

  test('build_url outside the registered Jenkins URL is refused and audited', async () => {
    const res = await mint(t, secret, { build_url: 'https://evil.example.com/job/folder/job/app/42/' });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      error: 'invalid_request',
      error_description: 'build_url: must lie under this client\'s Jenkins URL https://jenkins.example.com, got "https://evil.example.com/job/folder/job/app/42/"',
    });
    // Refusals are counted per caller, reason and minute (audit/trail.ts): flushed here rather than waited for.
    await t.service.audit.flush(true);
    const [row] = await t.database.query("SELECT * FROM audit_events WHERE event = 'request_token.refused' ORDER BY id DESC LIMIT 1");
    expect(row).toMatchObject({ client_name: 'ci-main', job: 'folder/app', detail: { error: 'invalid_request', error_description: res.json.error_description, count: 1 } });
  });

  test('audience narrows to a subset of the allowed audiences; others are invalid_target', async () => {
    const narrowed = await mint(t, secret, { audience: ['vault'] });
    expect(narrowed.status).toBe(200);
    const [row] = await t.database.query('SELECT audiences FROM request_tokens WHERE token_hash = $1', [hashSecret(narrowed.json.access_token as string)]);
    expect(row).toEqual({ audiences: ['vault'] });

    const refused = await mint(t, secret, { audience: ['vault', 'https://evil'] });
    expect(refused.status).toBe(400);
    expect(refused.json).toEqual({ error: 'invalid_target', error_description: 'audience "https://evil" is not allowed for this client (allowed: sts.amazonaws.com, vault)' });
  });

  test('a sub longer than 255 characters is refused at mint time', async () => {
    const { secret: s } = await addClient(t, 'ci-long-sub', { subClaims: ['jenkins_instance', 'job', 'build_url', 'repository'] });
    const res = await mint(t, s, { repository: `https://git.example.com/${'r'.repeat(200)}.git` }, 'ci-long-sub');
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_request');
    expect(res.json.error_description).toMatch(/^sub: the subject rendered from this client's sub claim keys \(jenkins_instance,job,build_url,repository\) is \d+ characters; AWS accepts at most 255/);
  });

  test('a pull-request build carries ref_type pull_request', async () => {
    const res = await mint(t, secret, { ref: 'refs/pull/12/head', pull_request: '12' });
    const ex = await exchange(t, res.json.access_token as string);
    const { payload } = decodeJwt(ex.json.access_token as string);
    expect(payload).toMatchObject({ ref: 'refs/pull/12/head', ref_type: 'pull_request', pull_request: '12' });
  });
});

describe('exchange grant', () => {
  test('a build exchanges its request token for an ID token AWS accepts', async () => {
    const minted = await mint(t, secret, { ref: 'refs/tags/v1.2.0', commit: 'abcdef1', triggered_by: 'timer' });
    const before = Math.floor(Date.now() / 1000);
    const res = await exchange(t, minted.json.access_token as string, { requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      access_token: expect.any(String),
      issued_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      token_type: 'N_A',
      expires_in: 300,
    });
    const jwt = res.json.access_token as string;
    const keys = await jwks();
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(keys), { issuer: t.config.issuer, audience: 'sts.amazonaws.com' });
    expect(protectedHeader).toEqual({ alg: 'RS256', kid: keys.keys[0]!.kid, typ: 'JWT' });
    expect(payload).toEqual(buildTokenClaims(payload, { ref: 'refs/tags/v1.2.0', ref_type: 'tag', commit: 'abcdef1', triggered_by: 'timer' }));
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload).not.toHaveProperty('azp');
    expect(Object.keys(payload).slice(0, 7)).toEqual(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti']);
    expect(jwt.length).toBeLessThan(20000);

    const [audit] = await t.database.query("SELECT * FROM audit_events WHERE event = 'id_token.issued' AND jti = $1", [payload.jti]);
    expect(audit).toMatchObject({
      client_name: 'ci-main',
      job: 'folder/app',
      build_number: 42,
      audience: 'sts.amazonaws.com',
      kid: keys.keys[0]!.kid,
      remote_addr: '127.0.0.1',
      detail: { sub: 'jenkins_instance:ci-main:job:folder/app' },
    });
  });

  test('requested_token_type jwt is accepted; any other is invalid_request', async () => {
    const minted = await mint(t, secret);
    const ok = await exchange(t, minted.json.access_token as string, { requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(ok.status).toBe(200);
    const bad = await exchange(t, minted.json.access_token as string, { requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: 'invalid_request',
      error_description: 'requested_token_type must be urn:ietf:params:oauth:token-type:id_token or urn:ietf:params:oauth:token-type:jwt',
    });
  });

  test('the audience can be chosen among the allowed ones only', async () => {
    const minted = await mint(t, secret);
    const vault = await exchange(t, minted.json.access_token as string, { audience: 'vault' });
    expect(decodeJwt(vault.json.access_token as string).payload.aud).toBe('vault');
    const other = await exchange(t, minted.json.access_token as string, { audience: 'other' });
    expect(other.status).toBe(400);
    expect(other.json).toEqual({ error: 'invalid_target', error_description: 'audience "other" is not allowed for this build request token (allowed: sts.amazonaws.com, vault)' });
  });

  test('unknown, revoked, expired and disabled-client tokens are invalid_grant, never a 500', async () => {
    const unknown = await exchange(t, 'jort_' + 'A'.repeat(43));
    expect(unknown.status).toBe(400);
    expect(unknown.json).toEqual({ error: 'invalid_grant', error_description: 'the build request token is not known to this service' });

    const garbage = await exchange(t, 'not-a-token');
    expect(garbage.json).toEqual(unknown.json);

    const expiredToken = (await mint(t, secret)).json.access_token as string;
    await t.database.query("UPDATE request_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [hashSecret(expiredToken)]);
    const expired = await exchange(t, expiredToken);
    expect(expired.json).toEqual({ error: 'invalid_grant', error_description: 'the build request token has expired' });

    const { secret: s } = await addClient(t, 'ci-to-disable');
    const live = (await mint(t, s, {}, 'ci-to-disable')).json.access_token as string;
    expect((await exchange(t, live)).status).toBe(200);
    await setClientEnabled(t.database.db, 'ci-to-disable', false);
    const disabled = await exchange(t, live);
    expect(disabled.status).toBe(400);
    expect(disabled.json).toEqual({ error: 'invalid_grant', error_description: 'the Jenkins client "ci-to-disable" that minted this token is disabled' });
    const remint = await mint(t, s, {}, 'ci-to-disable');
    expect(remint.status).toBe(401);
    expect(remint.json.error).toBe('invalid_client');
  });

  test('the exchange cannot add or change claims', async () => {
    // Minted with the required build facts only: commit, ref, pull_request,
    // replayed... are absent from the token, so a form naming them must not
    // add them, and one naming the claims it has must not change them.
    const minted = await mint(t, secret);
    const forged: Record<string, string> = {
      job: 'other/job', sub: 'forged', jenkins_instance: 'evil', jenkins_url: 'https://evil.example.com', build_number: '7', build_url: 'https://evil.example.com/job/x/7/',
      iss: 'https://evil.example.com', exp: '4102444800', nbf: '0', jti: 'forged', azp: 'sts.amazonaws.com',
      commit: 'deadbeef', ref: 'refs/heads/main', ref_type: 'branch', pull_request: '12', replayed: 'false', repository: 'https://evil.example.com/x.git', triggered_by: 'mallory',
      'https://aws.amazon.com/tags': '{"principal_tags":{"admin":["true"]}}', 'https://aws.amazon.com/source_identity': 'mallory',
    };
    const res = await exchange(t, minted.json.access_token as string, forged);
    expect(res.status).toBe(200);
    const { payload } = decodeJwt(res.json.access_token as string);
    expect(payload).toEqual(buildTokenClaims(payload));
  });

  test('a controller secret cannot be used for the exchange, and jenkins-build cannot mint', async () => {
    const minted = await mint(t, secret);
    const asController = await postForm(`${t.url}/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: minted.json.access_token as string,
      subject_token_type: 'urn:jenkins-oidc:token-type:build-request-token',
    }, { authorization: basic('ci-main', secret) });
    expect(asController.status).toBe(400);
    expect(asController.json).toEqual({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
    const buildMints = await postForm(`${t.url}/token`, { grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', client_id: 'jenkins-build', ...BUILD });
    expect(buildMints.status).toBe(400);
    expect(buildMints.json).toEqual({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  });

  test('an ID token never outlives its request token', async () => {
    const minted = await mint(t, secret);
    const [row] = await t.database.query<{ expires_at: Date }>("UPDATE request_tokens SET expires_at = date_trunc('second', now()) + interval '100 seconds' WHERE token_hash = $1 RETURNING expires_at", [hashSecret(minted.json.access_token as string)]);
    const res = await exchange(t, minted.json.access_token as string);
    expect(res.status).toBe(200);
    // Its exp is the request token's expiry, to the second, however long the exchange took;
    // expires_in is what was left of it when it was signed.
    const { payload } = decodeJwt(res.json.access_token as string);
    expect(payload.exp).toBe(row!.expires_at.getTime() / 1000);
    expect(res.json.expires_in).toBe((payload.exp as number) - (payload.iat as number));
    expect(res.json.expires_in).toBeLessThan(300);
  });
});

describe('the replayed claim', () => {
  let replaySecret: string;
  beforeAll(async () => {
    ({ secret: replaySecret } = await registerClient(
      t.database.db,
      { name: 'ci-replay', jenkinsUrl: 'https://jenkins.example.com', subClaims: ['jenkins_instance', 'job', 'replayed'], sessionTags: ['replayed'], claimTypes: 'json' },
      t.config.requestTokenMaxTtl,
    ));
  });
  const idToken = async (form: Record<string, string>) => {
    const minted = await mint(t, replaySecret, form, 'ci-replay');
    expect(minted.status).toBe(200);
    const res = await exchange(t, minted.json.access_token as string);
    expect(res.status).toBe(200);
    return decodeJwt(res.json.access_token as string).payload;
  };

  test.each([
    ['true', true],
    ['false', false],
  ])('replayed=%s is a JSON boolean (claim_types json, as clients from before 0.2 keep) after triggered_by, in sub and in the session tags', async (value, claim) => {
    const payload = await idToken({ triggered_by: 'alice', replayed: value });
    expect(payload.replayed).toBe(claim);
    expect(payload.sub).toBe(`jenkins_instance:ci-replay:job:folder/app:replayed:${value}`);
    expect(payload['https://aws.amazon.com/tags']).toEqual({ principal_tags: { replayed: [value] } });
    expect(Object.keys(payload)).toEqual([
      'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'jenkins_instance', 'jenkins_url', 'job', 'build_number', 'build_url', 'triggered_by', 'replayed',
      'https://aws.amazon.com/tags',
    ]);
  });

  test('without replayed (an older library) the claim and the tag are absent and sub has an empty value', async () => {
    const payload = await idToken({});
    expect(payload).not.toHaveProperty('replayed');
    expect(payload).not.toHaveProperty(['https://aws.amazon.com/tags']);
    expect(payload.sub).toBe('jenkins_instance:ci-replay:job:folder/app:replayed:');
  });

  test.each(['yes', 'True', '1', ''])('replayed=%j is refused with invalid_request naming replayed, and audited', async (value) => {
    const before = await t.database.query('SELECT count(*)::int AS n FROM request_tokens');
    const res = await mint(t, replaySecret, { replayed: value }, 'ci-replay');
    expect({ status: res.status, body: res.json }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: `replayed: must be true or false, got "${value}"` },
    });
    expect(await t.database.query('SELECT count(*)::int AS n FROM request_tokens')).toEqual(before);
    await t.service.audit.flush(true);
    const [row] = await t.database.query("SELECT event, client_name, detail FROM audit_events WHERE event = 'request_token.refused' ORDER BY id DESC LIMIT 1");
    expect(row).toMatchObject({ event: 'request_token.refused', client_name: 'ci-replay', detail: { error: 'invalid_request', error_description: `replayed: must be true or false, got "${value}"`, count: 1 } });
  });

  test('a job name with % and : renders one-to-one in sub (% -> %25 first, then : -> %3A)', async () => {
    const payload = await idToken({ job: 'folder/app/feature%2Fx:y', replayed: 'false' });
    expect(payload.job).toBe('folder/app/feature%2Fx:y');
    expect(payload.sub).toBe('jenkins_instance:ci-replay:job:folder/app/feature%252Fx%3Ay:replayed:false');
  });
});

describe('GET /id-token (GitHub Actions shape)', () => {
  test('answers {"value": jwt} for a URL that already carries a query string', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await fetch(`${t.url}/id-token?api-version=1&audience=vault`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { value: string };
    expect(Object.keys(body)).toEqual(['value']);
    const { payload } = await jwtVerify(body.value, createLocalJWKSet(await jwks()), { issuer: t.config.issuer, audience: 'vault' });
    expect(payload.job).toBe('folder/app');
  });

  test('without audience the first allowed audience is used', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await fetch(`${t.url}/id-token?api-version=1`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { value: string };
    expect(decodeJwt(body.value).payload.aud).toBe('sts.amazonaws.com');
  });

  test.each([
    ['no Authorization header', {}, 'send the build request token as Authorization: Bearer <token>'],
    ['a Basic header', { authorization: 'Basic Zm9vOmJhcg==' }, 'send the build request token as Authorization: Bearer <token>'],
    ['an unknown token', { authorization: `Bearer jort_${'B'.repeat(43)}` }, 'the build request token is not known to this service'],
  ])('%s gets 401 with a JSON error', async (_name, headers, description) => {
    const res = await fetch(`${t.url}/id-token?api-version=1`, { headers });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="${description}"`);
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: description });
  });

  test('an audience the token does not allow is invalid_target, 400 (not a dead token: no WWW-Authenticate)', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await fetch(`${t.url}/id-token?api-version=1&audience=other`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(await res.json()).toEqual({ error: 'invalid_target', error_description: 'audience "other" is not allowed for this build request token (allowed: sts.amazonaws.com, vault)' });
    // The token is still good for an audience it allows.
    expect((await fetch(`${t.url}/id-token?api-version=1&audience=vault`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  test('an audience given twice is invalid_request', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await fetch(`${t.url}/id-token?audience=a&audience=b`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'audience must be given at most once' });
  });
});

describe('revocation (RFC 7009)', () => {
  test('the controller revokes its build token; it stops working at once', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await postForm(`${t.url}/token/revocation`, { token }, { authorization: basic('ci-main', secret) });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    const after = await exchange(t, token);
    expect(after.json).toEqual({ error: 'invalid_grant', error_description: 'the build request token has been revoked' });
    const [row] = await t.database.query('SELECT revoked_by, revoked_at IS NOT NULL AS revoked FROM request_tokens WHERE token_hash = $1', [hashSecret(token)]);
    expect(row).toEqual({ revoked_by: 'ci-main', revoked: true });
    const [audit] = await t.database.query("SELECT * FROM audit_events WHERE event = 'request_token.revoked' ORDER BY id DESC LIMIT 1");
    expect(audit).toMatchObject({ client_name: 'ci-main', job: 'folder/app', detail: { revoked_by: 'ci-main' } });
  });

  test('a build revokes its own token as jenkins-build', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await postForm(`${t.url}/token/revocation`, { token, client_id: 'jenkins-build', token_type_hint: 'access_token' });
    expect(res.status).toBe(200);
    const res2 = await fetch(`${t.url}/id-token`, { headers: { authorization: `Bearer ${token}` } });
    expect(res2.status).toBe(401);
    expect(await res2.json()).toEqual({ error: 'invalid_token', error_description: 'the build request token has been revoked' });
    const [row] = await t.database.query('SELECT revoked_by FROM request_tokens WHERE token_hash = $1', [hashSecret(token)]);
    expect(row).toEqual({ revoked_by: 'jenkins-build' });
  });

  test("another controller cannot revoke a token it did not mint", async () => {
    const { secret: other } = await addClient(t, 'ci-other');
    const token = (await mint(t, secret)).json.access_token as string;
    const res = await postForm(`${t.url}/token/revocation`, { token }, { authorization: basic('ci-other', other) });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' });
    // A controller whose secret checked out proved who it is: its refusal keeps
    // its name, counted per caller, reason and minute like every refusal.
    await t.service.audit.flush(true);
    const rows = await t.database.query("SELECT event, client_name, job, build_number, audience, jti, kid, request_token_id, remote_addr, detail - 'window_start' - 'window_end' AS detail FROM audit_events WHERE event = 'revocation.refused' AND client_name = 'ci-other'");
    expect(rows).toEqual([{
      event: 'revocation.refused', client_name: 'ci-other', job: null, build_number: null, audience: null, jti: null, kid: null, request_token_id: null, remote_addr: '127.0.0.1',
      detail: { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token', count: 1 },
    }]);
    const [stored] = await t.database.query('SELECT revoked_at FROM request_tokens WHERE token_hash = $1', [hashSecret(token)]);
    expect(stored).toEqual({ revoked_at: null });
    expect((await exchange(t, token)).status).toBe(200);
  });

  test('revoking an unknown token is 200 and writes nothing (RFC 7009)', async () => {
    // Anonymous refusals wait in memory for their minute's row: flushed before
    // and after, so that one recorded by mistake would show in the count.
    const count = async () => {
      await t.service.audit.flush(true);
      return t.database.query('SELECT count(*)::int AS n FROM audit_events');
    };
    const before = await count();
    const res = await postForm(`${t.url}/token/revocation`, { token: `jort_${'C'.repeat(43)}`, client_id: 'jenkins-build' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(await count()).toEqual(before);
  });
});

describe('audit rows of refused ID tokens', () => {
  // Holding a token this service knows, even a dead one, says who the caller
  // is: the refusal keeps the token's client, build and id (counted per token,
  // reason and minute, as every refusal is, so a build cannot write without
  // bound). Only an unknown token is an anonymous refusal, counted per address
  // and minute with nothing of what it sent.
  type Entry = 'exchange' | 'GET /id-token';
  const ask = async (entry: Entry, token: string, audience?: string) => {
    if (entry === 'exchange') {
      const res = await exchange(t, token, audience ? { audience } : {});
      return { status: res.status, body: res.json };
    }
    const res = await fetch(`${t.url}/id-token?api-version=1${audience ? `&audience=${audience}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const refusedRows = async (requestTokenId: string) => {
    await t.service.audit.flush(true);
    return t.database.query(
      "SELECT event, client_name, job, build_number, audience, jti, kid, request_token_id, remote_addr, detail - 'window_start' - 'window_end' AS detail FROM audit_events WHERE event = 'id_token.refused' AND request_token_id = $1",
      [requestTokenId],
    );
  };

  const cases: [string, (token: string, client: string) => Promise<unknown>, string | undefined, string, (client: string) => string][] = [
    ['revoked', (token, client) => postForm(`${t.url}/token/revocation`, { token }, { authorization: basic(client, secrets[client]!) }), undefined, 'invalid_grant', () => 'the build request token has been revoked'],
    ['expired', (token) => t.database.query("UPDATE request_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [hashSecret(token)]), undefined, 'invalid_grant', () => 'the build request token has expired'],
    ['minted by a disabled client', (_token, client) => setClientEnabled(t.database.db, client, false), undefined, 'invalid_grant', (client) => `the Jenkins client "${client}" that minted this token is disabled`],
    ['asked for an audience it does not allow', async () => undefined, 'other', 'invalid_target', () => 'audience "other" is not allowed for this build request token (allowed: sts.amazonaws.com, vault)'],
  ];
  const secrets: Record<string, string> = {};
  let n = 0;

  describe.each(['exchange', 'GET /id-token'] as Entry[])('%s', (entry) => {
    test.each(cases)('a token %s: its row keeps client, build, audience and token id', async (_name, kill, audience, error, description) => {
      const client = `ci-refused-${(n += 1)}`;
      ({ secret: secrets[client] } = await addClient(t, client, { audiences: ['sts.amazonaws.com', 'vault'] }));
      const token = (await mint(t, secrets[client]!, {}, client)).json.access_token as string;
      const [{ id }] = (await t.database.query<{ id: string }>('SELECT id FROM request_tokens WHERE token_hash = $1', [hashSecret(token)])) as [{ id: string }];
      await kill(token, client);

      const answer = await ask(entry, token, audience);
      const status = entry === 'GET /id-token' && error === 'invalid_grant' ? 401 : 400;
      const body = entry === 'GET /id-token' && error === 'invalid_grant' ? { error: 'invalid_token', error_description: description(client) } : { error, error_description: description(client) };
      expect(answer).toEqual({ status, body });
      // Exactly one row with a count of one (oidc-provider's own error event does not record it again).
      expect(await refusedRows(id)).toEqual([{
        event: 'id_token.refused',
        client_name: client,
        job: 'folder/app',
        build_number: 42,
        audience: audience ?? 'sts.amazonaws.com',
        jti: null,
        kid: null,
        request_token_id: id,
        remote_addr: '127.0.0.1',
        // The error the caller was given: a bearer token's is invalid_token (RFC 6750).
        detail: { error: body.error, error_description: description(client), count: 1 },
      }]);
    });

    test('an unknown token proves nothing: one anonymous row per address and minute, with its count', async () => {
      await t.service.audit.flush(true);
      const since = (await t.database.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM audit_events'))[0]!.id;
      const unknown = `jort_${'D'.repeat(43)}`;
      for (let i = 0; i < 3; i += 1) expect((await ask(entry, unknown)).status).toBe(entry === 'exchange' ? 400 : 401);
      await t.service.audit.flush(true);
      const rows = await t.database.query<{ window: string; count: number } & Record<string, unknown>>(
        "SELECT event, client_name, job, request_token_id, remote_addr, detail - 'window_start' - 'window_end' - 'count' AS detail, detail->>'window_start' AS window, (detail->>'count')::int AS count FROM audit_events WHERE id > $1",
        [since],
      );
      // One row per minute window the three fell in (two if a minute ended between them), their counts adding up.
      expect(rows.map(({ window: _w, count: _c, ...row }) => row)).toEqual(rows.map(() => ({
        event: 'id_token.refused', client_name: null, job: null, request_token_id: null, remote_addr: '127.0.0.1',
        detail: { error: entry === 'exchange' ? 'invalid_grant' : 'invalid_token', error_description: 'the build request token is not known to this service' },
      })));
      expect(new Set(rows.map((r) => r.window)).size).toBe(rows.length);
      expect(rows.length).toBeLessThanOrEqual(2);
      expect(rows.reduce((sum, r) => sum + r.count, 0)).toBe(3);
    });
  });
});

describe('logs', () => {
  test('one line per request with route, client, outcome and latency; no secrets or tokens', async () => {
    const token = (await mint(t, secret)).json.access_token as string;
    const idToken = (await exchange(t, token)).json.access_token as string;
    const lines = t.logs.filter((l) => l.msg === 'request' && l.route === 'token');
    expect(lines.at(-1)).toEqual({
      level: 30, time: expect.any(Number), service: 'jenkins-oidc', msg: 'request',
      method: 'POST', route: 'token', status: 200, client: 'ci-main', outcome: 'ok', ms: expect.any(Number), ip: '127.0.0.1',
    });
    const raw = t.rawLogs();
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(token);
    expect(raw).not.toContain(idToken.split('.')[2]);
  });
});
