// AWS claims end to end: client settings stored through a migration, computed
// at mint into the stored snapshot, copied verbatim by the exchange.
import { registerClient, updateClient } from '../../src/clients/commands.js';
import { InputError } from '../../src/claims/text.js';
import { decodeJwt, exchange, mint, startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => t.stop());

test('session tags and source identity are minted into the snapshot and carried by the ID token', async () => {
  const { secret } = await registerClient(
    t.database.db,
    { name: 'ci-tags', jenkinsUrl: 'https://jenkins.example.com', sessionTags: ['jenkins_instance', 'job', 'ref'], transitiveTags: ['jenkins_instance'], sourceIdentity: '{jenkins_instance}-{build_number}' },
    t.config.requestTokenMaxTtl,
  );
  const minted = await mint(t, secret, { ref: 'refs/heads/main' }, 'ci-tags');
  expect(minted.status).toBe(200);
  const [row] = await t.database.query<{ claims: Record<string, unknown> }>("SELECT claims FROM request_tokens WHERE client_name = 'ci-tags'");
  expect(row!.claims['https://aws.amazon.com/tags']).toEqual({
    principal_tags: { jenkins_instance: ['ci-tags'], job: ['folder/app'], ref: ['refs/heads/main'] },
    transitive_tag_keys: ['jenkins_instance'],
  });
  expect(row!.claims['https://aws.amazon.com/source_identity']).toBe('ci-tags-42');

  // A settings change after mint does not alter a token already minted.
  await updateClient(t.database.db, 'ci-tags', { sessionTags: [], sourceIdentity: '' }, t.config.requestTokenMaxTtl);
  const exchanged = await exchange(t, minted.json.access_token as string);
  expect(exchanged.status).toBe(200);
  const { payload } = decodeJwt(exchanged.json.access_token as string);
  expect(Object.keys(payload)).toEqual([
    'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'jenkins_instance', 'jenkins_url', 'job', 'build_number', 'build_url', 'ref', 'ref_type',
    'https://aws.amazon.com/tags', 'https://aws.amazon.com/source_identity',
  ]);
  expect(payload['https://aws.amazon.com/source_identity']).toBe('ci-tags-42');

  const later = await mint(t, secret, {}, 'ci-tags');
  const plain = decodeJwt((await exchange(t, later.json.access_token as string)).json.access_token as string).payload;
  expect(plain['https://aws.amazon.com/tags']).toBeUndefined();
  expect(plain['https://aws.amazon.com/source_identity']).toBeUndefined();
});

test('update keeps transitive tags a subset of session tags and checks the template', async () => {
  await registerClient(t.database.db, { name: 'ci-upd', jenkinsUrl: 'https://jenkins.example.com', sessionTags: ['job', 'ref'], transitiveTags: ['ref'] }, t.config.requestTokenMaxTtl);
  await expect(updateClient(t.database.db, 'ci-upd', { sessionTags: ['job'] }, t.config.requestTokenMaxTtl)).rejects.toThrow(
    new InputError('transitive_tags', '"ref" is not one of this client\'s session tags (job); a transitive tag must also be a session tag'),
  );
  await expect(updateClient(t.database.db, 'ci-upd', { sourceIdentity: '{job}#{build_number}' }, t.config.requestTokenMaxTtl)).rejects.toThrow(
    new InputError('source_identity', '"#" is not allowed; AWS accepts only letters, digits and _ + = , . @ - in a source identity'),
  );
  const updated = await updateClient(t.database.db, 'ci-upd', { sessionTags: ['job'], transitiveTags: [] }, t.config.requestTokenMaxTtl);
  expect(updated).toMatchObject({ sessionTags: ['job'], transitiveTags: [], sourceIdentity: null });
  const [row] = await t.database.query("SELECT session_tag_claims, transitive_tag_keys, source_identity FROM clients WHERE name = 'ci-upd'");
  expect(row).toEqual({ session_tag_claims: ['job'], transitive_tag_keys: [], source_identity: null });
});
