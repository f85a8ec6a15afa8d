// AssumeRoleWithWebIdentity through the AWS SDK (bundled into the agent). The
// call is unsigned: the agent needs no AWS credentials to make it.
//
// The SDK's own retries are off (maxAttempts 1) so that this file alone
// decides what is retried: throttling, network failures, 5xx and
// IDPCommunicationError (STS could not reach the issuer in time) are; a
// refusal (AccessDenied, InvalidIdentityToken, ExpiredTokenException,
// IDPRejectedClaim, ValidationError) never is: asking again gives the same
// answer. Refusals are explained next to what the token carried, so a trust
// policy mismatch shows at a glance.
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { STS_NAME_PATTERN, sanitizeStsName } from '../claims/aws.js';
import { AgentError, usage } from './errors.js';
import type { TokenClaims } from './id-token.js';
import { withRetries, type RetryOptions } from './retry.js';

export interface RoleArn {
  arn: string;
  partition: string;
  account: string;
  name: string;
}

export function parseRoleArn(arn: string): RoleArn {
  const m = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/.exec(arn);
  if (!m) throw usage(`--role-arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/deploy, got "${arn}"`);
  return { arn, partition: m[1]!, account: m[2]!, name: m[3]! };
}

export function checkAllowedAccount(account: string, allowed: string[] | undefined, what: string): void {
  if (allowed && allowed.length && !allowed.includes(account)) {
    throw new AgentError('refused', `${what} is in AWS account ${account}, which is not in --allowed-account-ids (${allowed.join(', ')})`);
  }
}

/** RoleSessionName from the token: "<job>-<build>", STS characters only, the job's end kept when too long. */
export function defaultSessionName(claims: TokenClaims): string {
  if (typeof claims.job !== 'string' || !claims.job) return 'jenkins-oidc-agent';
  const suffix = claims.build_number === undefined ? '' : `-${claims.build_number}`;
  const job = sanitizeStsName(claims.job.replaceAll('/', '.'));
  const name = `${job.slice(-(64 - suffix.length))}${suffix}`;
  return STS_NAME_PATTERN.test(name) ? name : 'jenkins-oidc-agent';
}

export function checkSessionName(name: string): string {
  if (!STS_NAME_PATTERN.test(name)) {
    throw usage(`--session-name must be 2-64 characters of letters, digits and _ + = , . @ -, got "${name}"`);
  }
  return name;
}

export interface AssumeRoleInput {
  role: RoleArn;
  webIdentityToken: string;
  claims: TokenClaims;
  sessionName: string;
  durationSeconds: number;
  region: string;
  endpoint: string | undefined;
  retry: RetryOptions;
}

export interface AssumedRole {
  credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
  assumedRoleUser: { Arn: string; AssumedRoleId: string };
  subjectFromWebIdentityToken?: string;
  audience?: string;
  provider?: string;
  sourceIdentity?: string;
}

