// Build facts from the controller's mint call -> the claims snapshot stored
// with the request token. The two instance claims come from the client record,
// never from input; the exchange later copies this snapshot verbatim.
import { NO_AWS_CLAIMS, renderSessionTags, renderSourceIdentity, type AwsClaimSettings, type SessionTagsClaim } from './aws.js';
import { AWS_SOURCE_IDENTITY_CLAIM, AWS_TAGS_CLAIM, type BuildClaimName } from './names.js';
import { renderSub, renderSubTemplate } from './sub.js';
import { InputError, checkPositiveInt, checkText, checkUrl, truncate } from './text.js';

export interface MintInput {
  job: string;
  build_number: string;
  build_url: string;
  ref?: string;
  commit?: string;
  repository?: string;
  pull_request?: string;
  triggered_by?: string;
  /** "true" or "false": the build may run pipeline code that is not in SCM (a Replay, or a restart of one). */
  replayed?: string;
  /** The build a declarative "Restart from Stage" restarted: its number. */
  restarted_from?: string;
}

export interface ClientFacts {
  name: string;
  jenkinsUrl: string;
  subClaims: readonly BuildClaimName[];
  /** A sub template ("{jenkins_instance}:{job|sha256}") instead of subClaims' key:value form; null: subClaims. */
  subTemplate?: string | null;
  /** 'string' (new clients): numbers and booleans written as strings; 'json' (clients before the migration): as they are. */
  claimTypes?: ClaimTypes;
  /** Session tags and source identity settings; none when absent. */
  aws?: AwsClaimSettings;
}

/**
 * How build claims that are not text reach the token. Vault's bound_claims and
 * claim_mappings fail a login on a number ("error converting claim to string")
 * and kube-apiserver's required claims match strings only; GitHub issues every
 * claim as a string. 'json' is what clients registered before had.
 */
export const CLAIM_TYPES = ['string', 'json'] as const;
export type ClaimTypes = (typeof CLAIM_TYPES)[number];

export function checkClaimTypes(value: string): ClaimTypes {
  if (!(CLAIM_TYPES as readonly string[]).includes(value)) {
    throw new InputError('claim_types', `must be string (build_number "42", replayed "false": what Vault and Kubernetes match) or json (numbers and booleans), got "${truncate(value)}"`);
  }
  return value as ClaimTypes;
}

export type RefType = 'branch' | 'tag' | 'pull_request';

export interface BuildClaims {
  sub: string;
  jenkins_instance: string;
  jenkins_url: string;
  job: string;
  /** A string under claim_types string. */
  build_number: number | string;
  build_url: string;
  ref?: string;
  ref_type?: RefType;
  commit?: string;
  repository?: string;
  pull_request?: string;
  triggered_by?: string;
  replayed?: boolean | string;
  restarted_from?: number | string;
  [AWS_TAGS_CLAIM]?: SessionTagsClaim;
  [AWS_SOURCE_IDENTITY_CLAIM]?: string;
}

/** Limits on mint parameters (documented in docs/operations.md, "Input limits"). */
export const LIMITS = {
  job: 512,
  ref: 255,
  repository: 512,
  pull_request: 64,
  triggered_by: 255,
} as const;

/** The longest value each claim can have (mint limits; the client record's name and URL), for sub length checks. */
export const CLAIM_MAX_LENGTH: Record<BuildClaimName, number> = {
  jenkins_instance: 63,
  jenkins_url: 2048,
  job: LIMITS.job,
  build_number: 10,
  build_url: 2048,
  ref: LIMITS.ref,
  ref_type: 'pull_request'.length,
  commit: 64,
  repository: LIMITS.repository,
  pull_request: LIMITS.pull_request,
  triggered_by: LIMITS.triggered_by,
  replayed: 5,
  restarted_from: 10,
};

const REF_TYPES: [string, RefType][] = [
  ['refs/heads/', 'branch'],
  ['refs/tags/', 'tag'],
  ['refs/pull/', 'pull_request'],
  ['refs/merge-requests/', 'pull_request'],
  ['refs/pull-requests/', 'pull_request'],
];

/** Refs whose builds carry ref_type pull_request (trust-policy checks use them). */
export const PULL_REQUEST_REF_PREFIXES = REF_TYPES.filter(([, type]) => type === 'pull_request').map(([prefix]) => prefix);

export function checkJob(job: string): string {
  checkText('job', job, LIMITS.job);
  if (job.startsWith('/') || job.endsWith('/') || job.includes('//')) {
    throw new InputError('job', 'must be a Jenkins full job name such as folder/pipeline/main (no empty path segments)');
  }
  if (job.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new InputError('job', 'must not contain "." or ".." path segments');
  }
  return job;
}

