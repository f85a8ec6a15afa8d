// Trust policies from --sub patterns: checked against the client's sub shape
// before anything reaches AWS, with the exact JSON an admin pastes.
import { parse } from 'yaml';
import { checkSubPattern, cloudFormationTemplate, providerArn, pullRequestExclusions, stringLike, trustPolicy, type PolicyDocument } from '../../src/aws/trust-policy.js';
import { toYaml } from '../../src/aws/yaml.js';
import { InputError } from '../../src/claims/text.js';

const CLIENT = { name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref'], audiences: ['sts.amazonaws.com'], sessionTags: [], sourceIdentity: null };
const ISSUER = 'https://oidc.example.com/jenkins';
const ARN = 'arn:aws:iam::123456789012:oidc-provider/oidc.example.com/jenkins';

function outcome(fn: () => string[]): string | string[] {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError) return err.message;
    throw err;
  }
}

test.each<[string, string, string | string[]]>([
  ['one job on main', 'jenkins_instance:ci-main:job:team/app:ref:refs/heads/main', []],
  ['a folder, any ref, admits pull-request jobs too', 'jenkins_instance:ci-main:job:team/*', ['"jenkins_instance:ci-main:job:team/*" also admits multibranch pull-request jobs such as team/PR-12, which can run code from forks; to admit branches only, match ref:refs/heads/* (or one branch), or refuse PR-*/MR-* jobs with --exclude-pull-requests']],
  ['a folder, main only', 'jenkins_instance:ci-main:job:team/*:ref:refs/heads/main', []],
  ['every job is warned about', 'jenkins_instance:ci-main:job:*', ['"jenkins_instance:ci-main:job:*" admits every job of ci-main; narrow it, e.g. job:team/app/*']],
  ['a trailing wildcard before the job is warned about', 'jenkins_instance:ci-main:*', ['"jenkins_instance:ci-main:*" admits every job of ci-main; narrow it, e.g. job:team/app/*']],
  ['a wildcard controller is refused', 'jenkins_instance:*:job:team/app', '--sub: "jenkins_instance:*:job:team/app" must name this controller exactly (jenkins_instance:ci-main); a wildcard there would admit builds of every controller registered with this service'],
  ['another controller is refused', 'jenkins_instance:ci-other:job:team/app:ref:refs/heads/main', '--sub: "jenkins_instance:ci-other:job:team/app:ref:refs/heads/main" names the controller "ci-other", but this policy is for client ci-main'],
  ['keys out of order never match', 'job:team/app:jenkins_instance:ci-main:ref:x', "--sub: \"job:team/app:jenkins_instance:ci-main:ref:x\" does not fit this client's sub, which looks like jenkins_instance:<jenkins_instance>:job:<job>:ref:<ref> (pair 1 should be jenkins_instance, not job); change the sub keys with: jenkins-oidc clients update ci-main --sub-claims ..."],
  ['an exact sub missing a pair never matches', 'jenkins_instance:ci-main:job:team/app', "--sub: \"jenkins_instance:ci-main:job:team/app\" does not fit this client's sub, which looks like jenkins_instance:<jenkins_instance>:job:<job>:ref:<ref> (it ends before the ref pair); change the sub keys with: jenkins-oidc clients update ci-main --sub-claims ..."],
  ['extra pairs never match', 'jenkins_instance:ci-main:job:a:ref:b:commit:c', "--sub: \"jenkins_instance:ci-main:job:a:ref:b:commit:c\" does not fit this client's sub, which looks like jenkins_instance:<jenkins_instance>:job:<job>:ref:<ref> (it has more pairs than the sub); change the sub keys with: jenkins-oidc clients update ci-main --sub-claims ..."],
  ['an escaped % (a multibranch job whose name encodes / as %2F) is fine', 'jenkins_instance:ci-main:job:team/app/feature%252Fx:ref:refs/heads/feature/x', []],
  ['an escaped : is fine', 'jenkins_instance:ci-main:job:team/a%3Ab:ref:refs/heads/main', []],
  ['a % followed by a wildcard may match', 'jenkins_instance:ci-main:job:team/app/feature%*:ref:refs/heads/main',
    ['"jenkins_instance:ci-main:job:team/app/feature%*:ref:refs/heads/main": * matches any characters, "/" and ":" included, so job:team/app/feature%* admits every job whose full name starts with "team/app/feature%" (such as team/app/feature%x/deploy); end the pattern at a separator (job:team/app/feature%/*) or name the job exactly']],
  ['a raw % never matches', 'jenkins_instance:ci-main:job:team/100%:ref:refs/heads/main',
    '--sub: "jenkins_instance:ci-main:job:team/100%:ref:refs/heads/main" can never match: a sub writes "%" inside a value as %25 and ":" as %3A, so every "%" must start %25 or %3A (a job named 100% is job:100%25)'],
  ['an unescaped %2F never matches', 'jenkins_instance:ci-main:job:team/app/feature%2Fx:ref:refs/heads/feature/x',
    '--sub: "jenkins_instance:ci-main:job:team/app/feature%2Fx:ref:refs/heads/feature/x" can never match: a sub writes "%" inside a value as %25 and ":" as %3A, so every "%" must start %25 or %3A (a job named 100% is job:100%25)'],
  ['a lower-case %3a never matches', 'jenkins_instance:ci-main:job:a%3ab:ref:refs/heads/main',
    '--sub: "jenkins_instance:ci-main:job:a%3ab:ref:refs/heads/main" can never match: a sub writes "%" inside a value as %25 and ":" as %3A, so every "%" must start %25 or %3A (a job named 100% is job:100%25)'],
])('sub pattern: %s', (_name, pattern, expected) => {
  expect(outcome(() => checkSubPattern(pattern, CLIENT))).toEqual(expected);
});

