// The real AWS SDK for JavaScript getting credentials the two ways the agent
// sets up (a credential_process profile, a web identity token file), in a
// separate build-step process, against the STS stand-in; and a build that
// outlives its ID tokens and keeps getting fresh credentials.
//
// The service's shortest ID token lifetime is 60 s, too long for a test, so
// the stand-in is told to treat the tokens issued before a given second as
// expired, which is what STS does with a token past its exp
// (ExpiredTokenException).
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE, runAgent, runNode } from '../helpers/agent.js';
import { ACCOUNT, startAwsLab, trustPolicyFor, type AwsLab } from '../helpers/aws-lab.js';
import { decodeJwt } from '../helpers/service.js';
import { processGone, waitFor } from '../helpers/wait.js';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/aws-sdk-probe.mjs');
const DEPLOY = `arn:aws:iam::${ACCOUNT}:role/deploy`;
const TAGGED = `arn:aws:iam::${ACCOUNT}:role/tagged`;
const UNTAGGED = `arn:aws:iam::${ACCOUNT}:role/no-tag-session`;
const ABAC = `arn:aws:iam::${ACCOUNT}:role/abac`;

let lab: AwsLab;
let env: Record<string, string>;
const refreshers: number[] = [];

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main' });
  await lab.addClient({ name: 'ci-tags', sessionTags: ['jenkins_instance', 'job'], transitiveTags: ['jenkins_instance'], sourceIdentity: '{jenkins_instance}-{build_number}' });
  lab.sts.addRole(DEPLOY, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:folder/*'));
  lab.sts.addRole(TAGGED, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-tags:job:*', ['sts:TagSession', 'sts:SetSourceIdentity']));
  lab.sts.addRole(UNTAGGED, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-tags:job:*'));
  // docs/aws.md's tags-based recipe: conditions on the session tags the token brings.
  lab.sts.addRole(ABAC, {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: lab.providerArn },
        Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession', 'sts:SetSourceIdentity'],
        Condition: {
          StringEquals: { [`${lab.issuer.replace('https://', '')}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/jenkins_instance': 'ci-tags' },
          StringLike: { 'aws:RequestTag/job': 'folder/*' },
        },
      },
    ],
  });
  env = await lab.buildEnv('ci-main');
});
afterAll(async () => {
  for (const pid of refreshers) {
    try {
      process.kill(pid);
    } catch {
      // already gone
    }
  }
  await lab.stop();
});

beforeEach(() => {
  lab.sts.calls.length = 0;
  lab.sts.expireTokensIssuedBefore = undefined;
});

async function probe(mode: 'ini' | 'token-file', extra: Record<string, string>) {
  const res = await runNode([PROBE, mode], { ...env, ...extra });
  return { code: res.code, result: JSON.parse(res.stdout || '{}') as Record<string, string>, stderr: res.stderr };
}

function exportsOf(stdout: string): Record<string, string> {
  return Object.fromEntries([...stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]));
}

/** Starts a token-file refresher as a build step would; returns its pid, once it runs and the file is there. */
async function startRefresher(build: Record<string, string>, tokenFile: string, extra: string[] = []): Promise<{ pid: number; stdout: string }> {
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'web-identity', '--token-file', tokenFile, '--refresh', '--refresh-interval', '1', ...extra], build);
  expect({ code: res.code, pid: /\(pid (\d+)\)/.test(res.stderr) }).toEqual({ code: 0, pid: true });
  const pid = Number(/\(pid (\d+)\)/.exec(res.stderr)![1]);
  refreshers.push(pid);
  expect(res.stderr).toContain(
    `jenkins-oidc-agent: keeping ${tokenFile} fresh in the background (pid ${pid}) until the request token stops working, the file is removed, or the build step ends\n`,
  );
  // Running, with the file written: the end the tests below wait for is a real one.
  expect(processGone(pid)).toBe(false);
  expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
  return { pid, stdout: res.stdout };
}

