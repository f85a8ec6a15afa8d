// Session tags and source identity: the shapes AWS STS reads, its character
// sets and lengths, and what a client may configure.
import { checkSessionTagClaims, checkSourceIdentityTemplate, checkTransitiveTagKeys, escapeTagValue, renderSessionTags, renderSourceIdentity, unescapeTagValue } from '../../src/claims/aws.js';
import { buildClaims } from '../../src/claims/build-claims.js';
import { refusal } from '../helpers/refusal.js';


const CLIENT = { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com', subClaims: ['jenkins_instance', 'job'] as const };
const BUILD = { job: 'team/app/main', build_number: '42', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/', ref: 'refs/heads/main' };

describe('session tags claim', () => {
  test('chosen claims become principal_tags with one value each, transitive keys listed', () => {
    const claims = buildClaims(BUILD, { ...CLIENT, aws: { sessionTagClaims: ['jenkins_instance', 'job', 'ref_type'], transitiveTagKeys: ['jenkins_instance'], sourceIdentity: null } });
    expect(claims['https://aws.amazon.com/tags']).toEqual({
      principal_tags: { jenkins_instance: ['ci-main'], job: ['team/app/main'], ref_type: ['branch'] },
      transitive_tag_keys: ['jenkins_instance'],
    });
    expect(claims['https://aws.amazon.com/source_identity']).toBeUndefined();
  });
  test('replayed becomes a session tag "true" or "false" and can be part of the source identity', () => {
    const aws = { sessionTagClaims: ['jenkins_instance', 'replayed'] as const, transitiveTagKeys: ['replayed'] as const, sourceIdentity: '{jenkins_instance}-{build_number}-replayed-{replayed}' };
    const replayed = buildClaims({ ...BUILD, replayed: 'true' }, { ...CLIENT, aws });
    expect(replayed['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'], replayed: ['true'] }, transitive_tag_keys: ['replayed'] });
    expect(replayed['https://aws.amazon.com/source_identity']).toBe('ci-main-42-replayed-true');
    const fresh = buildClaims({ ...BUILD, replayed: 'false' }, { ...CLIENT, aws });
    expect(fresh['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'], replayed: ['false'] }, transitive_tag_keys: ['replayed'] });
    expect(fresh['https://aws.amazon.com/source_identity']).toBe('ci-main-42-replayed-false');
    const older = buildClaims(BUILD, { ...CLIENT, aws });
    expect(older['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'] } });
    expect(older['https://aws.amazon.com/source_identity']).toBe('ci-main-42-replayed-');
    expect(checkSessionTagClaims(['replayed'])).toEqual(['replayed']);
    expect(checkSourceIdentityTemplate('{job}-{replayed}')).toBe('{job}-{replayed}');
  });
  test('a claim the build did not carry is left out; no tags at all means no claim', () => {
    expect(renderSessionTags({ sessionTagClaims: ['job', 'commit'], transitiveTagKeys: ['commit'], sourceIdentity: null }, { job: 'a' })).toEqual({ principal_tags: { job: ['a'] } });
    expect(renderSessionTags({ sessionTagClaims: ['commit'], transitiveTagKeys: [], sourceIdentity: null }, { job: 'a' })).toBeUndefined();
  });
  test.each([
    ['letters, spaces, digits and _.:/+-@ are kept', 'Équipe 7/app_x.y:z1+2-3@a', 'Équipe 7/app_x.y:z1+2-3@a'],
    ['anything else is =XX per UTF-8 byte', 'a~b#c%d?e!f', 'a=7Eb=23c=25d=3Fe=21f'],
    ['"=" itself is escaped, so the escape is one-to-one', 'k=v', 'k=3Dv'],
    ['outside the BMP: every byte', 'ship 🚢', 'ship =F0=9F=9A=A2'],
  ])('tag values: %s', (_name, value, expected) => {
    expect(escapeTagValue(value)).toBe(expected);
    expect(unescapeTagValue(escapeTagValue(value))).toBe(value);
  });
  test('distinct values give distinct tags: the branch feature/login is not the branch feature_2Flogin', () => {
    const aws = { sessionTagClaims: ['job'] as const, transitiveTagKeys: [] as const, sourceIdentity: null };
    const slash = buildClaims({ ...BUILD, job: 'team/app/feature%2Flogin' }, { ...CLIENT, aws });
    const underscore = buildClaims({ ...BUILD, job: 'team/app/feature_2Flogin' }, { ...CLIENT, aws });
    expect(slash['https://aws.amazon.com/tags']).toEqual({ principal_tags: { job: ['team/app/feature=252Flogin'] } });
    expect(underscore['https://aws.amazon.com/tags']).toEqual({ principal_tags: { job: ['team/app/feature_2Flogin'] } });
    // Everything AWS counts as one character in 256: code points of the escaped form, over values seen in the wild.
    const values = ['a', 'a_', 'a=5F', 'a=', 'a=3D', '%', '=25', 'feature/x', 'feature%2Fx', 'feature=2Fx', 'ü', 'u\u0308'];
    const tags = values.map((v) => escapeTagValue(v));
    expect(new Set(tags).size).toBe(values.length);
    for (const t of tags) expect(t).toMatch(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u);
  });
  test('a value too long for AWS once escaped is left out with a warning, never cut', () => {
    const warnings: string[] = [];
    const aws = { sessionTagClaims: ['jenkins_instance', 'job'] as const, transitiveTagKeys: ['job'] as const, sourceIdentity: null };
    // (sub without the job: a 256-character job would not fit AWS's 255-character sub.)
    const client = { ...CLIENT, subClaims: ['jenkins_instance'] as const, aws };
    const fits = buildClaims({ ...BUILD, job: `team/${'x'.repeat(251)}` }, client, warnings);
    expect(fits['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'], job: [`team/${'x'.repeat(251)}`] }, transitive_tag_keys: ['job'] });
    expect(warnings).toEqual([]);
    // 200 characters, but each '#' is three once escaped: 3 x 100 + 100 = 400.
    const long = buildClaims({ ...BUILD, job: `team/${'#x'.repeat(100)}` }, client, warnings);
    expect(long['https://aws.amazon.com/tags']).toEqual({ principal_tags: { jenkins_instance: ['ci-main'] } });
    expect(warnings).toEqual(['session tag job left out: its value is 405 characters once escaped for AWS, which allows 256']);
  });
  test.each([
    ['an unknown claim', () => checkSessionTagClaims(['job', 'email']), 'session_tags: "email" is not a build claim; choose from jenkins_instance, jenkins_url, job, build_number, build_url, ref, ref_type, commit, repository, pull_request, triggered_by, replayed, restarted_from'],
    ['a claim twice', () => checkSessionTagClaims(['job', 'job']), 'session_tags: "job" is listed twice'],
    ['a transitive key that is not a session tag', () => checkTransitiveTagKeys(['ref'], ['job']), 'transitive_tags: "ref" is not one of this client\'s session tags (job); a transitive tag must also be a session tag'],
  ])('refuses %s', (_name, fn, message) => {
    expect(refusal(fn)).toBe(message);
  });
});

