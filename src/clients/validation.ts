// What a client registration may contain. Validated when written, so a bad
// record can never reach the token path.
import { DEFAULT_SUB_CLAIMS, BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from '../claims/names.js';
import { InputError, checkText, checkUrl } from '../claims/text.js';

/** The built-in public client that builds use for the exchange; never a controller's name. */
export const BUILD_CLIENT_ID = 'jenkins-build';
export const DEFAULT_AUDIENCES = ['sts.amazonaws.com'];
export { DEFAULT_SUB_CLAIMS };

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether a string could be a client_id at all: anything else is refused without a database lookup. */
export function isClientName(value: string): boolean {
  return NAME.test(value) && value.length >= 2;
}

export function checkName(name: string): string {
  if (!NAME.test(name) || name.length < 2) {
    throw new InputError('name', 'must be a slug of 2-63 lowercase letters, digits and dashes, starting and ending with a letter or digit (it becomes client_id and jenkins_instance)');
  }
  if (name === BUILD_CLIENT_ID) throw new InputError('name', `"${BUILD_CLIENT_ID}" is reserved for the built-in build client`);
  return name;
}

/** Normalised without trailing slash: https://jenkins.example.com/ci */
export function checkJenkinsUrl(value: string): string {
  const url = checkUrl('jenkins_url', value);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export function checkAudiences(values: string[]): string[] {
  if (values.length === 0) throw new InputError('audiences', 'at least one audience is needed (AWS uses sts.amazonaws.com)');
  if (values.length > 20) throw new InputError('audiences', 'at most 20 audiences');
  const seen = new Set<string>();
  for (const v of values) {
    checkText('audiences', v, 255);
    if (/\s|,/.test(v)) throw new InputError('audiences', `"${v}" must not contain spaces or commas`);
    if (seen.has(v)) throw new InputError('audiences', `"${v}" is listed twice`);
    seen.add(v);
  }
  return values;
}

export function checkSubClaims(values: string[]): BuildClaimName[] {
  if (values.length === 0) throw new InputError('sub_claims', 'at least one claim is needed');
  const seen = new Set<string>();
  for (const v of values) {
    if (!isBuildClaim(v)) throw new InputError('sub_claims', `"${v}" is not a build claim; choose from ${BUILD_CLAIMS.join(', ')}`);
    if (seen.has(v)) throw new InputError('sub_claims', `"${v}" is listed twice`);
    seen.add(v);
  }
  // AWS trust policies see only sub and aud. Without the controller in sub,
  // another controller's build of a job with the same name would present the
  // same sub, and one controller could assume roles meant for another's jobs.
  if (!seen.has('jenkins_instance') && !seen.has('jenkins_url')) {
    throw new InputError('sub_claims', 'must include jenkins_instance (or jenkins_url), or builds of another controller could present the same sub');
  }
  return values as BuildClaimName[];
}

export function checkMaxTtl(value: number, ceiling: number): number {
  if (!Number.isInteger(value) || value < 60 || value > ceiling) {
    throw new InputError('max_request_token_ttl', `must be whole seconds between 60 and REQUEST_TOKEN_MAX_TTL (${ceiling}), got ${value}`);
  }
  return value;
}