const RETRIED = new Set([
  'IDPCommunicationError',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'InternalFailure',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);
const NEVER_RETRIED = new Set(['AccessDenied', 'InvalidIdentityToken', 'ExpiredTokenException', 'IDPRejectedClaim', 'ValidationError', 'MalformedPolicyDocument', 'PackedPolicyTooLarge', 'RegionDisabledException']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The SDK names modeled errors after their exception shapes; show and match the codes STS sends. */
const WIRE_CODES: Record<string, string> = {
  InvalidIdentityTokenException: 'InvalidIdentityToken',
  IDPCommunicationErrorException: 'IDPCommunicationError',
  IDPRejectedClaimException: 'IDPRejectedClaim',
  MalformedPolicyDocumentException: 'MalformedPolicyDocument',
  PackedPolicyTooLargeException: 'PackedPolicyTooLarge',
};

export function stsErrorCode(err: unknown): string {
  const name = (err as SdkError).name ?? 'Error';
  return WIRE_CODES[name] ?? name;
}

export function classifyStsError(err: unknown): { retry: boolean; reason: string } {
  const e = err as SdkError;
  const name = stsErrorCode(err);
  if (NEVER_RETRIED.has(name)) return { retry: false, reason: name };
  if (RETRIED.has(name)) return { retry: true, reason: name };
  if (e.code && NETWORK_CODES.has(e.code)) return { retry: true, reason: e.code };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return { retry: true, reason: `${name} (HTTP ${status})` };
  // Anything else without an HTTP answer is a local mistake (a malformed
  // region, a programming error), not a network problem: not retried.
  return { retry: false, reason: name };
}

export async function assumeRoleWithWebIdentity(input: AssumeRoleInput): Promise<AssumedRole> {
  // Explicit timeouts: the SDK has none by default, and a stalled connection
  // would hang every tool asking for credentials through credential_process.
  // 30 s leaves room for STS fetching our discovery and JWKS itself.
  const client = new STSClient({
    region: input.region,
    endpoint: input.endpoint,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 },
  });
  try {
    const out = await withRetries(
      () =>
        client.send(
          new AssumeRoleWithWebIdentityCommand({
            RoleArn: input.role.arn,
            RoleSessionName: input.sessionName,
            WebIdentityToken: input.webIdentityToken,
            DurationSeconds: input.durationSeconds,
          }),
        ),
      classifyStsError,
      input.retry,
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration || !out.AssumedRoleUser?.Arn) {
      throw new AgentError('unavailable', 'AWS STS answered without credentials');
    }
    return {
      credentials: { AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: new Date(c.Expiration).toISOString() },
      assumedRoleUser: { Arn: out.AssumedRoleUser.Arn, AssumedRoleId: out.AssumedRoleUser.AssumedRoleId ?? '' },
      subjectFromWebIdentityToken: out.SubjectFromWebIdentityToken,
      audience: out.Audience,
      provider: out.Provider,
      sourceIdentity: out.SourceIdentity,
    };
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw explain(err as SdkError, input);
  } finally {
    client.destroy();
  }
}

/** "oidc.example.com/jenkins" for the condition keys of a trust policy. */
export function conditionPrefix(iss: string | undefined): string {
  return (iss ?? '').replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

function tokenLines(claims: TokenClaims): string[] {
  const aud = Array.isArray(claims.aud) ? claims.aud.join(', ') : claims.aud;
  const prefix = conditionPrefix(claims.iss);
  const lines = [
    'The ID token carried:',
    `  iss  ${claims.iss ?? '(none)'}`,
    `  aud  ${aud ?? '(none)'}`,
    `  sub  ${claims.sub ?? '(none)'}`,
  ];
  const tags = claims['https://aws.amazon.com/tags']?.principal_tags;
  if (tags) lines.push(`  session tags     ${Object.entries(tags).map(([k, v]) => `${k}=${v.join(',')}`).join('  ')}`);
  const sourceIdentity = claims['https://aws.amazon.com/source_identity'];
  if (sourceIdentity) lines.push(`  source identity  ${sourceIdentity}`);
  lines.push(
    'A trust policy admits it when its Federated principal is the IAM OIDC provider for that iss, and its conditions match:',
    `  "${prefix}:aud": "${aud ?? ''}"`,
    `  "${prefix}:sub": "${claims.sub ?? ''}"   (or a StringLike pattern matching it)`,
  );
  return lines;
}

function explain(err: SdkError, input: AssumeRoleInput): AgentError {
  const code = stsErrorCode(err);
  const said = err.message ? `${code}: ${err.message}` : code;
  const head = `AWS STS refused AssumeRoleWithWebIdentity for ${input.role.arn} (${said})`;
  const claims = input.claims;
  const hasTags = Boolean(claims['https://aws.amazon.com/tags']);
  const hasSourceIdentity = Boolean(claims['https://aws.amazon.com/source_identity']);
  switch (code) {
    case 'AccessDenied': {
      const actions = ['sts:AssumeRoleWithWebIdentity', ...(hasTags ? ['sts:TagSession'] : []), ...(hasSourceIdentity ? ['sts:SetSourceIdentity'] : [])];
      return new AgentError('refused', head, [
        `What it means: the role's trust policy does not admit this token. It must allow ${actions.join(', ')}` +
          (hasTags || hasSourceIdentity ? ` (this token carries ${[hasTags && 'session tags', hasSourceIdentity && 'a source identity'].filter(Boolean).join(' and ')})` : '') +
          ', and its conditions must match the claims below.',
        ...tokenLines(claims),
        'The token service prints a matching policy: jenkins-oidc aws trust-policy --client NAME --sub PATTERN',
      ]);
    }
    case 'InvalidIdentityToken':
      return new AgentError('refused', head, [
        'What it means: AWS did not accept the token itself. Either the role\'s account has no IAM OIDC provider for this',
        'issuer, the audience is not in the provider\'s client ID list, or the signature did not verify against the',
        "issuer's JWKS (is the issuer reachable from the internet over https?).",
        ...tokenLines(claims),
      ]);
    case 'ExpiredTokenException':
      return new AgentError('refused', head, [
        'What it means: the ID token had expired when STS checked it. The clocks of this machine or of the token service',
        'may be wrong, or the token file was not refreshed (use --refresh with --format web-identity).',
        ...tokenLines(claims),
      ]);
    case 'IDPRejectedClaim':
      return new AgentError('refused', head, [
        'What it means: AWS rejected a claim of the token, typically its session tags or source identity',
        '(count, characters or lengths), or the identity provider is not trusted by this role.',
        ...tokenLines(claims),
      ]);
    case 'IDPCommunicationError':
      return new AgentError('unavailable', `${head}, after ${input.retry.maxAttempts} attempt(s)`, [
        `What it means: AWS could not fetch ${claims.iss ?? 'the issuer'}/.well-known/openid-configuration or its JWKS in time.`,
        'The issuer must be reachable from AWS over https, with a valid certificate, and answer within a few seconds.',
      ]);
    case 'ValidationError':
      return new AgentError('refused', head, [
        'What it means: a parameter is outside what AWS allows: --duration-seconds above the role\'s maximum session',
        'duration (MaxSessionDuration, 1 hour unless raised), a session name outside 2-64 characters of [\\w+=,.@-],',
        'or the token\'s session tags or source identity ("Unable to validate tags"): at most 50 tags, keys up to 128',
        'and values up to 256 characters, source identity 2-64 characters (jenkins-oidc clients update NAME ...).',
        ...tokenLines(claims),
      ]);
    case 'RegionDisabledException':
      return new AgentError('refused', head, [`What it means: STS is not activated in region ${input.region} for this account; choose another --region.`]);
    default: {
      const { retry, reason } = classifyStsError(err);
      if (retry) {
        return new AgentError('unavailable', `could not reach AWS STS${input.endpoint ? ` at ${input.endpoint}` : ` in ${input.region}`} after ${input.retry.maxAttempts} attempt(s): ${reason}`);
      }
      return new AgentError('refused', head);
    }
  }
}

// ---- role chaining ------------------------------------------------------------------
// A further role assumed with the web-identity session's credentials
// (sts:AssumeRole, a signed call): a deploy role in another account, as
// configure-aws-credentials' role-chaining does. AWS caps a chained session
// at one hour whatever the role's MaxSessionDuration
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining),
// so a chained hop asks for at most 3600 s; long builds refresh by running
// the agent again (aws-config's credential_process does it for the SDKs).

/** The longest session AWS grants a role assumed by role chaining. */
export const CHAINED_SESSION_MAX_S = 3600;

export interface ChainInput {
  role: RoleArn;
  /** The session doing the assuming (the previous hop). */
  from: AssumedRole;
  sessionName: string;
  durationSeconds: number;
  region: string;
  endpoint: string | undefined;
  retry: RetryOptions;
}

export async function assumeChainedRole(input: ChainInput): Promise<AssumedRole> {
  const client = new STSClient({
    region: input.region,
    endpoint: input.endpoint,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 },
    credentials: {
      accessKeyId: input.from.credentials.AccessKeyId,
      secretAccessKey: input.from.credentials.SecretAccessKey,
      sessionToken: input.from.credentials.SessionToken,
    },
  });
  try {
    const out = await withRetries(
      () =>
        client.send(
          new AssumeRoleCommand({
            RoleArn: input.role.arn,
            RoleSessionName: input.sessionName,
            DurationSeconds: Math.min(input.durationSeconds, CHAINED_SESSION_MAX_S),
          }),
        ),
      classifyStsError,
      input.retry,
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration || !out.AssumedRoleUser?.Arn) {
      throw new AgentError('unavailable', 'AWS STS answered without credentials');
    }
    return {
      credentials: { AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: new Date(c.Expiration).toISOString() },
      assumedRoleUser: { Arn: out.AssumedRoleUser.Arn, AssumedRoleId: out.AssumedRoleUser.AssumedRoleId ?? '' },
      sourceIdentity: out.SourceIdentity,
    };
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw explainChain(err as SdkError, input);
  } finally {
    client.destroy();
  }
}

