// Claims every relying party can use: string-typed build claims (Vault's
// bound_claims and claim_mappings, Kubernetes' required claims match strings
// only) and a sub template short and exact enough for Google (127 bytes) and
// Azure (exact match).
import { createHash } from 'node:crypto';
import { CLAIM_MAX_LENGTH, buildClaims, checkClaimTypes } from '../../src/claims/build-claims.js';
import { GOOGLE_SUBJECT_MAX_BYTES, checkSubTemplate, longestSubBytes, renderSubTemplate } from '../../src/claims/sub.js';
import { refusal } from '../helpers/refusal.js';

const CLIENT = { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com', subClaims: ['jenkins_instance', 'job'] as const };
const BUILD = { job: 'team/app/main', build_number: '42', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/', replayed: 'false', restarted_from: '41' };

describe('claim types', () => {
  test('string: build_number, restarted_from and replayed are JSON strings; sub renders the same', () => {
    const claims = buildClaims(BUILD, { ...CLIENT, subClaims: ['jenkins_instance', 'job', 'build_number'], claimTypes: 'string' });
    expect(claims).toEqual({
      sub: 'jenkins_instance:ci-main:job:team/app/main:build_number:42',
      jenkins_instance: 'ci-main',
      jenkins_url: 'https://jenkins.example.com',
      job: 'team/app/main',
      build_number: '42',
      build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/',
      replayed: 'false',
      restarted_from: '41',
    });
  });
  test('json: numbers and booleans as before (clients registered before the migration)', () => {
    const claims = buildClaims(BUILD, { ...CLIENT, claimTypes: 'json' });
    expect([claims.build_number, claims.replayed, claims.restarted_from]).toEqual([42, false, 41]);
  });
  test('restarted_from is still compared as a number under string', () => {
    expect(refusal(() => buildClaims({ ...BUILD, build_number: '9', restarted_from: '10' }, { ...CLIENT, claimTypes: 'string' }))).toBe(
      'restarted_from: must be an earlier build than 9, got 10',
    );
  });
  test('an unknown claim type is refused with what each one means', () => {
    expect(refusal(() => checkClaimTypes('number'))).toBe(
      'claim_types: must be string (build_number "42", replayed "false": what Vault and Kubernetes match) or json (numbers and booleans), got "number"',
    );
  });
});

describe('sub template', () => {
  const sha = (v: string) => createHash('sha256').update(v).digest('base64url');
  test.each<[string, string, string]>([
    ['hashed job for Google', '{jenkins_instance}:{job|sha256}', `ci-main:${sha('team/app/main')}`],
    ['literal text and an exact job for Azure', 'jenkins/{jenkins_instance}:job:{job}', 'jenkins/ci-main:job:team/app/main'],
    ['a ref value with ":" is escaped', '{jenkins_instance}:{ref}', 'ci-main:refs/heads/a%3Ab'],
    ['the build number as text', '{jenkins_instance}:{job}:{build_number}', 'ci-main:team/app/main:42'],
  ])('%s: %s renders %s', (_name, template, sub) => {
    expect(buildClaims({ ...BUILD, ref: 'refs/heads/a:b' }, { ...CLIENT, subTemplate: template, claimTypes: 'string' }).sub).toBe(sub);
  });
  test('a hashed value is 43 characters whatever the job, so the sub fits Google', () => {
    const sub = renderSubTemplate('{jenkins_instance}:{job|sha256}', { jenkins_instance: 'c'.repeat(63), job: 'j/'.repeat(255) + 'x' });
    expect(sub).toBe(`${'c'.repeat(63)}:${sha('j/'.repeat(255) + 'x')}`);
    expect(Buffer.byteLength(sub)).toBe(107);
    expect(longestSubBytes({ subClaims: [], subTemplate: '{jenkins_instance}:{job|sha256}' }, CLAIM_MAX_LENGTH)).toBe(107);
    expect(longestSubBytes({ subClaims: [], subTemplate: '{jenkins_instance}:{job|sha256}' }, CLAIM_MAX_LENGTH)).toBeLessThanOrEqual(GOOGLE_SUBJECT_MAX_BYTES);
  });
  test('the default key:value sub can exceed Google\'s 127 bytes (the reason for templates)', () => {
    expect(longestSubBytes({ subClaims: ['jenkins_instance', 'job'], subTemplate: null }, CLAIM_MAX_LENGTH)).toBe(17 + 63 + 1 + 4 + 2048);
  });
  test.each<[string, string, string]>([
    ['no controller', '{job}', 'sub_template: must include {jenkins_instance} (or {jenkins_url}), unhashed, or builds of another controller could present the same sub'],
    ['a hashed controller only', '{jenkins_instance|sha256}:{job}', 'sub_template: must include {jenkins_instance} (or {jenkins_url}), unhashed, or builds of another controller could present the same sub'],
    ['placeholders run together', '{jenkins_instance}/{job}', 'sub_template: {jenkins_instance} and {job} must be separated by text containing ":" (values write ":" as %3A, so the sub reads back one way only)'],
    ['an unknown claim', '{jenkins_instance}:{email}', 'sub_template: {email} is not a build claim; choose from jenkins_instance, jenkins_url, job, build_number, build_url, ref, ref_type, commit, repository, pull_request, triggered_by, replayed, restarted_from'],
    ['a wildcard in the literal text', '{jenkins_instance}:*:{job}', 'sub_template: ":*:" outside a placeholder: use letters, digits and _ . : / = + @ - and placeholders {claim} or {claim|sha256}'],
    ['an unbalanced brace', '{jenkins_instance}:{job', 'sub_template: ":{job" outside a placeholder: use letters, digits and _ . : / = + @ - and placeholders {claim} or {claim|sha256}'],
    ['a claim twice', '{jenkins_instance}:{job}:{job|sha256}', 'sub_template: names a claim twice'],
    ['no placeholder', 'static-subject', 'sub_template: has no {claim} placeholder'],
  ])('refused: %s (%s)', (_name, template, message) => {
    expect(refusal(() => checkSubTemplate(template))).toBe(message);
  });
  test('distinct jobs give distinct subs, ":" in a value included', () => {
    const jobs = ['a', 'a:b', 'a%3Ab', 'a/b'];
    const subs = jobs.map((job) => renderSubTemplate('{jenkins_instance}:{job}:{ref}', { jenkins_instance: 'ci', job, ref: 'r' }));
    expect(subs).toEqual(['ci:a:r', 'ci:a%3Ab:r', 'ci:a%253Ab:r', 'ci:a/b:r']);
  });
  test('a rendered sub over 255 characters is refused with advice', () => {
    expect(refusal(() => renderSubTemplate('{jenkins_instance}:{job}', { jenkins_instance: 'ci', job: 'j'.repeat(260) }))).toBe(
      "sub: the subject rendered from this client's sub template is 263 characters; AWS accepts at most 255. Hash long claims ({job|sha256}): jenkins-oidc clients update NAME --sub-template ...",
    );
  });
});