test('aws-config writes a credential_process profile; the SDK (fromIni) gets credentials through the agent', async () => {
  const res = await runAgent(['aws-config', '--role-arn', DEPLOY, '--profile', 'deploy', '--duration-seconds', '900'], env);
  expect(res.code).toBe(0);
  const vars = exportsOf(res.stdout);
  const configFile = vars.AWS_CONFIG_FILE!;
  expect(res.stdout).toBe(`export AWS_CONFIG_FILE=${configFile}\nexport AWS_PROFILE=deploy\n`);
  expect(configFile.startsWith(path.join(env.WORKSPACE_TMP!, 'jenkins-oidc-agent'))).toBe(true);
  expect(statSync(configFile).mode & 0o777).toBe(0o600);
  expect(readFileSync(configFile, 'utf8')).toBe(
    `[profile deploy]\ncredential_process = ${AGENT_NODE} ${path.resolve('dist/agent/jenkins-oidc-agent.mjs')} assume-role --format credential-process --role-arn ${DEPLOY} --region eu-west-1 --audience sts.amazonaws.com --duration-seconds 900\nregion = eu-west-1\n`,
  );
  expect(res.stderr).toBe(
    `jenkins-oidc-agent: verified: AWS STS admits this build to arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42\n` +
      `jenkins-oidc-agent: wrote profile deploy to ${configFile}: AWS SDKs and the AWS CLI now refresh credentials themselves while the request token lives\n`,
  );

  // A second profile in the same file keeps the first.
  const audit = await runAgent(['aws-config', '--role-arn', DEPLOY, '--profile', 'audit', '--no-verify'], { ...env, AWS_CONFIG_FILE: configFile });
  expect(audit.stdout).toBe(`export AWS_CONFIG_FILE=${configFile}\nexport AWS_PROFILE=audit\n`);
  expect(readFileSync(configFile, 'utf8').match(/^\[profile \w+\]$/gm)).toEqual(['[profile deploy]', '[profile audit]']);

  lab.sts.calls.length = 0;
  const first = await probe('ini', { AWS_CONFIG_FILE: configFile, AWS_PROFILE: 'deploy' });
  expect(first).toEqual({
    code: 0,
    stderr: '',
    result: { accessKeyId: lab.sts.callsTo()[0]!.accessKeyId, expiration: expect.any(String), arn: `arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42`, account: ACCOUNT },
  });
  expect(lab.sts.calls.map((c) => `${c.action}:${c.outcome}`)).toEqual(['AssumeRoleWithWebIdentity:ok', 'GetCallerIdentity:ok']);
});

test('web-identity: the SDK (fromTokenFile, AWS_WEB_IDENTITY_TOKEN_FILE) assumes the role itself', async () => {
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'web-identity', '--no-verify'], env);
  expect(res).toMatchObject({ code: 0, stderr: '' });
  const vars = exportsOf(res.stdout);
  expect(Object.keys(vars)).toEqual(['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_SESSION_NAME', 'AWS_REGION', 'AWS_DEFAULT_REGION']);
  expect(lab.sts.callsTo()).toEqual([]);
  const out = await probe('token-file', vars);
  expect(out).toMatchObject({ code: 0, result: { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42`, account: ACCOUNT } });
  expect(lab.sts.callsTo().map((c) => c.sessionName)).toEqual(['folder.app-42']);
});

test('session tags and source identity reach STS; a role without sts:TagSession refuses them, explained', async () => {
  const tagged = await lab.buildEnv('ci-tags');
  const ok = await runAgent(['assume-role', '--role-arn', TAGGED, '--format', 'json'], tagged);
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ SourceIdentity: 'ci-tags-42', AssumedRoleUser: { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/tagged/folder.app-42` } });
  expect(lab.sts.callsTo()[0]).toMatchObject({ outcome: 'ok', tags: { jenkins_instance: 'ci-tags', job: 'folder/app' }, sourceIdentity: 'ci-tags-42' });

  const refused = await runAgent(['assume-role', '--role-arn', UNTAGGED], tagged);
  expect(refused.code).toBe(1);
  const lines = refused.stderr.split('\n');
  expect(lines[1]).toBe(
    "  What it means: the role's trust policy does not admit this token. It must allow sts:AssumeRoleWithWebIdentity, sts:TagSession, sts:SetSourceIdentity (this token carries session tags and a source identity), and its conditions must match the claims below.",
  );
  // (The snapshot is jsonb, which keeps object keys shortest first.)
  expect(lines).toContain('    session tags     job=folder/app  jenkins_instance=ci-tags');
  expect(lines).toContain('    source identity  ci-tags-42');

  // The tags-based recipe admits jobs by their tags, and refuses a job outside the folder.
  const abac = await runAgent(['assume-role', '--role-arn', ABAC], tagged);
  const otherJob = await runAgent(['assume-role', '--role-arn', ABAC], await lab.buildEnv('ci-tags', { job: 'other/app', build_url: 'https://jenkins.example.com/job/other/job/app/42/' }));
  expect([abac.code, otherJob.code]).toEqual([0, 1]);
  expect(lab.sts.callsTo().slice(-2).map((c) => [c.tags?.job, c.outcome])).toEqual([['folder/app', 'ok'], ['other/app', 'AccessDenied']]);
});

