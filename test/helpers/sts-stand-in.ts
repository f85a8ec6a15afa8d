// An AWS STS stand-in for the test suite: the only part of the outside world
// the tests replace. It serves AssumeRoleWithWebIdentity and GetCallerIdentity
// over HTTPS (test CA) in STS's query protocol and XML shapes, and decides the
// way AWS documents it:
//
// 1. parameters: RoleArn, RoleSessionName (2-64 of [\w+=,.@-]), WebIdentityToken
//    (4-20000 characters), DurationSeconds (900-43200, and at most the role's
//    MaxSessionDuration)                                       -> ValidationError
// 2. the role must exist                                        -> AccessDenied
// 3. the token's iss must be an IAM OIDC provider of the role's account
//    (https, URL compared exactly), its aud one of the provider's client IDs
//                                                              -> InvalidIdentityToken
// 4. discovery and JWKS fetched from the issuer over HTTPS (trusting only the
//    test CA) within 5 s                                       -> IDPCommunicationError
//    (the discovery document's issuer must equal iss)
// 5. header kid present and found; the JWK has kid, alg, use and an RSA modulus
//    without a leading zero byte; the signature verifies        -> InvalidIdentityToken
// 6. exp in the future (stand-in clock)                        -> ExpiredTokenException
//    nbf not in the future                                      -> InvalidIdentityToken
// 7. trust policy: an Allow statement whose Federated principal is the provider,
//    whose Action includes sts:AssumeRoleWithWebIdentity, and whose conditions
//    (StringEquals, StringLike, StringNotEquals, StringNotLike, ...IfExists) hold
//    on <provider>:sub, :aud, aws:RequestTag/K, sts:SourceIdentity; no such
//    Deny statement; session tags also need sts:TagSession, a source identity
//    sts:SetSourceIdentity                                      -> AccessDenied
// 8. session tags (principal_tags: at most 50, key <= 128, value <= 256 from
//    [\p{L}\p{Z}\p{N}_.:/=+\-@], one value each; transitive keys among them)
//    and source identity (2-64 of [\w+=,.@-])                   -> ValidationError
//
// 9. AssumeRole (role chaining, a signed call): the request must carry a
//    SigV4 signature made with credentials this stand-in issued and that
//    have not expired, with their session token (x-amz-security-token)
//    (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)
//                                                   -> InvalidClientTokenId / SignatureDoesNotMatch / ExpiredToken
//    the target role's trust policy must allow sts:AssumeRole to the calling
//    session's role ARN (Principal AWS: the role, or the account's root)
//                                                   -> AccessDenied
//    a session assumed by role chaining lasts at most one hour
//    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining)
//                                                   -> ValidationError
//    and keeps the source identity of the session it came from
//    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html).
//
// Tests can inject transient failures (Throttling, IDPCommunicationError,
// InternalFailure, IDPRejectedClaim...) for the next N calls, count calls,
// move the stand-in's clock, and make it treat tokens issued before a given
// second as expired: as if those tokens' lifetime had run out (the service's
// shortest ID_TOKEN_TTL, 60 s, is too long for a test). A cut-off rather than
// a maximum age: a token issued after it stays good however long a busy
// machine takes to present it.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { TestCa } from './test-ca.js';

export interface TrustStatement {
  Effect: 'Allow' | 'Deny';
  Principal: { Federated: unknown };
  Action: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface TrustPolicyDocument {
  Version?: string;
  Statement: TrustStatement[];
}

export interface StsCall {
  action: string;
  /** 'ok' or the error code answered. */
  outcome: string;
  roleArn?: string;
  sessionName?: string;
  claims?: Record<string, unknown>;
  sourceIdentity?: string;
  tags?: Record<string, string>;
  accessKeyId?: string;
}

interface IssuedCredentials {
  secret: string;
  sessionToken: string;
  expiration: number;
  assumedRoleArn: string;
  assumedRoleId: string;
  account: string;
  /** arn:aws:iam::<account>:role/<name>: what a chained role's trust policy names. */
  roleArn: string;
  sourceIdentity?: string;
  /** Issued by AssumeRole from another session: role chaining. */
  chained?: boolean;
}

export interface AwsPrincipalStatement {
  Effect: 'Allow' | 'Deny';
  Principal: { AWS: string | string[] };
  Action: string | string[];
}

class StsError extends Error {
  constructor(readonly code: string, message: string, readonly status = 400, readonly type: 'Sender' | 'Receiver' = 'Sender') {
    super(message);
  }
}

const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const STS_NAME = /^[\w+=,.@-]{2,64}$/;

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function glob(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  return new RegExp(`^${re}$`).test(value);
}

export class StsStandIn {
  url = '';
  calls: StsCall[] = [];
  /** Fetches of discovery and JWKS, as AWS makes them on every call. */
  idpFetches = 0;
  clockOffsetSeconds = 0;
  /** Treat tokens whose iat is before this second as expired (ExpiredTokenException). */
  expireTokensIssuedBefore: number | undefined;
  private readonly providers = new Map<string, { url: string; clientIds: string[] }>();
  private readonly roles = new Map<string, { policy: TrustPolicyDocument; maxSessionDuration: number }>();
  private readonly chainableRoles = new Map<string, { statements: AwsPrincipalStatement[]; maxSessionDuration: number }>();
  private readonly issued = new Map<string, IssuedCredentials>();
  private readonly failures: { code: string; left: number }[] = [];
  private server: https.Server | undefined;
  private readonly idpAgent: https.Agent;

