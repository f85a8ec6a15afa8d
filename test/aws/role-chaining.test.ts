// Role chaining: the agent assumes a further role (a deploy role in another
// account) with the web-identity session's credentials, a SigV4-signed
// sts:AssumeRole that the STS stand-in verifies with the secret it issued.
// The real AWS SDK gets the chained role's credentials through the
// credential_process profile aws-config writes, which runs the agent (and so
// the whole chain) again whenever the SDK needs fresh credentials.
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { runAgent, runNode } from '../helpers/agent.js';
import { ACCOUNT, startAwsLab, trustPolicyFor, type AwsLab } from '../helpers/aws-lab.js';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/aws-sdk-probe.mjs');
const OTHER_ACCOUNT = '210987654321';
const DEPLOY = `arn:aws:iam::${ACCOUNT}:role/deploy`;
const TAGGED = `arn:aws:iam::${ACCOUNT}:role/tagged`;
const TARGET = `arn:aws:iam::${OTHER_ACCOUNT}:role/prod-deploy`;
const STRANGER = `arn:aws:iam::${OTHER_ACCOUNT}:role/trusts-someone-else`;

let lab: AwsLab;

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main' });
  await lab.addClient({ name: 'ci-tags', sourceIdentity: '{jenkins_instance}-{build_number}' });
  lab.sts.addRole(DEPLOY, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:folder/*'), 7200);
  lab.sts.addRole(TAGGED, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-tags:job:*', ['sts:SetSourceIdentity']));
  lab.sts.addChainedRole(TARGET, [{ Effect: 'Allow', Principal: { AWS: [DEPLOY, TAGGED] }, Action: 'sts:AssumeRole' }], 43200);
  lab.sts.addChainedRole(STRANGER, [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/someone-else` }, Action: 'sts:AssumeRole' }]);
});
afterAll(async () => lab.stop());
beforeEach(() => {
  lab.sts.calls.length = 0;
});

test('assume-role --chain-role-arn prints the chained role\'s credentials; the chained session is capped at one hour', async () => {
  const env = await lab.buildEnv('ci-main');
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--chain-role-arn', TARGET, '--duration-seconds', '7200', '--format', 'json'], env);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  const out = JSON.parse(res.stdout) as { Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string }; AssumedRoleUser: { Arn: string } };
  expect(out.AssumedRoleUser.Arn).toBe(`arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/prod-deploy/folder.app-42`);
  expect(out.Credentials).toEqual(lab.sts.issuedCredentials(out.Credentials.AccessKeyId));
  const lifetime = (Date.parse(out.Credentials.Expiration) - Date.now()) / 1000;
  expect(lifetime).toBeGreaterThan(3500);
  expect(lifetime).toBeLessThanOrEqual(3600);
  expect(lab.sts.calls.map((c) => [c.action, c.roleArn, c.outcome])).toEqual([
    ['AssumeRoleWithWebIdentity', DEPLOY, 'ok'],
    ['AssumeRole', TARGET, 'ok'],
  ]);
});

test('the real AWS SDK gets the chained role through aws-config\'s credential_process, again on every resolution', async () => {
  const env = await lab.buildEnv('ci-main');
  const written = await runAgent(['aws-config', '--role-arn', DEPLOY, '--chain-role-arn', TARGET, '--profile', 'prod'], env);
  expect(written.code).toBe(0);
  const vars = Object.fromEntries([...written.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]));
  expect(Object.keys(vars)).toEqual(['AWS_CONFIG_FILE', 'AWS_PROFILE']);
  const first = await runNode([PROBE, 'ini'], { ...env, ...vars });
  const second = await runNode([PROBE, 'ini'], { ...env, ...vars });
  for (const res of [first, second]) {
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ arn: `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/prod-deploy/folder.app-42`, account: OTHER_ACCOUNT });
  }
  expect(JSON.parse(first.stdout).accessKeyId).not.toBe(JSON.parse(second.stdout).accessKeyId);
  // aws-config verified once, then each SDK resolution ran the whole chain.
  expect(lab.sts.calls.filter((c) => c.action !== 'GetCallerIdentity').map((c) => c.action)).toEqual([
    'AssumeRoleWithWebIdentity', 'AssumeRole', 'AssumeRoleWithWebIdentity', 'AssumeRole', 'AssumeRoleWithWebIdentity', 'AssumeRole',
  ]);
});

test('the source identity set from the token stays on the chained session', async () => {
  const env = await lab.buildEnv('ci-tags');
  const res = await runAgent(['assume-role', '--role-arn', TAGGED, '--chain-role-arn', TARGET, '--format', 'json'], env);
  expect(res.code).toBe(0);
  expect(lab.sts.calls.map((c) => [c.action, c.sourceIdentity])).toEqual([
    ['AssumeRoleWithWebIdentity', 'ci-tags-42'],
    ['AssumeRole', 'ci-tags-42'],
  ]);
});

test('a role whose trust policy does not name the first role is refused, with what its trust policy needs', async () => {
  const env = await lab.buildEnv('ci-main');
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--chain-role-arn', STRANGER], env);
  expect(res).toEqual({
    code: 1,
    stdout: '',
    stderr: [
      `jenkins-oidc-agent: AWS STS refused AssumeRole (role chaining) for ${STRANGER} from arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42 (AccessDenied: User: arn:aws:sts::${ACCOUNT}:assumed-role/deploy/folder.app-42 is not authorized to perform: sts:AssumeRole on resource: ${STRANGER})`,
      `  What it means: ${STRANGER}'s trust policy must allow sts:AssumeRole to the principal {"AWS": "${DEPLOY}"}`,
      `  (or its account), and that role's permissions must allow sts:AssumeRole on ${STRANGER}.`,
      '',
    ].join('\n'),
  });
});

test.each<[string, string[], number, string]>([
  ['with a web identity token file, which the SDKs can only use for the first role', ['--format', 'web-identity'], 2,
    'jenkins-oidc-agent: --chain-role-arn cannot work with --format web-identity: the SDKs assume only the first role from a token file\n  For a long build, let the SDKs run the agent whenever they need credentials: jenkins-oidc-agent aws-config --role-arn ARN --chain-role-arn ARN2\n'],
  ['into an account outside --allowed-account-ids, before any call', ['--allowed-account-ids', ACCOUNT], 1,
    `jenkins-oidc-agent: chained role ${TARGET} is in AWS account ${OTHER_ACCOUNT}, which is not in --allowed-account-ids (${ACCOUNT})\n`],
])('chaining is refused %s', async (_name, extra, code, stderr) => {
  const env = await lab.buildEnv('ci-main');
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--chain-role-arn', TARGET, ...extra], env);
  expect(res).toEqual({ code, stdout: '', stderr });
  expect(lab.sts.calls.filter((c) => c.action === 'AssumeRole')).toEqual([]);
});

test('the STS stand-in refuses an AssumeRole signed with the wrong secret (it checks SigV4)', async () => {
  const env = await lab.buildEnv('ci-main');
  const res = await runAgent(['assume-role', '--role-arn', DEPLOY, '--format', 'json'], env);
  const creds = (JSON.parse(res.stdout) as { Credentials: { AccessKeyId: string; SessionToken: string } }).Credentials;
  const client = new STSClient({
    region: 'eu-west-1',
    endpoint: lab.sts.url,
    maxAttempts: 1,
    credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: 'not-the-secret-STS-issued', sessionToken: creds.SessionToken },
    requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: lab.ca.rootPem }) }),
  });
  try {
    await expect(client.send(new AssumeRoleCommand({ RoleArn: TARGET, RoleSessionName: 'forged' }))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    });
  } finally {
    client.destroy();
  }
});