test('a build longer than its ID tokens keeps getting fresh credentials (refreshed token file, credential_process)', async () => {
  const tokenFile = path.join(env.WORKSPACE_TMP!, 'long-build-token');
  const { pid, stdout } = await startRefresher(env, tokenFile);
  const vars = exportsOf(stdout);
  const first = readFileSync(tokenFile, 'utf8');
  const firstClaims = decodeJwt(first).payload;
  copyFileSync(tokenFile, `${tokenFile}.first`);
  const config = await runAgent(['aws-config', '--role-arn', DEPLOY, '--no-verify'], env);
  const profile = exportsOf(config.stdout);

  expect((await probe('token-file', vars)).code).toBe(0);
  expect((await probe('ini', profile)).code).toBe(0);

  // Past the first token's lifetime (for the stand-in: every token issued in
  // its second or before has expired), once the refresher has written a newer one...
  lab.sts.expireTokensIssuedBefore = Number(firstClaims.iat) + 1;
  await waitFor('the file rewritten with a token issued after the first one expired', () => {
    const current = readFileSync(tokenFile, 'utf8');
    return current !== first && Number(decodeJwt(current).payload.iat) >= lab.sts.expireTokensIssuedBefore!;
  });
  // ...the first token is refused as expired...
  const stale = await probe('token-file', { ...vars, AWS_WEB_IDENTITY_TOKEN_FILE: `${tokenFile}.first` });
  expect(stale.code).toBe(1);
  expect(stale.result.error).toBe('ExpiredTokenException');

  // ...while the SDK, reading the kept-fresh file or running the agent, still gets credentials.
  lab.sts.calls.length = 0;
  const later = await probe('token-file', vars);
  const laterIni = await probe('ini', profile);
  expect([later.code, laterIni.code]).toEqual([0, 0]);
  const jtis = lab.sts.callsTo().map((c) => c.claims!.jti);
  expect(lab.sts.callsTo().map((c) => c.outcome)).toEqual(['ok', 'ok']);
  expect(jtis).not.toContain(firstClaims.jti);
  expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

  // Removing the file (the build cleaning up) stops the refresher.
  const { rmSync } = await import('node:fs');
  rmSync(tokenFile);
  await waitFor('the refresher to exit', () => processGone(pid));
  expect(existsSync(tokenFile)).toBe(false);
});

test('the refresher stops and removes the file when the request token is revoked (the build ended)', async () => {
  const build = await lab.buildEnv('ci-main');
  const tokenFile = path.join(build.WORKSPACE_TMP!, 'revoked-build-token');
  // Started, running and its file written: an agent that failed outright would fail here, not pass below.
  const { pid } = await startRefresher(build, tokenFile, ['--no-verify']);
  const revoked = await fetch(`${lab.t.url}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: build.JENKINS_ID_TOKEN_REQUEST_TOKEN!, client_id: 'jenkins-build' }),
  });
  expect(revoked.status).toBe(200);
  await waitFor('the refresher to remove the file', () => !existsSync(tokenFile));
  await waitFor('the refresher to exit', () => processGone(pid));
});
