// Registering and managing Jenkins controllers: what is stored, what is shown.
import { createHash } from 'node:crypto';
import { listClients, registerClient, removeClient, rotateClientSecret, setClientEnabled, showClient, updateClient } from '../../src/clients/commands.js';
import { InputError } from '../../src/claims/text.js';
import { DomainError, NotFoundError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let d: TestDatabase;
beforeAll(async () => {
  d = await createTestDatabase();
});
afterAll(async () => d.drop());

const MAX = 86400;

test('add stores only a SHA-256 of the secret, with prefix and last four for humans', async () => {
  const { client, secret } = await registerClient(d.db, { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com/' }, MAX);
  expect(secret).toMatch(/^jocs_[A-Za-z0-9_-]{43}$/);
  expect(client).toEqual({
    name: 'ci-main',
    jenkinsUrl: 'https://jenkins.example.com',
    audiences: ['sts.amazonaws.com'],
    subClaims: ['jenkins_instance', 'job'],
    subTemplate: null,
    claimTypes: 'string',
    maxRequestTokenTtl: 86400,
    sessionTags: [],
    transitiveTags: [],
    sourceIdentity: null,
    allowedSources: [],
    enabled: true,
    secretHint: `jocs_…${secret.slice(-4)}`,
    secretRotatedAt: expect.any(String),
    previousSecret: null,
    createdAt: expect.any(String),
    updatedAt: expect.any(String),
  });
  const [row] = await d.query('SELECT secret_hash, secret_prefix, secret_last4 FROM clients WHERE name = $1', ['ci-main']);
  expect(row).toEqual({ secret_hash: createHash('sha256').update(secret).digest('hex'), secret_prefix: 'jocs_', secret_last4: secret.slice(-4) });
  expect(JSON.stringify(await d.query('SELECT * FROM clients'))).not.toContain(secret);
});

test.each<[string, Parameters<typeof registerClient>[1], string]>([
  ['an upper-case name', { name: 'CI', jenkinsUrl: 'https://j' }, 'name: must be a slug of 2-63 lowercase letters, digits and dashes, starting and ending with a letter or digit (it becomes client_id and jenkins_instance)'],
  ['the reserved build client name', { name: 'jenkins-build', jenkinsUrl: 'https://j' }, 'name: "jenkins-build" is reserved for the built-in build client'],
  ['a Jenkins URL with a query', { name: 'ci-x', jenkinsUrl: 'https://j/?a=1' }, 'jenkins_url: must not contain a query string'],
  ['an unknown sub claim', { name: 'ci-x', jenkinsUrl: 'https://j', subClaims: ['job', 'email'] }, 'sub_claims: "email" is not a build claim; choose from jenkins_instance, jenkins_url, job, build_number, build_url, ref, ref_type, commit, repository, pull_request, triggered_by, replayed, restarted_from'],
  ['a duplicated sub claim', { name: 'ci-x', jenkinsUrl: 'https://j', subClaims: ['jenkins_instance', 'job', 'job'] }, 'sub_claims: "job" is listed twice'],
  ['a sub without the controller', { name: 'ci-x', jenkinsUrl: 'https://j', subClaims: ['job', 'ref'] }, 'sub_claims: must include jenkins_instance (or jenkins_url), or builds of another controller could present the same sub'],
  ['an audience with a space', { name: 'ci-x', jenkinsUrl: 'https://j', audiences: ['a b'] }, 'audiences: "a b" must not contain spaces or commas'],
  ['a max TTL above the service ceiling', { name: 'ci-x', jenkinsUrl: 'https://j', maxRequestTokenTtl: 90000 }, 'max_request_token_ttl: must be whole seconds between 60 and REQUEST_TOKEN_MAX_TTL (86400), got 90000'],
])('add refuses %s and writes nothing', async (_name, input, message) => {
  await expect(registerClient(d.db, input, MAX)).rejects.toThrow(new InputError(message.split(': ')[0]!, message.slice(message.indexOf(': ') + 2)));
  expect(await d.query("SELECT name FROM clients WHERE name <> 'ci-main'")).toEqual([]);
});

test('a second add of the same name is refused with advice', async () => {
  await expect(registerClient(d.db, { name: 'ci-main', jenkinsUrl: 'https://x' }, MAX)).rejects.toThrow(new DomainError('client "ci-main" already exists'));
});

test('update changes only what was given; rotate-secret replaces the hash', async () => {
  const before = await showClient(d.db, 'ci-main');
  const updated = await updateClient(d.db, 'ci-main', { audiences: ['sts.amazonaws.com', 'vault'], subClaims: ['jenkins_url', 'job', 'ref'] }, MAX);
  expect(updated).toMatchObject({ audiences: ['sts.amazonaws.com', 'vault'], subClaims: ['jenkins_url', 'job', 'ref'], jenkinsUrl: before.jenkinsUrl });
  await expect(updateClient(d.db, 'ci-main', {}, MAX)).rejects.toThrow(new DomainError('nothing to update'));
  const [{ secret_hash: oldHash }] = (await d.query<{ secret_hash: string }>("SELECT secret_hash FROM clients WHERE name = 'ci-main'")) as [{ secret_hash: string }];
  const { secret } = await rotateClientSecret(d.db, 'ci-main');
  const [row] = await d.query("SELECT secret_hash FROM clients WHERE name = 'ci-main'");
  expect(row).toEqual({ secret_hash: createHash('sha256').update(secret).digest('hex') });
  expect(row!.secret_hash).not.toBe(oldHash);
});

test('disable, enable, list and remove', async () => {
  expect((await setClientEnabled(d.db, 'ci-main', false)).enabled).toBe(false);
  expect((await setClientEnabled(d.db, 'ci-main', true)).enabled).toBe(true);
  await registerClient(d.db, { name: 'ci-b', jenkinsUrl: 'https://b.example.com' }, MAX);
  expect((await listClients(d.db)).map((c) => c.name)).toEqual(['ci-b', 'ci-main']);
  expect(await removeClient(d.db, 'ci-b')).toEqual({ name: 'ci-b', requestTokensRemoved: 0 });
  await expect(showClient(d.db, 'ci-b')).rejects.toThrow(new NotFoundError('client "ci-b"'));
});

test('claim types and a sub template are set, changed and removed; a bad one is refused before it is stored', async () => {
  await registerClient(d.db, { name: 'ci-rp', jenkinsUrl: 'https://j.example.com', claimTypes: 'json', subTemplate: '{jenkins_instance}:{job|sha256}' }, MAX);
  expect(await d.query("SELECT claim_types, sub_template FROM clients WHERE name = 'ci-rp'")).toEqual([{ claim_types: 'json', sub_template: '{jenkins_instance}:{job|sha256}' }]);
  expect(await updateClient(d.db, 'ci-rp', { claimTypes: 'string', subTemplate: '' }, MAX)).toMatchObject({ claimTypes: 'string', subTemplate: null });
  await expect(updateClient(d.db, 'ci-rp', { subTemplate: '{job}' }, MAX)).rejects.toThrow(
    'sub_template: must include {jenkins_instance} (or {jenkins_url}), unhashed, or builds of another controller could present the same sub',
  );
  await expect(updateClient(d.db, 'ci-rp', { claimTypes: 'number' }, MAX)).rejects.toThrow('claim_types: must be string');
  expect(await d.query("SELECT claim_types, sub_template FROM clients WHERE name = 'ci-rp'")).toEqual([{ claim_types: 'string', sub_template: null }]);
});