test('a client whose sub lacks jenkins_instance and job is warned about both', () => {
  expect(checkSubPattern('ref:refs/heads/main', { name: 'ci-main', subClaims: ['ref'] })).toEqual([
    'the sub of client ci-main does not include jenkins_instance: a build of ANY controller registered with this service, with the same job name, would match. Add it: jenkins-oidc clients update ci-main --sub-claims jenkins_instance,ref',
    'the sub of client ci-main does not include job: this policy admits every job of ci-main',
  ]);
});

test('exact subs use StringEquals; patterns StringLike; tags and source identity add their actions', () => {
  expect(trustPolicy({ issuer: ISSUER, client: CLIENT, subPatterns: ['jenkins_instance:ci-main:job:team/app:ref:refs/heads/main'], audience: 'sts.amazonaws.com', federated: ARN }).policy).toEqual({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'JenkinsOidccimain',
        Effect: 'Allow',
        Principal: { Federated: ARN },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            'oidc.example.com/jenkins:aud': 'sts.amazonaws.com',
            'oidc.example.com/jenkins:sub': 'jenkins_instance:ci-main:job:team/app:ref:refs/heads/main',
          },
        },
      },
    ],
  });
  const tagged = { ...CLIENT, sessionTags: ['job'], sourceIdentity: '{jenkins_instance}-{build_number}' };
  const { policy } = trustPolicy({ issuer: ISSUER, client: tagged, subPatterns: ['jenkins_instance:ci-main:job:team/*', 'jenkins_instance:ci-main:job:infra/*'], audience: 'sts.amazonaws.com', federated: ARN });
  expect(policy.Statement[0]!.Action).toEqual(['sts:AssumeRoleWithWebIdentity', 'sts:TagSession', 'sts:SetSourceIdentity']);
  expect(policy.Statement[0]!.Condition).toEqual({
    StringEquals: { 'oidc.example.com/jenkins:aud': 'sts.amazonaws.com' },
    StringLike: { 'oidc.example.com/jenkins:sub': ['jenkins_instance:ci-main:job:team/*', 'jenkins_instance:ci-main:job:infra/*'] },
  });
  expect(outcome(() => trustPolicy({ issuer: ISSUER, client: CLIENT, subPatterns: [], audience: 'sts.amazonaws.com', federated: ARN }).warnings)).toBe(
    "--sub: give at least one pattern for the sub this role admits, e.g. --sub 'jenkins_instance:ci-main:job:team/app/*:ref:refs/heads/*'",
  );
});

test('provider ARN from the issuer: host and path, no scheme', () => {
  expect(providerArn(ISSUER, '123456789012')).toBe(ARN);
  expect(providerArn('https://oidc.example.com', '123456789012', 'aws-us-gov')).toBe('arn:aws-us-gov:iam::123456789012:oidc-provider/oidc.example.com');
});

