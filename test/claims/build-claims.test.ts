import { buildClaims, checkBuildUrl, refTypeOf } from '../../src/claims/build-claims.js';
import { escapeSubValue, renderSub } from '../../src/claims/sub.js';
import { refusal } from '../helpers/refusal.js';

const CLIENT = { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com/ci', subClaims: ['jenkins_instance', 'job'] as const };
const BUILD = { job: 'team/app', build_number: '7', build_url: 'https://jenkins.example.com/ci/job/team/job/app/7/' };


describe('sub rendering', () => {
  test('key:value pairs in the client order, joined by ":"', () => {
    expect(renderSub(['jenkins_instance', 'job', 'ref'], { jenkins_instance: 'ci', job: 'a/b', ref: 'refs/heads/main' })).toBe(
      'jenkins_instance:ci:job:a/b:ref:refs/heads/main',
    );
  });
  test('":" inside a value is escaped as %3A so it cannot forge a pair', () => {
    expect(renderSub(['job', 'repository'], { job: 'x', repository: 'git@host:org/repo.git' })).toBe('job:x:repository:git@host%3Aorg/repo.git');
  });
  // `%` is escaped before `:`, so rendering is one-to-one; values without `%` render as before.
  const decode = (value: string) => value.replaceAll('%3A', ':').replaceAll('%25', '%');
  test.each<[string, string]>([
    ['team/app', 'team/app'],
    ['a:b', 'a%3Ab'],
    ['git@host:org/repo.git', 'git@host%3Aorg/repo.git'],
    ['a%3Ab', 'a%253Ab'],
    ['100%', '100%25'],
    ['%25', '%2525'],
    ['50%:off', '50%25%3Aoff'],
    ['%3A:', '%253A%3A'],
  ])('value %j renders as %j and decodes back', (value, rendered) => {
    expect(renderSub(['jenkins_instance', 'job'], { jenkins_instance: 'ci', job: value })).toBe(`jenkins_instance:ci:job:${rendered}`);
    expect(escapeSubValue(value)).toBe(rendered);
    expect(decode(rendered)).toBe(value);
  });
  test('distinct values give distinct subs', () => {
    const values = ['a:b', 'a%3Ab', 'a%253Ab', 'a%25%3Ab', 'a%:b', '100%', '100%25', '100', ':', '%3A', '%253A', '%', '%25'];
    const subs = values.map((job) => renderSub(['jenkins_instance', 'job'], { jenkins_instance: 'ci', job }));
    expect(new Set(subs).size).toBe(values.length);
    expect(subs.map((s) => decode(s.slice('jenkins_instance:ci:job:'.length)))).toEqual(values);
  });
  test('a claim the build did not carry renders empty', () => {
    expect(renderSub(['job', 'ref'], { job: 'x' })).toBe('job:x:ref:');
  });
  test.each<[string, Record<string, string>, string]>([
    ['a replayed build', { replayed: 'true' }, 'jenkins_instance:ci-main:job:team/app:replayed:true'],
    ['a build that is not a replay', { replayed: 'false' }, 'jenkins_instance:ci-main:job:team/app:replayed:false'],
    ['a library that does not send replayed', {}, 'jenkins_instance:ci-main:job:team/app:replayed:'],
  ])('replayed in the sub keys: %s', (_name, override, sub) => {
    expect(buildClaims({ ...BUILD, ...override }, { ...CLIENT, subClaims: ['jenkins_instance', 'job', 'replayed'] }).sub).toBe(sub);
  });
  test('over 255 characters is refused with advice', () => {
    expect(refusal(() => renderSub(['job'], { job: 'j'.repeat(260) }))).toBe(
      "sub: the subject rendered from this client's sub claim keys (job) is 264 characters; AWS accepts at most 255. Use fewer or shorter claims: jenkins-oidc clients update NAME --sub-claims ...",
    );
  });
});

describe('build claims', () => {
  test('jenkins_instance and jenkins_url come from the client record, build facts from the mint call', () => {
    expect(buildClaims({ ...BUILD, ref: 'refs/heads/main', commit: 'ABCDEF0' }, CLIENT)).toEqual({
      sub: 'jenkins_instance:ci-main:job:team/app',
      jenkins_instance: 'ci-main',
      jenkins_url: 'https://jenkins.example.com/ci',
      job: 'team/app',
      build_number: 7,
      build_url: 'https://jenkins.example.com/ci/job/team/job/app/7/',
      ref: 'refs/heads/main',
      ref_type: 'branch',
      commit: 'abcdef0',
    });
  });

  test.each([
    ['refs/heads/feature/x', 'branch'],
    ['refs/tags/v1.0', 'tag'],
    ['refs/pull/12/head', 'pull_request'],
    ['refs/merge-requests/3/head', 'pull_request'],
    ['refs/pull-requests/9/from', 'pull_request'],
  ])('ref %s is a %s', (ref, type) => {
    expect(refTypeOf(ref)).toBe(type);
  });

  test.each<[string, Record<string, string>, string]>([
    ['build_url outside the registered Jenkins URL is refused', { build_url: 'https://other.example.com/ci/job/x/1/' },
      'build_url: must lie under this client\'s Jenkins URL https://jenkins.example.com/ci, got "https://other.example.com/ci/job/x/1/"'],
    ['build_url on a sibling path that shares a prefix is refused', { build_url: 'https://jenkins.example.com/ci-evil/job/x/1/' },
      'build_url: must lie under this client\'s Jenkins URL https://jenkins.example.com/ci, got "https://jenkins.example.com/ci-evil/job/x/1/"'],
    ['build_url escaping with .. is refused', { build_url: 'https://jenkins.example.com/ci/../admin/' }, 'build_url: must not contain "." or ".." path segments'],
    ['build_url escaping with an encoded .. is refused', { build_url: 'https://jenkins.example.com/ci/job/%2e%2E/42/' }, 'build_url: must not contain "." or ".." path segments'],
    ['build_url with an encoded / is refused', { build_url: 'https://jenkins.example.com/ci/job/a%2F..%2fb/42/' }, 'build_url: must not contain an encoded "/" or a "\\"'],
    ['build_url with a backslash is refused', { build_url: 'https://jenkins.example.com/ci/job\\..\\admin/42/' }, 'build_url: must not contain an encoded "/" or a "\\"'],
    ['build_url of a branch whose name has a / (Jenkins encodes it as %252F) is accepted', { build_url: 'https://jenkins.example.com/ci/job/app/job/feature%252Fx/42/' }, 'accepted'],
    ['build_url on another port is refused', { build_url: 'https://jenkins.example.com:8443/ci/job/x/1/' },
      'build_url: must lie under this client\'s Jenkins URL https://jenkins.example.com/ci, got "https://jenkins.example.com:8443/ci/job/x/1/"'],
    ['build_url with credentials is refused', { build_url: 'https://a:b@jenkins.example.com/ci/job/x/1/' }, 'build_url: must not contain credentials'],
    ['build_url that is not a URL is refused', { build_url: 'job/x/1' }, 'build_url: must be an absolute http(s) URL, got "job/x/1"'],
    ['a zero build number is refused', { build_number: '0' }, 'build_number: must be a positive whole number up to 2147483647, got "0"'],
    ['a negative build number is refused', { build_number: '-1' }, 'build_number: must be a positive whole number up to 2147483647, got "-1"'],
    ['a fractional build number is refused', { build_number: '1.5' }, 'build_number: must be a positive whole number up to 2147483647, got "1.5"'],
    ['a build number beyond INTEGER is refused', { build_number: '9999999999' }, 'build_number: must be a positive whole number up to 2147483647, got "9999999999"'],
    ['a control character in job is refused', { job: 'team/app\nx' }, 'job: must not contain control or invisible formatting characters'],
    ['a bidi override in job is refused', { job: 'team/\u202Eppa' }, 'job: must not contain control or invisible formatting characters'],
    ['a zero-width space in job is refused', { job: 'team/a\u200Bpp' }, 'job: must not contain control or invisible formatting characters'],
    ['a decomposed (non-NFC) job name is refused', { job: 'team/cafe\u0301' }, 'job: must be in Unicode NFC form'],
    ['an empty job segment is refused', { job: 'team//app' }, 'job: must be a Jenkins full job name such as folder/pipeline/main (no empty path segments)'],
    ['a .. job segment is refused', { job: 'team/../other' }, 'job: must not contain "." or ".." path segments'],
    ['an over-long job is refused', { job: 'j'.repeat(513) }, 'job: must be at most 512 characters, got 513'],
    ['a short ref is refused', { ref: 'main' }, 'ref: must be a full Git ref such as refs/heads/main, refs/tags/v1.0 or refs/pull/12/head, got "main"'],
    ['a commit that is not hex is refused', { commit: 'xyz1234' }, 'commit: must be a hexadecimal commit id of 7 to 64 characters, got "xyz1234"'],
    ['pull_request on a branch ref is refused', { ref: 'refs/heads/main', pull_request: '5' }, 'pull_request: is set, but ref refs/heads/main is a branch, not a pull request ref'],
    ['replayed other than true or false is refused', { replayed: 'yes' }, 'replayed: must be true or false, got "yes"'],
    ['replayed in capitals is refused', { replayed: 'TRUE' }, 'replayed: must be true or false, got "TRUE"'],
    ['replayed as a digit is refused', { replayed: '1' }, 'replayed: must be true or false, got "1"'],
    ['an empty replayed is refused', { replayed: '' }, 'replayed: must be true or false, got ""'],
    ['replayed with surrounding space is refused', { replayed: ' true' }, 'replayed: must be true or false, got " true"'],
    ['SQL-looking text in job is accepted as plain text (queries are parameterised)', { job: "x'; DROP TABLE clients;--" }, 'accepted'],
  ])('%s', (_name, override, expected) => {
    expect(refusal(() => buildClaims({ ...BUILD, ...override }, CLIENT))).toBe(expected);
  });

  test('replayed is a boolean claim placed after triggered_by; absent stays absent', () => {
    const replayed = buildClaims({ ...BUILD, triggered_by: 'alice', replayed: 'true' }, CLIENT);
    expect(replayed.replayed).toBe(true);
    expect(Object.keys(replayed).slice(-2)).toEqual(['triggered_by', 'replayed']);
    expect(buildClaims({ ...BUILD, replayed: 'false' }, CLIENT).replayed).toBe(false);
    expect(buildClaims(BUILD, CLIENT)).not.toHaveProperty('replayed');
  });

  test('unicode letters in job names are fine when they are NFC', () => {
    expect(buildClaims({ ...BUILD, job: 'équipe/café' }, CLIENT).job).toBe('équipe/café');
  });

  test('checkBuildUrl normalises the URL it stores', () => {
    expect(checkBuildUrl('https://JENKINS.example.com/ci/job/x/1/', 'https://jenkins.example.com/ci')).toBe('https://jenkins.example.com/ci/job/x/1/');
  });
});