/** build_url must lie under the client's registered Jenkins URL (same origin, path below it). */
export function checkBuildUrl(value: string, jenkinsUrl: string): string {
  // Checked on the raw text: the URL parser resolves "..", "%2e%2e" and friends
  // away, and an encoded "/" or "\" would let a path segment pose as two.
  const rawPath = value.replace(/^[a-z]+:\/\/[^/]*/i, '').split(/[?#]/)[0] ?? '';
  if (/%2f|%5c|\\/i.test(rawPath)) throw new InputError('build_url', 'must not contain an encoded "/" or a "\\"');
  if (rawPath.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) {
    throw new InputError('build_url', 'must not contain "." or ".." path segments');
  }
  const url = checkUrl('build_url', value);
  const base = new URL(jenkinsUrl);
  const basePath = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  if (url.origin !== base.origin || !url.pathname.startsWith(basePath) || url.pathname === basePath) {
    throw new InputError('build_url', `must lie under this client's Jenkins URL ${jenkinsUrl}, got "${truncate(url.href, 80)}"`);
  }
  return url.href;
}

export function refTypeOf(ref: string): RefType {
  const match = REF_TYPES.find(([prefix]) => ref.startsWith(prefix) && ref.length > prefix.length);
  if (!match) {
    throw new InputError('ref', `must be a full Git ref such as refs/heads/main, refs/tags/v1.0 or refs/pull/12/head, got "${truncate(ref)}"`);
  }
  return match[1];
}

/** Exactly "true" or "false" (a form parameter); absent stays absent (libraries that predate the claim). */
export function checkBoolean(field: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InputError(field, `must be true or false, got "${truncate(value)}"`);
}

/** `warnings` receives what the mint answers besides the token (a session tag left out...). */
export function buildClaims(input: MintInput, client: ClientFacts, warnings: string[] = []): BuildClaims {
  const claims: Omit<BuildClaims, 'sub'> & { build_number: number; replayed?: boolean; restarted_from?: number } = {
    jenkins_instance: client.name,
    jenkins_url: client.jenkinsUrl,
    job: checkJob(input.job),
    build_number: checkPositiveInt('build_number', input.build_number),
    build_url: checkBuildUrl(input.build_url, client.jenkinsUrl),
  };
  if (input.ref !== undefined) {
    claims.ref = checkText('ref', input.ref, LIMITS.ref);
    claims.ref_type = refTypeOf(claims.ref);
  }
  if (input.pull_request !== undefined) {
    claims.pull_request = checkText('pull_request', input.pull_request, LIMITS.pull_request);
    if (!/^[A-Za-z0-9._/-]+$/.test(claims.pull_request)) {
      throw new InputError('pull_request', 'must be a change request id of letters, digits and . _ / -');
    }
    if (claims.ref_type && claims.ref_type !== 'pull_request') {
      throw new InputError('pull_request', `is set, but ref ${claims.ref} is a ${claims.ref_type}, not a pull request ref`);
    }
    claims.ref_type = 'pull_request';
  }
  if (input.commit !== undefined) {
    if (!/^[0-9a-fA-F]{7,64}$/.test(input.commit)) {
      throw new InputError('commit', `must be a hexadecimal commit id of 7 to 64 characters, got "${truncate(input.commit)}"`);
    }
    claims.commit = input.commit.toLowerCase();
  }
  if (input.repository !== undefined) claims.repository = checkText('repository', input.repository, LIMITS.repository);
  if (input.triggered_by !== undefined) claims.triggered_by = checkText('triggered_by', input.triggered_by, LIMITS.triggered_by);
  if (input.replayed !== undefined) claims.replayed = checkBoolean('replayed', input.replayed);
  if (input.restarted_from !== undefined) {
    claims.restarted_from = checkPositiveInt('restarted_from', input.restarted_from);
    if (claims.restarted_from >= claims.build_number) {
      throw new InputError('restarted_from', `must be an earlier build than ${claims.build_number}, got ${claims.restarted_from}`);
    }
  }
  // sub, tags and source identity render a number or boolean the same either way ("42", "true").
  const sub = client.subTemplate ? renderSubTemplate(client.subTemplate, claims) : renderSub(client.subClaims, claims);
  const result: BuildClaims = { sub, ...claims };
  if ((client.claimTypes ?? 'json') === 'string') {
    result.build_number = String(claims.build_number);
    if (claims.replayed !== undefined) result.replayed = String(claims.replayed);
    if (claims.restarted_from !== undefined) result.restarted_from = String(claims.restarted_from);
  }
  const aws = client.aws ?? NO_AWS_CLAIMS;
  const tags = renderSessionTags(aws, claims, warnings);
  if (tags) result[AWS_TAGS_CLAIM] = tags;
  const sourceIdentity = aws.sourceIdentity === null ? undefined : renderSourceIdentity(aws.sourceIdentity, claims);
  if (sourceIdentity) result[AWS_SOURCE_IDENTITY_CLAIM] = sourceIdentity;
  return result;
}