test('the YAML writer round-trips a template through an independent YAML parser', () => {
  const { template } = cloudFormationTemplate({
    issuer: ISSUER,
    client: CLIENT,
    audience: 'sts.amazonaws.com',
    roles: [{ name: 'deploy', subPatterns: ['jenkins_instance:ci-main:job:team/*'] }, { name: 'read-only', subPatterns: ['jenkins_instance:ci-main:job:a:ref:b', 'jenkins_instance:ci-main:job:c:ref:d'] }],
    thumbprints: ['0123456789abcdef0123456789abcdef01234567'],
    managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
    maxSessionDuration: 7200,
  });
  expect(parse(toYaml(template))).toEqual(template);
  expect(parse(toYaml({ empty: [], obj: {}, nested: [[1, 'two'], { a: null, 'b:c': true }], date: '2012-10-17', num: '0123' }))).toEqual({
    empty: [],
    obj: {},
    nested: [[1, 'two'], { a: null, 'b:c': true }],
    date: '2012-10-17',
    num: '0123',
  });
});

// `*` in StringLike spans "/" and ":": the pitfalls a pattern can hide, warned about before AWS sees it.
const PREFIX = (pattern: string, job: string, stem: string) =>
  `"${pattern}": * matches any characters, "/" and ":" included, so job:${job} admits every job whose full name starts with "${stem}" (such as ${stem}x/deploy); end the pattern at a separator (job:${stem}/*) or name the job exactly`;
const PR_JOBS = (pattern: string, example: string, advice: string) =>
  `"${pattern}" also admits multibranch pull-request jobs such as ${example}, which can run code from forks; to admit branches only, ${advice}, or refuse PR-*/MR-* jobs with --exclude-pull-requests`;