describe('source identity claim', () => {
  test('rendered from the template with STS characters only', () => {
    const claims = buildClaims(BUILD, { ...CLIENT, aws: { sessionTagClaims: [], transitiveTagKeys: [], sourceIdentity: '{jenkins_instance}-{job}-{build_number}' } });
    expect(claims['https://aws.amazon.com/source_identity']).toBe('ci-main-team_app_main-42');
    expect(claims['https://aws.amazon.com/tags']).toBeUndefined();
  });
  test('over 64 characters, the longest claim value is cut first so the build number survives', () => {
    const value = renderSourceIdentity('{jenkins_instance}-{job}-{build_number}', { jenkins_instance: 'ci-main', job: 'a'.repeat(100), build_number: 123456 });
    expect(value).toBe(`ci-main-${'a'.repeat(49)}-123456`);
    expect(value).toHaveLength(64);
  });
  test('under two characters (claims the build did not carry) means no source identity', () => {
    expect(renderSourceIdentity('{ref}', {})).toBeUndefined();
  });
  test.each([
    ['{jenkins_instance}-{build_number}', 'accepted'],
    ['jenkins@{jenkins_instance}', 'accepted'],
    ['{jenkins_instance}/{job}', 'source_identity: "/" is not allowed; AWS accepts only letters, digits and _ + = , . @ - in a source identity'],
    ['{email}', 'source_identity: {email} is not a build claim; choose from jenkins_instance, jenkins_url, job, build_number, build_url, ref, ref_type, commit, repository, pull_request, triggered_by, replayed, restarted_from'],
    ['{job', 'source_identity: unbalanced "{" in "{job"; write claims as {claim_name}'],
    [`${'x'.repeat(64)}{job}`, `source_identity: "${'x'.repeat(64)}{job}" leaves no room for its claims within the 64 characters AWS allows`],
    ['x', 'source_identity: "x" must be 2-64 characters'],
  ])('template %s: %s', (template, outcome) => {
    expect(refusal(() => checkSourceIdentityTemplate(template))).toBe(outcome);
  });
});
