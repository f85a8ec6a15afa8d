// Trust policies from --sub patterns: checked against the client's sub shape
// before anything reaches AWS, with the exact JSON an admin pastes.
import { parse } from 'yaml';
import { checkSubPattern, cloudFormationTemplate, providerArn, trustPolicy } from '../../src/aws/trust-policy.js';
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
  ['a folder, any ref', 'jenkins_instance:ci-main:job:team/*', []],
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
  ['a % followed by a wildcard may match', 'jenkins_instance:ci-main:job:team/app/feature%*:ref:refs/heads/main', []],
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
    "--sub: give at least one pattern for the sub this role admits, e.g. --sub 'jenkins_instance:ci-main:job:team/app/*:ref:*'",
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