  constructor(private readonly ca: TestCa) {
    // Trusts the test CA only: like AWS, it verifies the issuer's certificate.
    this.idpAgent = new https.Agent({ ca: ca.rootPem, keepAlive: false });
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  /** Registers an IAM OIDC provider; returns its ARN. `url` as in CloudFormation: https://host/path. */
  addOidcProvider(account: string, url: string, clientIds: string[]): string {
    const bare = url.replace(/^https:\/\//, '').replace(/\/+$/, '');
    const arn = `arn:aws:iam::${account}:oidc-provider/${bare}`;
    this.providers.set(arn, { url: bare, clientIds });
    return arn;
  }

  addRole(arn: string, policy: TrustPolicyDocument, maxSessionDuration = 3600): void {
    this.roles.set(arn, { policy, maxSessionDuration });
  }

  /** A role assumed by sts:AssumeRole from another role's session (its trust policy names AWS principals). */
  addChainedRole(arn: string, statements: AwsPrincipalStatement[], maxSessionDuration = 3600): void {
    this.chainableRoles.set(arn, { statements, maxSessionDuration });
  }

  /** The next `count` AssumeRoleWithWebIdentity calls fail with `code`. */
  failNext(code: string, count = 1): void {
    this.failures.push({ code, left: count });
  }

  /** What STS issued under an access key ID (to assert the agent's output exactly). */
  issuedCredentials(accessKeyId: string): { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string } | undefined {
    const c = this.issued.get(accessKeyId);
    return c && { AccessKeyId: accessKeyId, SecretAccessKey: c.secret, SessionToken: c.sessionToken, Expiration: new Date(c.expiration * 1000).toISOString() };
  }

  clearFailures(): void {
    this.failures.length = 0;
  }

  callsTo(action = 'AssumeRoleWithWebIdentity'): StsCall[] {
    return this.calls.filter((c) => c.action === action);
  }

  async start(): Promise<this> {
    this.server = https.createServer({ key: this.ca.serverKeyPem, cert: this.ca.serverChainPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const form = new URLSearchParams(raw);
        this.handle(form, req.headers, { method: req.method ?? 'POST', url: req.url ?? '/', raw })
          .then((body) => {
            res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
            res.end(body);
          })
          .catch((err: unknown) => {
            const e = err instanceof StsError ? err : new StsError('InternalFailure', `stand-in fault: ${(err as Error).message}`, 500, 'Receiver');
            res.writeHead(e.status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
            res.end(
              `<ErrorResponse xmlns="${NS}">\n  <Error>\n    <Type>${e.type}</Type>\n    <Code>${e.code}</Code>\n    <Message>${xml(e.message)}</Message>\n  </Error>\n  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`,
            );
          });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.idpAgent.destroy();
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  private async handle(form: URLSearchParams, headers: Record<string, string | string[] | undefined>, request: { method: string; url: string; raw: string }): Promise<string> {
    const action = form.get('Action') ?? '';
    if (action === 'GetCallerIdentity') return this.getCallerIdentity(headers);
    if (action === 'AssumeRole') {
      const call: StsCall = { action, outcome: 'ok', roleArn: form.get('RoleArn') ?? undefined, sessionName: form.get('RoleSessionName') ?? undefined };
      this.calls.push(call);
      try {
        return this.assumeRole(form, headers, request, call);
      } catch (err) {
        call.outcome = err instanceof StsError ? err.code : 'InternalFailure';
        throw err;
      }
    }
    if (action !== 'AssumeRoleWithWebIdentity') throw new StsError('InvalidAction', `Could not find operation ${action} for version ${form.get('Version')}`);
    const call: StsCall = { action, outcome: 'ok', roleArn: form.get('RoleArn') ?? undefined, sessionName: form.get('RoleSessionName') ?? undefined };
    this.calls.push(call);
    try {
      return await this.assumeRoleWithWebIdentity(form, call);
    } catch (err) {
      call.outcome = err instanceof StsError ? err.code : 'InternalFailure';
      throw err;
    }
  }

  private injected(): void {
    const next = this.failures[0];
    if (!next) return;
    next.left -= 1;
    if (next.left <= 0) this.failures.shift();
    const messages: Record<string, [string, number, 'Sender' | 'Receiver']> = {
      Throttling: ['Rate exceeded', 400, 'Sender'],
      IDPCommunicationError: ["Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements", 400, 'Sender'],
      InternalFailure: ['An internal error occurred', 500, 'Receiver'],
      IDPRejectedClaim: ['The identity provider rejected the claim', 403, 'Sender'],
    };
    const [message, status, type] = messages[next.code] ?? [`injected ${next.code}`, 400, 'Sender'];
    throw new StsError(next.code, message, status, type);
  }

  private async assumeRoleWithWebIdentity(form: URLSearchParams, call: StsCall): Promise<string> {
    this.injected();
    const roleArn = form.get('RoleArn') ?? '';
    const sessionName = form.get('RoleSessionName') ?? '';
    const token = form.get('WebIdentityToken') ?? '';
    const duration = Number(form.get('DurationSeconds') ?? 3600);
    const invalid: string[] = [];
    if (roleArn.length < 20 || roleArn.length > 2048) invalid.push(`Value '${roleArn}' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20`);
    if (!STS_NAME.test(sessionName)) invalid.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    if (token.length < 4 || token.length > 20000) invalid.push(`Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 20000`);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) invalid.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
    if (invalid.length) throw new StsError('ValidationError', `${invalid.length} validation error${invalid.length > 1 ? 's' : ''} detected: ${invalid.join('; ')}`);

    const role = this.roles.get(roleArn);
    const denied = () => new StsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
    if (!role) throw denied();
    const account = /^arn:aws:iam::(\d{12}):role\//.exec(roleArn)?.[1] ?? '';
    if (duration > role.maxSessionDuration) throw new StsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');

    let claims: Record<string, unknown>;
    let header: { kid?: string; alg?: string };
    try {
      claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
      header = decodeProtectedHeader(token);
    } catch {
      throw new StsError('InvalidIdentityToken', 'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)');
    }
    call.claims = claims;
    const iss = String(claims.iss ?? '');
    if (!iss.startsWith('https://')) throw new StsError('InvalidIdentityToken', `Issuer must be a valid URL`);
    const bare = iss.slice('https://'.length);
    const providerArn = `arn:aws:iam::${account}:oidc-provider/${bare}`;
    const provider = this.providers.get(providerArn);
    if (!provider) throw new StsError('InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${iss}`);
    // AWS matches the client ID list (and the :aud condition key) against azp
    // when a token carries one, else against aud: emitting azp would change
    // what a trust policy sees, so the stand-in behaves the same way.
    const aud = claims.azp !== undefined ? claims.azp : claims.aud;
    if (typeof aud !== 'string' || !provider.clientIds.includes(aud)) throw new StsError('InvalidIdentityToken', 'Incorrect token audience');

    const jwks = await this.fetchKeys(iss);
    if (!header.kid) throw new StsError('InvalidIdentityToken', 'The web identity token has no kid header');
    const jwk = jwks.find((k) => k.kid === header.kid);
    if (!jwk) throw new StsError('InvalidIdentityToken', `Unable to find a matching key for kid ${header.kid} in the issuer's JWKS`);
    if (!jwk.alg || !jwk.use) throw new StsError('InvalidIdentityToken', 'The JWK for this token has no alg or use');
    if (jwk.kty === 'RSA' && Buffer.from(String(jwk.n), 'base64url')[0] === 0) throw new StsError('InvalidIdentityToken', 'The JWK modulus is not a valid base64url unsigned integer');
    try {
      await compactVerify(token, await importJWK(jwk, header.alg));
    } catch {
      throw new StsError('InvalidIdentityToken', 'The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.');
    }

    const now = this.now();
    const exp = Number(claims.exp);
    if (!Number.isInteger(exp) || now >= exp) {
      throw new StsError('ExpiredTokenException', `Token expired: current date/time ${now} must be before the expiration date/time ${exp}`);
    }
    if (this.expireTokensIssuedBefore !== undefined && Number(claims.iat) < this.expireTokensIssuedBefore) {
      throw new StsError('ExpiredTokenException', `Token expired: current date/time ${now} must be before the expiration date/time ${Math.min(now, this.expireTokensIssuedBefore) - 1}`);
    }
    if (claims.nbf !== undefined && now < Number(claims.nbf)) throw new StsError('InvalidIdentityToken', 'Token is not yet valid (nbf)');

    const tags = this.sessionTags(claims['https://aws.amazon.com/tags']);
    const sourceIdentity = claims['https://aws.amazon.com/source_identity'];
    if (sourceIdentity !== undefined && (typeof sourceIdentity !== 'string' || !STS_NAME.test(sourceIdentity))) {
      throw new StsError('ValidationError', `1 validation error detected: Value '${String(sourceIdentity)}' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    }
    call.tags = tags;
    call.sourceIdentity = sourceIdentity as string | undefined;

    const context: Record<string, string[]> = {
      [`${bare}:sub`]: [String(claims.sub ?? '')],
      [`${bare}:aud`]: [aud],
      'sts:rolesessionname': [sessionName],
    };
    if (claims.azp !== undefined) context[`${bare}:azp`] = [String(claims.azp)];
    for (const [k, v] of Object.entries(tags ?? {})) context[`aws:requesttag/${k}`.toLowerCase()] = [v];
    if (sourceIdentity) context['sts:sourceidentity'] = [sourceIdentity as string];
    const needed = ['sts:AssumeRoleWithWebIdentity', ...(tags ? ['sts:TagSession'] : []), ...(sourceIdentity ? ['sts:SetSourceIdentity'] : [])];
    for (const action of needed) {
      if (!this.allowed(role.policy, providerArn, action, context)) throw denied();
    }

    const accessKeyId = `ASIA${randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`;
    const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    const assumedRoleArn = `arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}`;
    const assumedRoleId = `AROA${randomBytes(8).toString('hex').toUpperCase().slice(0, 16)}:${sessionName}`;
    const issued: IssuedCredentials = {
      secret: randomBytes(30).toString('base64'),
      sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(96).toString('base64')}`,
      expiration: now + duration,
      assumedRoleArn,
      assumedRoleId,
      account,
      roleArn,
      sourceIdentity: sourceIdentity as string | undefined,
    };
    this.issued.set(accessKeyId, issued);
    call.accessKeyId = accessKeyId;
    return `<AssumeRoleWithWebIdentityResponse xmlns="${NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xml(String(claims.sub))}</SubjectFromWebIdentityToken>
    <Audience>${xml(aud)}</Audience>
    <AssumedRoleUser>
      <Arn>${xml(assumedRoleArn)}</Arn>
      <AssumedRoleId>${xml(assumedRoleId)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${issued.sessionToken}</SessionToken>
      <SecretAccessKey>${issued.secret}</SecretAccessKey>
      <Expiration>${new Date(issued.expiration * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>
      <AccessKeyId>${accessKeyId}</AccessKeyId>
    </Credentials>${sourceIdentity ? `\n    <SourceIdentity>${xml(sourceIdentity as string)}</SourceIdentity>` : ''}
    <Provider>${xml(iss)}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`;
  }

  /** Checks only that the request is made with credentials this stand-in issued and that have not expired (not the SigV4 signature). */
  private getCallerIdentity(headers: Record<string, string | string[] | undefined>): string {
    const auth = String(headers.authorization ?? '');
    const keyId = /Credential=([A-Z0-9]+)\//.exec(auth)?.[1];
    const issued = keyId ? this.issued.get(keyId) : undefined;
    this.calls.push({ action: 'GetCallerIdentity', outcome: 'ok' });
    const fail = (code: string, message: string) => {
      this.calls[this.calls.length - 1]!.outcome = code;
      return new StsError(code, message, 403);
    };
    if (!issued || headers['x-amz-security-token'] !== issued.sessionToken) throw fail('InvalidClientTokenId', 'The security token included in the request is invalid.');
    if (this.now() >= issued.expiration) throw fail('ExpiredToken', 'The security token included in the request is expired');
    return `<GetCallerIdentityResponse xmlns="${NS}">
  <GetCallerIdentityResult>
    <Arn>${xml(issued.assumedRoleArn)}</Arn>
    <UserId>${xml(issued.assumedRoleId)}</UserId>
    <Account>${issued.account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`;
  }

  /** The issued credentials a SigV4-signed request was made with, after checking its signature. */
  private signedBy(headers: Record<string, string | string[] | undefined>, request: { method: string; url: string; raw: string }): IssuedCredentials {
    const auth = String(headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)\/(\d{8})\/([a-z0-9-]+)\/sts\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new StsError('IncompleteSignature', 'Authorization header requires a SigV4 Credential, SignedHeaders and Signature', 400);
    const [, keyId, date, region, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
    const issued = this.issued.get(keyId);
    if (!issued || headers['x-amz-security-token'] !== issued.sessionToken) throw new StsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
    if (this.now() >= issued.expiration) throw new StsError('ExpiredToken', 'The security token included in the request is expired', 403);
    const names = signedHeaders.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) throw new StsError('SignatureDoesNotMatch', 'host and x-amz-date must be signed', 403);
    const url = new URL(request.url, 'https://sts');
    const query = [...url.searchParams].map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)]).sort(([a], [b]) => (a! < b! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
    const headerLines = names.map((n) => `${n}:${String(headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
    const canonical = [request.method, url.pathname, query, headerLines, signedHeaders, createHash('sha256').update(request.raw).digest('hex')].join('\n');
    const amzDate = String(headers['x-amz-date']);
    const scope = `${date}/${region}/sts/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${issued.secret}`, date), region), 'sts'), 'aws4_request');
    const expected = createHmac('sha256', key).update(toSign).digest();
    if (!amzDate.startsWith(date) || !timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
      throw new StsError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.', 403);
    }
    return issued;
  }

  private assumeRole(form: URLSearchParams, headers: Record<string, string | string[] | undefined>, request: { method: string; url: string; raw: string }, call: StsCall): string {
    const caller = this.signedBy(headers, request);
    const roleArn = form.get('RoleArn') ?? '';
    const sessionName = form.get('RoleSessionName') ?? '';
    const duration = Number(form.get('DurationSeconds') ?? 3600);
    if (!STS_NAME.test(sessionName)) throw new StsError('ValidationError', `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) throw new StsError('ValidationError', `1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
    const role = this.chainableRoles.get(roleArn);
    const denied = new StsError('AccessDenied', `User: ${caller.assumedRoleArn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
    if (!role) throw denied;
    const account = /^arn:aws:iam::(\d{12}):role\//.exec(roleArn)?.[1] ?? '';
    const admits = (s: AwsPrincipalStatement) => {
      const principals = Array.isArray(s.Principal.AWS) ? s.Principal.AWS : [s.Principal.AWS];
      const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
      return principals.some((p) => p === caller.roleArn || p === `arn:aws:iam::${caller.account}:root` || p === caller.account) && actions.some((a) => a === 'sts:AssumeRole' || a === 'sts:*');
    };
    if (role.statements.some((s) => s.Effect === 'Deny' && admits(s)) || !role.statements.some((s) => s.Effect === 'Allow' && admits(s))) throw denied;
    // Every session here came from a role, so every AssumeRole is role chaining.
    if (duration > 3600) throw new StsError('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
    if (duration > role.maxSessionDuration) throw new StsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    const accessKeyId = `ASIA${randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`;
    const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    const issued: IssuedCredentials = {
      secret: randomBytes(30).toString('base64'),
      sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(96).toString('base64')}`,
      expiration: this.now() + duration,
      assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${roleName}/${sessionName}`,
      assumedRoleId: `AROA${randomBytes(8).toString('hex').toUpperCase().slice(0, 16)}:${sessionName}`,
      account,
      roleArn,
      sourceIdentity: caller.sourceIdentity,
      chained: true,
    };
    this.issued.set(accessKeyId, issued);
    call.accessKeyId = accessKeyId;
    call.sourceIdentity = issued.sourceIdentity;
    return `<AssumeRoleResponse xmlns="${NS}">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>${xml(issued.assumedRoleArn)}</Arn>
      <AssumedRoleId>${xml(issued.assumedRoleId)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${issued.sessionToken}</SessionToken>
      <SecretAccessKey>${issued.secret}</SecretAccessKey>
      <Expiration>${new Date(issued.expiration * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>
      <AccessKeyId>${accessKeyId}</AccessKeyId>
    </Credentials>${issued.sourceIdentity ? `\n    <SourceIdentity>${xml(issued.sourceIdentity)}</SourceIdentity>` : ''}
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
`;
  }

  private sessionTags(claim: unknown): Record<string, string> | undefined {
    if (claim === undefined) return undefined;
    const bad = (why: string) => new StsError('ValidationError', `The session tags in the web identity token are not valid: ${why}`);
    const c = claim as { principal_tags?: unknown; transitive_tag_keys?: unknown };
    if (typeof c !== 'object' || c === null || typeof c.principal_tags !== 'object' || c.principal_tags === null) throw bad('principal_tags must be an object');
    const entries = Object.entries(c.principal_tags as Record<string, unknown>);
    if (entries.length > 50) throw bad('at most 50 tags');
    const tags: Record<string, string> = {};
    for (const [k, v] of entries) {
      if (k.length < 1 || k.length > 128 || !TAG_CHARS.test(k)) throw bad(`tag key "${k}"`);
      if (!Array.isArray(v) || v.length !== 1 || typeof v[0] !== 'string') throw bad(`tag ${k} must have one string value`);
      if (Array.from(v[0] as string).length > 256 || !TAG_CHARS.test(v[0] as string)) throw bad(`tag value of ${k}`);
      if (Object.keys(tags).some((t) => t.toLowerCase() === k.toLowerCase())) throw bad(`duplicate tag key ${k}`);
      tags[k] = v[0] as string;
    }
    if (c.transitive_tag_keys !== undefined) {
      if (!Array.isArray(c.transitive_tag_keys) || c.transitive_tag_keys.some((k) => typeof k !== 'string' || !(k in tags))) throw bad('transitive_tag_keys must name tags');
    }
    return tags;
  }

  private allowed(policy: TrustPolicyDocument, providerArn: string, action: string, context: Record<string, string[]>): boolean {
    const applies = (s: TrustStatement) => {
      const federated = s.Principal?.Federated;
      const principals = Array.isArray(federated) ? federated : [federated];
      if (!principals.includes(providerArn)) return false;
      const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
      if (!actions.some((a) => a === action || a === 'sts:*' || a === '*')) return false;
      return Object.entries(s.Condition ?? {}).every(([operator, block]) =>
        Object.entries(block).every(([key, expected]) => this.condition(operator, context[key.toLowerCase()] ?? context[key], Array.isArray(expected) ? expected : [expected])),
      );
    };
    const statements = policy.Statement ?? [];
    if (statements.some((s) => s.Effect === 'Deny' && applies(s))) return false;
    return statements.some((s) => s.Effect === 'Allow' && applies(s));
  }

  private condition(operator: string, values: string[] | undefined, expected: string[]): boolean {
    const ifExists = operator.endsWith('IfExists');
    const op = ifExists ? operator.slice(0, -'IfExists'.length) : operator;
    if (values === undefined) return ifExists || op.startsWith('StringNot');
    const match = (v: string) =>
      op === 'StringEquals' || op === 'StringNotEquals' ? expected.includes(v) : op === 'StringLike' || op === 'StringNotLike' ? expected.some((p) => glob(p, v)) : false;
    switch (op) {
      case 'StringEquals':
      case 'StringLike':
        return values.some(match);
      case 'StringNotEquals':
      case 'StringNotLike':
        return !values.some(match);
      default:
        return false; // an operator this stand-in does not know never grants access
    }
  }

  private async fetchKeys(iss: string): Promise<JWK[]> {
    const get = (url: string) =>
      new Promise<unknown>((resolve, reject) => {
        this.idpFetches += 1;
        const req = https.get(url, { agent: this.idpAgent, timeout: 5000 }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
            try {
              resolve(JSON.parse(body));
            } catch (err) {
              reject(err);
            }
          });
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    const communication = () =>
      new StsError('IDPCommunicationError', "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements");
    try {
      const discovery = (await get(`${iss}/.well-known/openid-configuration`)) as { issuer?: string; jwks_uri?: string };
      if (discovery.issuer !== iss || !discovery.jwks_uri) throw new StsError('InvalidIdentityToken', `The issuer in the discovery document does not match ${iss}`);
      const jwks = (await get(discovery.jwks_uri)) as { keys?: JWK[] };
      return jwks.keys ?? [];
    } catch (err) {
      if (err instanceof StsError) throw err;
      throw communication();
    }
  }
}