/** The IAM role ARN behind an assumed-role session ARN: what the next role's trust policy names as its AWS principal. */
export function sessionRoleArn(assumedRoleArn: string): string {
  const m = /^arn:([^:]+):sts::(\d{12}):assumed-role\/([^/]+)\//.exec(assumedRoleArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : assumedRoleArn;
}

function explainChain(err: SdkError, input: ChainInput): AgentError {
  const code = stsErrorCode(err);
  const said = err.message ? `${code}: ${err.message}` : code;
  const head = `AWS STS refused AssumeRole (role chaining) for ${input.role.arn} from ${input.from.assumedRoleUser.Arn} (${said})`;
  if (code === 'AccessDenied') {
    return new AgentError('refused', head, [
      `What it means: ${input.role.arn}'s trust policy must allow sts:AssumeRole to the principal {"AWS": "${sessionRoleArn(input.from.assumedRoleUser.Arn)}"}`,
      `(or its account), and that role's permissions must allow sts:AssumeRole on ${input.role.arn}.`,
    ]);
  }
  if (code === 'ValidationError') return new AgentError('refused', head, ['What it means: a chained session lasts at most 1 hour, and the session name must be 2-64 characters of [\\w+=,.@-].']);
  const { retry, reason } = classifyStsError(err);
  if (retry) return new AgentError('unavailable', `could not reach AWS STS${input.endpoint ? ` at ${input.endpoint}` : ` in ${input.region}`} after ${input.retry.maxAttempts} attempt(s): ${reason}`);
  return new AgentError('refused', head);
}