const REF_ADVICE = 'match ref:refs/heads/* (or one branch)';
const REF_TYPE_CLIENT = { name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref_type'] };
const JOB_CLIENT = { name: 'ci-main', subClaims: ['jenkins_instance', 'job'] };
const REPLAY_CLIENT = { name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref', 'replayed'] };

test.each<[string, { name: string; subClaims: string[] }, string, string[]]>([
  ['a job prefix without a separator', CLIENT, 'jenkins_instance:ci-main:job:team/app*:ref:refs/heads/main',
    [PREFIX('jenkins_instance:ci-main:job:team/app*:ref:refs/heads/main', 'team/app*', 'team/app')]],
  ['a job prefix without a separator, any ref', CLIENT, 'jenkins_instance:ci-main:job:team/app*:ref:*',
    [PREFIX('jenkins_instance:ci-main:job:team/app*:ref:*', 'team/app*', 'team/app'), PR_JOBS('jenkins_instance:ci-main:job:team/app*:ref:*', 'team/app/PR-12', REF_ADVICE)]],
  ['a multibranch project, any ref', CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref:*', 'team/app/PR-12', REF_ADVICE)]],
  ['a multibranch project, an empty ref (a pull_request without ref)', CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref:', 'team/app/PR-12', REF_ADVICE)]],
  ['a multibranch project, pull-request refs', CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:refs/pull/*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref:refs/pull/*', 'team/app/PR-12', REF_ADVICE)]],
  ['a multibranch project, any branch', CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:refs/heads/*', []],
  ['a multibranch project, release tags', CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:refs/tags/v*', []],
  ['one pull request by number', CLIENT, 'jenkins_instance:ci-main:job:team/app/PR-1?:ref:*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/PR-1?:ref:*', 'team/app/PR-12', REF_ADVICE)]],
  ['a wildcard that must end in /main admits no pull-request job', CLIENT, 'jenkins_instance:ci-main:job:*/main:ref:*', []],
  ['a wildcard folder before a fixed job name', CLIENT, 'jenkins_instance:ci-main:job:team/*/deploy:ref:*', []],
  ['a wildcard whose literal end can finish a PR number', CLIENT, 'jenkins_instance:ci-main:job:team/*3:ref:*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/*3:ref:*', 'team/PR-13', REF_ADVICE)]],
  ['ref_type:branch keeps pull requests out', REF_TYPE_CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref_type:branch', []],
  ['any ref_type lets them in', REF_TYPE_CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref_type:*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref_type:*', 'team/app/PR-12', 'end the ref_type pair with ref_type:branch')]],
  ['ref_type:pull_request* lets them in', REF_TYPE_CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref_type:pull*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref_type:pull*', 'team/app/PR-12', 'end the ref_type pair with ref_type:branch')]],
  ['a sub without ref keys', JOB_CLIENT, 'jenkins_instance:ci-main:job:team/app/*',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*', 'team/app/PR-12', 'add ref_type to the sub keys and match ref_type:branch')]],
  ['replayed:false after a branch ref', REPLAY_CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:refs/heads/*:replayed:false', []],
  ['replayed:false alone does not keep pull requests out', REPLAY_CLIENT, 'jenkins_instance:ci-main:job:team/app/*:ref:*:replayed:false',
    [PR_JOBS('jenkins_instance:ci-main:job:team/app/*:ref:*:replayed:false', 'team/app/PR-12', REF_ADVICE)]],
])('pitfall: %s', (_name, client, pattern, expected) => {
  expect(outcome(() => checkSubPattern(pattern, client))).toEqual(expected);
});

test('--exclude-pull-requests silences the pull-request warning, not the prefix one', () => {
  expect(checkSubPattern('jenkins_instance:ci-main:job:team/app/*', JOB_CLIENT, { excludePullRequests: true })).toEqual([]);
  expect(checkSubPattern('jenkins_instance:ci-main:job:team/app*', JOB_CLIENT, { excludePullRequests: true })).toEqual([
    PREFIX('jenkins_instance:ci-main:job:team/app*', 'team/app*', 'team/app'),
  ]);
});

test('StringLike semantics the warnings rest on: * spans "/" and ":", ? is one character', () => {
  expect(stringLike('job:team/app*', 'job:team/apple/main')).toBe(true);
  expect(stringLike('job:team/app/*', 'job:team/apple/main')).toBe(false);
  expect(stringLike('job:team/*', 'job:team/a/b/PR-12')).toBe(true);
  expect(stringLike('job:team/*', 'job:team/app:ref:refs/pull/1/head')).toBe(true);
  expect(stringLike('job:team/PR-1?', 'job:team/PR-12')).toBe(true);
  expect(stringLike('job:team/PR-1?', 'job:team/PR-123')).toBe(false);
  expect(stringLike('job:a.b', 'job:aXb')).toBe(false);
});

/** What AWS decides for one sub: every sub condition of the statement holds. */
function admits(policy: PolicyDocument, sub: string): boolean {
  const condition = policy.Statement[0]!.Condition!;
  const list = (op: string) => [condition[op]?.['oidc.example.com/jenkins:sub'] ?? []].flat();
  const like = (op: string) => list(op).some((p) => stringLike(p, sub));
  const equals = list('StringEquals').length === 0 || list('StringEquals').includes(sub);
  const isLike = list('StringLike').length === 0 || like('StringLike');
  return equals && isLike && !like('StringNotLike');
}

test('--exclude-pull-requests: a StringNotLike on sub that refuses PR-* and MR-* jobs and nothing else of the folder', () => {
  const { policy, warnings } = trustPolicy({
    issuer: ISSUER, client: { ...CLIENT, subClaims: ['jenkins_instance', 'job'] }, subPatterns: ['jenkins_instance:ci-main:job:team/app/*'], audience: 'sts.amazonaws.com', federated: ARN, excludePullRequests: true,
  });
  expect(warnings).toEqual([]);
  expect(policy.Statement[0]!.Condition).toEqual({
    StringEquals: { 'oidc.example.com/jenkins:aud': 'sts.amazonaws.com' },
    StringLike: { 'oidc.example.com/jenkins:sub': 'jenkins_instance:ci-main:job:team/app/*' },
    StringNotLike: { 'oidc.example.com/jenkins:sub': ['*:job:*/PR-*', '*:job:*/MR-*'] },
  });
  const outcomes = Object.fromEntries(
    ['team/app/main', 'team/app/feature%252Flogin', 'team/app/PR-12', 'team/app/MR-3', 'team/app/sub/PR-1', 'team/apple/main', 'team/app-old/main']
      .map((job) => [job, admits(policy, `jenkins_instance:ci-main:job:${job}`)]),
  );
  expect(outcomes).toEqual({
    'team/app/main': true,
    'team/app/feature%252Flogin': true,
    'team/app/PR-12': false,
    'team/app/MR-3': false,
    'team/app/sub/PR-1': false,
    'team/apple/main': false,
    'team/app-old/main': false,
  });
});

test('the exclusion follows the position of job in the sub; a sub without job cannot use it', () => {
  expect(pullRequestExclusions({ name: 'ci-main', subClaims: ['job', 'jenkins_instance'] })).toEqual(['job:*/PR-*', 'job:*/MR-*']);
  expect(pullRequestExclusions({ name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref'] })).toEqual(['*:job:*/PR-*', '*:job:*/MR-*']);
  expect(outcome(() => pullRequestExclusions({ name: 'ci-main', subClaims: ['jenkins_instance', 'ref'] }))).toBe(
    '--exclude-pull-requests: the sub of client ci-main has no job, so pull-request jobs cannot be told by name; add ref_type to its sub keys and match ref_type:branch instead',
  );
});

test('without --sub, the example pattern admits branch builds and refuses replays in the client\'s own shape', () => {
  const client = { ...CLIENT, subClaims: ['jenkins_instance', 'job', 'ref_type', 'replayed'] };
  const example = "jenkins_instance:ci-main:job:team/app/*:ref_type:branch:replayed:false";
  expect(outcome(() => trustPolicy({ issuer: ISSUER, client, subPatterns: [], audience: 'sts.amazonaws.com', federated: ARN }).warnings)).toBe(
    `--sub: give at least one pattern for the sub this role admits, e.g. --sub '${example}'`,
  );
  expect(checkSubPattern(example, client)).toEqual([]);
});

test('cloudformation passes --exclude-pull-requests to every role', () => {
  const { template, warnings } = cloudFormationTemplate({
    issuer: ISSUER, client: CLIENT, audience: 'sts.amazonaws.com', thumbprints: [], managedPolicyArns: [], excludePullRequests: true,
    roles: [{ name: 'deploy', subPatterns: ['jenkins_instance:ci-main:job:team/*'] }, { name: 'audit', subPatterns: ['jenkins_instance:ci-main:job:infra/*'] }],
  });
  expect(warnings).toEqual([]);
  const resources = template.Resources as Record<string, { Properties: { AssumeRolePolicyDocument: PolicyDocument } }>;
  for (const id of ['DeployRole', 'AuditRole']) {
    expect(resources[id]!.Properties.AssumeRolePolicyDocument.Statement[0]!.Condition!.StringNotLike).toEqual({ 'oidc.example.com/jenkins:sub': ['*:job:*/PR-*', '*:job:*/MR-*'] });
  }
});

describe('a client with a sub template', () => {
  const TEMPLATE_CLIENT = { ...CLIENT, subTemplate: '{jenkins_instance}:{job|sha256}', jenkinsUrl: 'https://jenkins.example.com' };
  test.each<[string, string, string | string[]]>([
    ['an exact hashed sub', 'ci-main:Xi0q3zDe_2W1v8yHaY2bn3oF4SMk6cN3l-MQ2YxY6bE', []],
    ['every job is warned about', 'ci-main:*', ['"ci-main:*" admits every job of ci-main']],
    ['another controller is refused', 'ci-other:abc', '--sub: "ci-other:abc" must start with "ci-main:" (this controller, in the sub template "{jenkins_instance}:{job|sha256}"); anything else admits another controller\'s builds or none'],
    ['a wildcard controller is refused', 'ci-*:abc', '--sub: "ci-*:abc" must start with "ci-main:" (this controller, in the sub template "{jenkins_instance}:{job|sha256}"); anything else admits another controller\'s builds or none'],
    ['a controller name prefix is refused', 'ci-main-2:abc', '--sub: "ci-main-2:abc" must start with "ci-main:" (this controller, in the sub template "{jenkins_instance}:{job|sha256}"); anything else admits another controller\'s builds or none'],
  ])('%s', (_name, pattern, expected) => {
    expect(outcome(() => checkSubPattern(pattern, TEMPLATE_CLIENT))).toEqual(expected);
  });
  test('a template whose first placeholder is not the controller cannot be pinned', () => {
    expect(outcome(() => checkSubPattern('x', { ...TEMPLATE_CLIENT, subTemplate: 'job:{job}:ci:{jenkins_instance}' }))).toBe(
      "--sub: the sub template of client ci-main (\"job:{job}:ci:{jenkins_instance}\") does not start with {jenkins_instance}, so no pattern can pin the controller; put it first: jenkins-oidc clients update ci-main --sub-template '{jenkins_instance}:...'",
    );
  });
  test('pull-request jobs cannot be told apart by name in a template sub', () => {
    expect(outcome(() => pullRequestExclusions(TEMPLATE_CLIENT))).toBe(
      '--exclude-pull-requests: client ci-main has a sub template; pull-request jobs cannot be told by name there: write --sub patterns that name the branch jobs',
    );
  });
  test('with no pattern, the example starts with the controller prefix', () => {
    expect(outcome(() => trustPolicy({ issuer: ISSUER, client: TEMPLATE_CLIENT, subPatterns: [], audience: 'sts.amazonaws.com', federated: ARN }).warnings)).toBe(
      "--sub: give at least one pattern for the sub this role admits, e.g. --sub 'ci-main:*'",
    );
  });
});
