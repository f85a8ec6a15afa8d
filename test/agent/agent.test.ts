// The build-side agent, run as a build runs it (the bundled file, a child
// process), against the live token service behind TLS and the STS stand-in.
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { AGENT, runAgent } from '../helpers/agent.js';
import { ACCOUNT, startAwsLab, trustPolicyFor, type AwsLab } from '../helpers/aws-lab.js';
import { decodeJwt } from '../helpers/service.js';

let lab: AwsLab;
let env: Record<string, string>;
const DEPLOY = `arn:aws:iam::${ACCOUNT}:role/deploy`;
const OTHER = `arn:aws:iam::${ACCOUNT}:role/other-team`;
const SUB = 'jenkins_instance:ci-main:job:folder/app:ref:refs/heads/main';

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref'], audiences: ['sts.amazonaws.com', 'vault'] });
  lab.sts.addRole(DEPLOY, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:folder/*:ref:refs/heads/main'));
  lab.sts.addRole(OTHER, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:other/*'));
  env = await lab.buildEnv('ci-main', { ref: 'refs/heads/main' });
});
afterAll(async () => lab.stop());

beforeEach(() => {
  lab.sts.calls.length = 0;
  lab.sts.clockOffsetSeconds = 0;
  lab.sts.clearFailures();
});

function lastIssued() {
  const call = lab.sts.callsTo().at(-1)!;
  return lab.sts.issuedCredentials(call.accessKeyId!)!;
}

describe('token', () => {
  test('prints an ID token for the requested audience', async () => {
    const res = await runAgent(['token', '--audience', 'vault'], env);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const { payload } = decodeJwt(res.stdout.trim());
    expect(payload).toMatchObject({ iss: lab.issuer, aud: 'vault', sub: SUB, job: 'folder/app', build_number: '42' });
  });

  test('--out writes it to a file with mode 0600 and prints nothing', async () => {
    const file = path.join(env.WORKSPACE_TMP!, 'id-token');
    const res = await runAgent(['token', '--out', file], env);
    expect(res).toEqual({ code: 0, stdout: '', stderr: `jenkins-oidc-agent: wrote the ID token to ${file} (mode 0600)\n` });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(decodeJwt(readFileSync(file, 'utf8')).payload.aud).toBe('sts.amazonaws.com');
  });

  test('a revoked or unknown request token is explained, exit 1', async () => {
    const res = await runAgent(['token'], { ...env, JENKINS_ID_TOKEN_REQUEST_TOKEN: 'jort_unknown' });
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        'jenkins-oidc-agent: the token service refused the build request token: the build request token is not known to this service',
        '  A request token lives only as long as its build (and at most its lifetime); it stops working',
        '  when the build ends, when it is revoked, or when its Jenkins controller is disabled.',
        '',
      ].join('\n'),
    });
  });

  test('the request token can come from a file; --json adds the claims', async () => {
    const file = path.join(env.WORKSPACE_TMP!, 'request-token');
    writeFileSync(file, `${env.JENKINS_ID_TOKEN_REQUEST_TOKEN}\n`, { mode: 0o600 });
    const { JENKINS_ID_TOKEN_REQUEST_TOKEN: _inline, ...rest } = env;
    const res = await runAgent(['token', '--json'], { ...rest, JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE: file });
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { value: string; claims: Record<string, unknown> };
    expect(out.claims).toEqual(decodeJwt(out.value).payload);
    expect(out.claims.sub).toBe(SUB);
    // The pipeline library sets both, to the same token: fine. Two different tokens are refused.
    const both = await runAgent(['token'], { ...env, JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE: file });
    expect(both.code).toBe(0);
    expect(decodeJwt(both.stdout.trim()).payload.sub).toBe(SUB);
    const differ = await runAgent(['token'], { ...env, JENKINS_ID_TOKEN_REQUEST_TOKEN: `jort_${'x'.repeat(43)}`, JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE: file });
    expect(differ).toEqual({ code: 2, stdout: '', stderr: 'jenkins-oidc-agent: JENKINS_ID_TOKEN_REQUEST_TOKEN and JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE hold different tokens: set one\n' });
  });

  test('claims prints what a trust policy matches', async () => {
    const res = await runAgent(['claims'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ iss: lab.issuer, sub: SUB, aud: 'sts.amazonaws.com', jenkins_instance: 'ci-main', job: 'folder/app', ref: 'refs/heads/main', ref_type: 'branch' });
  });

  test('without the request environment it says what is missing, exit 2', async () => {
    const res = await runAgent(['token'], { HOME: lab.home });
    expect(res.code).toBe(2);
    expect(res.stderr.split('\n')[0]).toBe('jenkins-oidc-agent: JENKINS_ID_TOKEN_REQUEST_URL is not set');
  });

  test('a malformed region is a usage error at once, not a retried network failure', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--region', 'bad region!'], env);
    expect(res).toEqual({ code: 2, stdout: '', stderr: 'jenkins-oidc-agent: --region must be an AWS region such as eu-west-1, got "bad region!"\n' });
  });

  test('the request token is never sent over plain http to another machine, exit 2', async () => {
    const res = await runAgent(['token'], { ...env, JENKINS_ID_TOKEN_REQUEST_URL: 'http://oidc.example.com/id-token?api-version=1' });
    expect(res).toEqual({
      code: 2,
      stdout: '',
      stderr: 'jenkins-oidc-agent: JENKINS_ID_TOKEN_REQUEST_URL must be https (the request token would cross the network in clear), got http://oidc.example.com\n',
    });
  });

  test('without WORKSPACE_TMP, files go to a private folder of this user, and a folder others can enter is refused', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'jo-agent-tmpdir-'));
    const { WORKSPACE_TMP: _ws, ...rest } = env;
    const ok = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'web-identity', '--no-verify'], { ...rest, TMPDIR: tmp });
    expect(ok.code).toBe(0);
    const base = path.join(tmp, `jenkins-oidc-agent-${process.getuid!()}`);
    expect(statSync(base).mode & 0o777).toBe(0o700);
    expect(ok.stdout).toContain(`export AWS_WEB_IDENTITY_TOKEN_FILE=${base}/`);
    chmodSync(base, 0o777);
    const open = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'web-identity', '--no-verify'], { ...rest, TMPDIR: tmp });
    expect(open).toEqual({
      code: 2,
      stdout: '',
      stderr: `jenkins-oidc-agent: ${base} is not a private folder of this user (a link, another owner, or open to others); remove it, or set WORKSPACE_TMP\n`,
    });
  });
});

describe('assume-role formats', () => {
  test('env: export lines with the credentials STS issued, nothing secret on stderr', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY], env);
    expect(res.code).toBe(0);
    const c = lastIssued();
    expect(res.stdout).toBe(
      [
        `export AWS_ACCESS_KEY_ID=${c.AccessKeyId}`,
        `export AWS_SECRET_ACCESS_KEY=${c.SecretAccessKey}`,
        `export AWS_SESSION_TOKEN=${c.SessionToken}`,
        `export AWS_CREDENTIAL_EXPIRATION=${c.Expiration}`,
        'export AWS_REGION=eu-west-1',
        'export AWS_DEFAULT_REGION=eu-west-1',
        '',
      ].join('\n'),
    );
    expect(res.stderr).toBe('');
    expect(lab.sts.callsTo()).toEqual([
      expect.objectContaining({ outcome: 'ok', roleArn: DEPLOY, sessionName: 'folder.app-42', claims: expect.objectContaining({ sub: SUB, aud: 'sts.amazonaws.com' }) }),
    ]);
  });
});

describe('assume-role formats', () => {
  test('dotenv: KEY=value lines', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'dotenv', '--region', 'us-west-2'], env);
    const c = lastIssued();
    expect(res).toEqual({
      code: 0,
      stderr: '',
      stdout: `AWS_ACCESS_KEY_ID=${c.AccessKeyId}\nAWS_SECRET_ACCESS_KEY=${c.SecretAccessKey}\nAWS_SESSION_TOKEN=${c.SessionToken}\nAWS_CREDENTIAL_EXPIRATION=${c.Expiration}\nAWS_REGION=us-west-2\nAWS_DEFAULT_REGION=us-west-2\n`,
    });
  });

  test('json: the shape of aws sts assume-role-with-web-identity, with the chosen session name and duration', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'json', '--session-name', 'release@42', '--duration-seconds', '900'], env);
    expect(res.code).toBe(0);
    const c = lastIssued();
    expect(JSON.parse(res.stdout)).toEqual({
      Credentials: c,
      AssumedRoleUser: { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/deploy/release@42`, AssumedRoleId: expect.stringMatching(/^AROA[0-9A-F]{16}:release@42$/) },
      SubjectFromWebIdentityToken: SUB,
      Audience: 'sts.amazonaws.com',
      Provider: lab.issuer,
      Region: 'eu-west-1',
    });
    expect(Date.parse(c.Expiration) - Date.now()).toBeLessThanOrEqual(900_000);
  });

  test('credential-process: Version 1 JSON', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'credential-process'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ Version: 1, ...lastIssued() });
  });

  test('shared-credentials: an AWS credentials file with the jenkins-oidc profile', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'shared-credentials'], env);
    const c = lastIssued();
    expect(res).toEqual({
      code: 0,
      stderr: '',
      stdout: `[jenkins-oidc]\naws_access_key_id = ${c.AccessKeyId}\naws_secret_access_key = ${c.SecretAccessKey}\naws_session_token = ${c.SessionToken}\n`,
    });
  });

  test('--out writes any format to a 0600 file instead of stdout', async () => {
    const file = path.join(env.WORKSPACE_TMP!, 'aws.env');
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'dotenv', '--out', file], env);
    const c = lastIssued();
    expect(res).toEqual({ code: 0, stdout: '', stderr: `jenkins-oidc-agent: wrote credentials for arn:aws:sts::${ACCOUNT}:assume-role/deploy/folder.app-42 to ${file} (mode 0600), valid until ${c.Expiration}\n`.replace('assume-role/', 'assumed-role/') });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(`AWS_ACCESS_KEY_ID=${c.AccessKeyId}`);
  });

  test('web-identity: a 0600 token file and the variables every AWS SDK reads; the real SDK then assumes the role itself', async () => {
    const file = path.join(env.WORKSPACE_TMP!, 'web-identity-token');
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'web-identity', '--token-file', file], env);
    expect(res).toEqual({
      code: 0,
      stdout: [
        `export AWS_ROLE_ARN=${DEPLOY}`,
        `export AWS_WEB_IDENTITY_TOKEN_FILE=${file}`,
        'export AWS_ROLE_SESSION_NAME=folder.app-42',
        'export AWS_REGION=eu-west-1',
        'export AWS_DEFAULT_REGION=eu-west-1',
        '',
      ].join('\n'),
      stderr: `jenkins-oidc-agent: verified: AWS STS admits this build to arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42\n`,
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(decodeJwt(readFileSync(file, 'utf8')).payload.sub).toBe(SUB);
  });
});

describe('refusals and retries', () => {
  test('a trust policy that does not admit the job: AccessDenied explained with what the token carried, no retry', async () => {
    const res = await runAgent(['assume-role', '--role-arn', OTHER], env);
    const prefix = lab.issuer.replace('https://', '');
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        `jenkins-oidc-agent: AWS STS refused AssumeRoleWithWebIdentity for ${OTHER} (AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity)`,
        "  What it means: the role's trust policy does not admit this token. It must allow sts:AssumeRoleWithWebIdentity, and its conditions must match the claims below.",
        '  The ID token carried:',
        `    iss  ${lab.issuer}`,
        '    aud  sts.amazonaws.com',
        `    sub  ${SUB}`,
        '  A trust policy admits it when its Federated principal is the IAM OIDC provider for that iss, and its conditions match:',
        `    "${prefix}:aud": "sts.amazonaws.com"`,
        `    "${prefix}:sub": "${SUB}"   (or a StringLike pattern matching it)`,
        '  The token service prints a matching policy: jenkins-oidc aws trust-policy --client NAME --sub PATTERN',
        '',
      ].join('\n'),
    });
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['AccessDenied']);
  });

  test('an audience the IAM provider does not list: InvalidIdentityToken, not retried', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--audience', 'vault'], env);
    expect(res.code).toBe(1);
    expect(res.stderr.split('\n').slice(0, 2)).toEqual([
      `jenkins-oidc-agent: AWS STS refused AssumeRoleWithWebIdentity for ${DEPLOY} (InvalidIdentityToken: Incorrect token audience)`,
      "  What it means: AWS did not accept the token itself. Either the role's account has no IAM OIDC provider for this",
    ]);
    expect(res.stderr).toContain('    aud  vault\n');
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['InvalidIdentityToken']);
  });

  test('an expired token (clock ahead): ExpiredTokenException, not retried', async () => {
    lab.sts.clockOffsetSeconds = 3600;
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY], env);
    expect(res.code).toBe(1);
    expect(res.stderr.split('\n')[0]).toMatch(new RegExp(`^jenkins-oidc-agent: AWS STS refused AssumeRoleWithWebIdentity for ${DEPLOY} \\(ExpiredTokenException: Token expired: current date/time \\d+ must be before the expiration date/time \\d+\\)$`));
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['ExpiredTokenException']);
  });

  test('IDPRejectedClaim is final too', async () => {
    lab.sts.failNext('IDPRejectedClaim');
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY], env);
    expect(res.code).toBe(1);
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['IDPRejectedClaim']);
  });

  test('throttling and IDPCommunicationError are retried with backoff until STS answers', async () => {
    lab.sts.failNext('Throttling', 2);
    lab.sts.failNext('IDPCommunicationError', 1);
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'json', '--retry-base-delay-ms', '20'], env);
    expect(res.code).toBe(0);
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['Throttling', 'Throttling', 'IDPCommunicationError', 'ok']);
    expect(res.stderr.replace(/[\d.]+ s/g, 'N s')).toBe(
      [
        'jenkins-oidc-agent: Throttling; retrying in N s (attempt 2 of 5)',
        'jenkins-oidc-agent: Throttling; retrying in N s (attempt 3 of 5)',
        'jenkins-oidc-agent: IDPCommunicationError; retrying in N s (attempt 4 of 5)',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(res.stdout).Credentials).toEqual(lastIssued());
  });

  test('retries stop at --retry-max-attempts, exit 3', async () => {
    lab.sts.failNext('InternalFailure', 5);
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--retry-max-attempts', '3', '--retry-base-delay-ms', '10'], env);
    expect(res.code).toBe(3);
    expect(res.stderr.split('\n').at(-2)).toBe(`jenkins-oidc-agent: could not reach AWS STS at ${lab.sts.url} after 3 attempt(s): InternalFailure`);
    expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['InternalFailure', 'InternalFailure', 'InternalFailure']);
  });

  test('network errors are retried', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--sts-endpoint', 'https://127.0.0.1:9', '--retry-max-attempts', '2', '--retry-base-delay-ms', '10'], env);
    expect(res.code).toBe(3);
    expect(res.stderr.replace(/[\d.]+ s/, 'N s')).toBe(
      'jenkins-oidc-agent: ECONNREFUSED; retrying in N s (attempt 2 of 2)\njenkins-oidc-agent: could not reach AWS STS at https://127.0.0.1:9 after 2 attempt(s): ECONNREFUSED\n',
    );
  });

  test('a role outside --allowed-account-ids is refused before any call', async () => {
    const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--allowed-account-ids', '111111111111,222222222222'], env);
    expect(res).toEqual({ code: 1, stdout: '', stderr: `jenkins-oidc-agent: role ${DEPLOY} is in AWS account ${ACCOUNT}, which is not in --allowed-account-ids (111111111111, 222222222222)\n` });
    expect(lab.sts.callsTo()).toEqual([]);
  });

  test.each([
    [['--role-arn', 'deploy'], 'jenkins-oidc-agent: --role-arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/deploy, got "deploy"'],
    [['--role-arn', DEPLOY, '--duration-seconds', '60'], 'jenkins-oidc-agent: --duration-seconds must be a whole number from 900 to 43200, got "60"'],
    [['--role-arn', DEPLOY, '--session-name', 'a b'], 'jenkins-oidc-agent: --session-name must be 2-64 characters of letters, digits and _ + = , . @ -, got "a b"'],
    [['--role-arn', DEPLOY, '--format', 'yaml'], 'jenkins-oidc-agent: --format must be one of env, dotenv, json, credential-process, shared-credentials, web-identity, got "yaml"'],
    [['--role-arn', DEPLOY, '--refresh'], 'jenkins-oidc-agent: --refresh works with --format web-identity (the other formats hand out credentials that the caller refreshes)'],
  ])('usage errors exit 2: %j', async (args, message) => {
    const res = await runAgent(['assume-role', ...args], env);
    expect(res).toEqual({ code: 2, stdout: '', stderr: `${message}\n` });
  });
});

describe('distribution', () => {
  test('the service serves the bundle and its SHA-256, and the served file runs', async () => {
    const bundle = readFileSync(AGENT);
    const sha = createHash('sha256').update(bundle).digest('hex');
    const res = await fetch(`${lab.t.url}/agent/jenkins-oidc-agent.mjs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('etag')).toBe(`"${sha}"`);
    expect(Buffer.from(await res.arrayBuffer()).equals(bundle)).toBe(true);
    const digest = await fetch(`${lab.t.url}/agent/jenkins-oidc-agent.mjs.sha256`);
    expect(await digest.text()).toBe(`${sha}  jenkins-oidc-agent.mjs\n`);
    // (fetch would add Cache-Control: no-cache to a conditional request; an agent's curl does not.)
    const status = await new Promise((resolve, reject) =>
      http.get(`${lab.t.url}/agent/jenkins-oidc-agent.mjs`, { headers: { 'if-none-match': `"${sha}"` } }, (r) => resolve(r.resume().statusCode)).on('error', reject),
    );
    expect(status).toBe(304);
  });

  test('the bundle imports nothing but Node built-ins', () => {
    const source = readFileSync(AGENT, 'utf8');
    const builtin = (m: string) => builtinModules.includes(m.replace(/^node:/, ''));
    const imports = [...source.matchAll(/^import .* from ['"]([^'"]+)['"];?$/gm)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((m) => !builtin(m))).toEqual([]);
    expect([...source.matchAll(/\brequire\(["']([^"']+)["']\)/g)].map((m) => m[1]!).filter((m) => !builtin(m))).toEqual([]);
  });

  test('--help teaches the commands, the environment and the exit codes', async () => {
    const res = await runAgent(['--help'], {});
    expect(res.code).toBe(0);
    for (const text of ['assume-role', 'aws-config', 'JENKINS_ID_TOKEN_REQUEST_URL', 'JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE', 'Exit codes', 'web-identity --refresh']) expect(res.stdout).toContain(text);
    const sub = await runAgent(['help', 'assume-role'], {});
    for (const text of ['--format FORMAT', 'credential-process', '--allowed-account-ids', '--retry-max-attempts', 'never retried']) expect(sub.stdout).toContain(text);
  });
});
