// `jenkins-oidc aws ...` as an admin runs it, and what AWS makes of the
// result: the generated CloudFormation is parsed (JSON and YAML), its provider
// and roles are registered with the STS stand-in, and builds of the matching
// job get in while others are refused.
import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { runCli } from '../helpers/cli.js';
import type { TrustPolicyDocument } from '../helpers/sts-stand-in.js';

const ACCOUNT = '210987654321';
let lab: AwsLab;
let cli: Record<string, string>;
let prefix: string;
let portWarning: string;

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main', subClaims: ['jenkins_instance', 'job', 'ref'], sessionTags: ['ref_type'] });
  cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true' };
  prefix = lab.issuer.replace('https://', '');
  portWarning = `warning: the issuer ${lab.issuer} has a port: AWS IAM refuses provider URLs with a port (serve on 443 behind a proxy)\n`;
});
afterAll(async () => lab.stop());

const MAIN_ONLY = 'jenkins_instance:ci-main:job:folder/*:ref:refs/heads/main';

function expectedPolicy(federated: unknown, subCondition: Record<string, Record<string, string>>) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'JenkinsOidccimain',
        Effect: 'Allow',
        Principal: { Federated: federated },
        Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'],
        Condition: subCondition,
      },
    ],
  };
}

test('cloudformation --format json: provider, roles, outputs; warnings for the port and for a role admitting every job', async () => {
  const args = ['aws', 'cloudformation', '--client', 'ci-main', '--role-name', 'deploy', '--sub', MAIN_ONLY, '--role', 'audit=jenkins_instance:ci-main:job:*', '--thumbprint', lab.ca.intermediateSha1.toUpperCase()];
  const res = await runCli([...args, '--format', 'json'], cli);
  expect(res.stderr).toBe(`${portWarning}warning: role audit: "jenkins_instance:ci-main:job:*" admits every job of ci-main; narrow it, e.g. job:team/app/*\n`);
  expect(res.code).toBe(0);
  const template = JSON.parse(res.stdout);
  expect(template).toEqual({
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `IAM OIDC provider and roles for Jenkins builds of ci-main (jenkins-oidc, issuer ${lab.issuer})`,
    Resources: {
      JenkinsOidcProvider: { Type: 'AWS::IAM::OIDCProvider', Properties: { Url: lab.issuer, ClientIdList: ['sts.amazonaws.com'], ThumbprintList: [lab.ca.intermediateSha1] } },
      DeployRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: 'deploy',
          Description: 'Assumed by Jenkins builds of ci-main through jenkins-oidc',
          AssumeRolePolicyDocument: expectedPolicy({ Ref: 'JenkinsOidcProvider' }, { StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${prefix}:sub`]: MAIN_ONLY } }),
        },
      },
      AuditRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: 'audit',
          Description: 'Assumed by Jenkins builds of ci-main through jenkins-oidc',
          AssumeRolePolicyDocument: expectedPolicy({ Ref: 'JenkinsOidcProvider' }, { StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${prefix}:sub`]: 'jenkins_instance:ci-main:job:*' } }),
        },
      },
    },
    Outputs: {
      OidcProviderArn: { Description: 'ARN of the IAM OIDC provider for the Jenkins token service', Value: { Ref: 'JenkinsOidcProvider' } },
      DeployRoleArn: { Description: 'ARN of role deploy', Value: { 'Fn::GetAtt': ['DeployRole', 'Arn'] } },
      AuditRoleArn: { Description: 'ARN of role audit', Value: { 'Fn::GetAtt': ['AuditRole', 'Arn'] } },
    },
  });

  const yaml = await runCli([...args, '--format', 'yaml'], cli);
  expect(yaml.code).toBe(0);
  expect(parse(yaml.stdout)).toEqual(template);
  expect(yaml.stdout.split('\n').slice(0, 3)).toEqual(['AWSTemplateFormatVersion: "2010-09-09"', `Description: "IAM OIDC provider and roles for Jenkins builds of ci-main (jenkins-oidc, issuer ${lab.issuer})"`, 'Resources:']);
});

test("the template's trust policy, given to the stand-in, admits the matching job on main and refuses others", async () => {
  const res = await runCli(['aws', 'cloudformation', '--client', 'ci-main', '--role-name', 'deploy', '--sub', MAIN_ONLY], cli);
  const template = parse(res.stdout) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  // Deploy it, as CloudFormation would: the provider first, then each role with its Ref resolved.
  const provider = template.Resources.JenkinsOidcProvider!.Properties as { Url: string; ClientIdList: string[] };
  const providerArn = lab.sts.addOidcProvider(ACCOUNT, provider.Url, provider.ClientIdList);
  const role = template.Resources.DeployRole!.Properties as { RoleName: string; AssumeRolePolicyDocument: TrustPolicyDocument };
  const policy = JSON.parse(JSON.stringify(role.AssumeRolePolicyDocument).replace('{"Ref":"JenkinsOidcProvider"}', JSON.stringify(providerArn))) as TrustPolicyDocument;
  const roleArn = `arn:aws:iam::${ACCOUNT}:role/${role.RoleName}`;
  lab.sts.addRole(roleArn, policy);

  const outcomes: Record<string, number | null> = {};
  for (const [name, build] of Object.entries<Record<string, string>>({
    'folder/app on main': { job: 'folder/app', ref: 'refs/heads/main' },
    'folder/app on a branch': { job: 'folder/app', ref: 'refs/heads/dev' },
    'another folder on main': { job: 'other/app', build_url: 'https://jenkins.example.com/job/other/job/app/42/', ref: 'refs/heads/main' },
  })) {
    const env = await lab.buildEnv('ci-main', build);
    outcomes[name] = (await runAgent(['assume-role', '--role-arn', roleArn, '--format', 'json'], env)).code;
  }
  expect(outcomes).toEqual({ 'folder/app on main': 0, 'folder/app on a branch': 1, 'another folder on main': 1 });
  expect(lab.sts.callsTo().slice(-3).map((c) => [c.claims!.sub, c.outcome])).toEqual([
    ['jenkins_instance:ci-main:job:folder/app:ref:refs/heads/main', 'ok'],
    ['jenkins_instance:ci-main:job:folder/app:ref:refs/heads/dev', 'AccessDenied'],
    ['jenkins_instance:ci-main:job:other/app:ref:refs/heads/main', 'AccessDenied'],
  ]);
});

test('a folder role that refuses replayed builds and pull-request jobs: warned without the exclusion, enforced by the stand-in with it', async () => {
  await lab.addClient({ name: 'ci-replay', subClaims: ['jenkins_instance', 'job', 'replayed'] });
  const sub = 'jenkins_instance:ci-replay:job:folder/*:replayed:false';
  const args = ['aws', 'trust-policy', '--client', 'ci-replay', '--provider-arn', lab.providerArn, '--sub', sub];
  const warned = await runCli(args, cli);
  expect(warned.code).toBe(0);
  expect(warned.stderr).toBe(
    `${portWarning}warning: "${sub}" also admits multibranch pull-request jobs such as folder/PR-12, which can run code from forks; ` +
      'to admit branches only, add ref_type to the sub keys and match ref_type:branch, or refuse PR-*/MR-* jobs with --exclude-pull-requests\n',
  );
  const res = await runCli([...args, '--exclude-pull-requests'], cli);
  expect(res.code).toBe(0);
  expect(res.stderr).toBe(portWarning);
  const policy = JSON.parse(res.stdout) as TrustPolicyDocument;
  expect(policy.Statement[0]!.Condition).toEqual({
    StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com' },
    StringLike: { [`${prefix}:sub`]: sub },
    StringNotLike: { [`${prefix}:sub`]: ['*:job:*/PR-*', '*:job:*/MR-*'] },
  });
  const roleArn = 'arn:aws:iam::123456789012:role/folder-no-replays';
  lab.sts.addRole(roleArn, policy);

  const builds: [string, Record<string, string>][] = [
    ['folder/app, not replayed', { replayed: 'false' }],
    ['folder/app, replayed', { replayed: 'true' }],
    ['folder/app, from a library without replayed', {}],
    ['folder/app/PR-12, not replayed', { job: 'folder/app/PR-12', build_url: 'https://jenkins.example.com/job/folder/job/app/job/PR-12/3/', ref: 'refs/pull/12/head', pull_request: '12', replayed: 'false' }],
    ['folder/app/main, not replayed', { job: 'folder/app/main', build_url: 'https://jenkins.example.com/job/folder/job/app/job/main/3/', ref: 'refs/heads/main', replayed: 'false' }],
  ];
  const outcomes: Record<string, number | null> = {};
  for (const [name, build] of builds) {
    outcomes[name] = (await runAgent(['assume-role', '--role-arn', roleArn, '--format', 'json'], await lab.buildEnv('ci-replay', build))).code;
  }
  expect(outcomes).toEqual({
    'folder/app, not replayed': 0,
    'folder/app, replayed': 1,
    'folder/app, from a library without replayed': 1,
    'folder/app/PR-12, not replayed': 1,
    'folder/app/main, not replayed': 0,
  });
  // A client registered now issues string claims (docs/reference.md): replayed is "true"/"false".
  expect(lab.sts.callsTo().slice(-5).map((c) => [c.claims!.sub, c.claims!.replayed, c.outcome])).toEqual([
    ['jenkins_instance:ci-replay:job:folder/app:replayed:false', 'false', 'ok'],
    ['jenkins_instance:ci-replay:job:folder/app:replayed:true', 'true', 'AccessDenied'],
    ['jenkins_instance:ci-replay:job:folder/app:replayed:', undefined, 'AccessDenied'],
    ['jenkins_instance:ci-replay:job:folder/app/PR-12:replayed:false', 'false', 'AccessDenied'],
    ['jenkins_instance:ci-replay:job:folder/app/main:replayed:false', 'false', 'ok'],
  ]);
});

test('the --sub help says what * matches, and --exclude-pull-requests is offered on both commands', async () => {
  for (const command of ['trust-policy', 'cloudformation']) {
    const help = (await runCli(['aws', command, '--help'], cli)).stdout.replace(/\s+/g, ' ');
    expect(help).toContain("StringLike pattern where ? is one character and * any characters, / and : included, so end it at a separator ('jenkins_instance:ci-main:job:team/app/*', not 'job:team/app*'); values write % as %25 and : as %3A");
    expect(help).toContain('refuse multibranch pull-request jobs (PR-<n>, MR-<n>), which can run code from forks, with a StringNotLike on sub');
  }
});

test('--issuer generates for the issuer AWS will see, checked as ISSUER is, on both commands', async () => {
  // Generating on an admin's machine, where ISSUER is not the service's.
  const elsewhere = { ...cli, ISSUER: 'http://localhost:8080' };
  const policy = await runCli(['aws', 'trust-policy', '--client', 'ci-main', '--account-id', ACCOUNT, '--sub', MAIN_ONLY, '--issuer', 'https://oidc.example.com/jenkins'], elsewhere);
  expect(policy.stderr).toBe('');
  expect(JSON.parse(policy.stdout).Statement[0].Principal).toEqual({ Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.example.com/jenkins` });
  const template = await runCli(['aws', 'cloudformation', '--client', 'ci-main', '--sub', MAIN_ONLY, '--json', '--issuer', 'https://oidc.example.com/jenkins'], elsewhere);
  expect(template.code).toBe(0);
  expect(JSON.stringify(JSON.parse(template.stdout))).toContain('"Url":"https://oidc.example.com/jenkins"');
  expect(await runCli(['aws', 'trust-policy', '--client', 'ci-main', '--account-id', ACCOUNT, '--sub', MAIN_ONLY, '--issuer', 'oidc.example.com'], elsewhere)).toEqual({
    code: 2,
    stdout: '',
    stderr: 'jenkins-oidc: invalid configuration:\n  - ISSUER: must be an absolute http(s) URL such as https://oidc.example.com, got "oidc.example.com"\n',
  });
  const help = (await runCli(['aws', 'cloudformation', '--help'], cli)).stdout.replace(/\s+/g, ' ');
  expect(help).toContain('--issuer <url> the issuer URL as AWS will see it (default: the ISSUER setting, which the service advertises; checked the same way)');
});

test('trust-policy prints just the policy, with the provider ARN for the account', async () => {
  const res = await runCli(['aws', 'trust-policy', '--client', 'ci-main', '--account-id', ACCOUNT, '--sub', 'jenkins_instance:ci-main:job:folder/app:ref:refs/heads/main'], cli);
  expect(res.code).toBe(0);
  expect(res.stderr).toBe(portWarning);
  expect(JSON.parse(res.stdout)).toEqual(
    expectedPolicy(`arn:aws:iam::${ACCOUNT}:oidc-provider/${prefix}`, {
      StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com', [`${prefix}:sub`]: 'jenkins_instance:ci-main:job:folder/app:ref:refs/heads/main' },
    }),
  );
});

test.each([
  [['aws', 'trust-policy', '--client', 'ci-main', '--account-id', ACCOUNT], "error: --sub: give at least one pattern for the sub this role admits, e.g. --sub 'jenkins_instance:ci-main:job:team/app/*:ref:refs/heads/*'\n"],
  [['aws', 'trust-policy', '--client', 'ci-main', '--sub', MAIN_ONLY], 'error: the trust policy needs the IAM OIDC provider it trusts\n  give --account-id 123456789012 (or --provider-arn arn:aws:iam::...:oidc-provider/...)\n'],
  [['aws', 'cloudformation', '--client', 'ci-main', '--sub', 'jenkins_instance:ci-other:job:a:ref:b'], 'error: --sub: "jenkins_instance:ci-other:job:a:ref:b" names the controller "ci-other", but this policy is for client ci-main\n'],
  [['aws', 'cloudformation', '--client', 'nope', '--sub', MAIN_ONLY], 'error: client "nope" not found\n  list registered clients with: jenkins-oidc clients list\n'],
])('refusals name the problem: %j', async (args, stderr) => {
  expect(await runCli(args, cli)).toEqual({ code: 1, stdout: '', stderr });
});

test('thumbprint: SHA-1 of the last certificate the issuer serves (the intermediate), from the URL or ISSUER', async () => {
  const res = await runCli(['aws', 'thumbprint', lab.issuer], {});
  expect(res.code).toBe(0);
  expect(res.stdout).toBe(`${lab.ca.intermediateSha1}\n`);
  expect(res.stderr.split('\n')[0]).toBe('certificate: CN=jenkins-oidc test intermediate CA');
  // Even where the root is trusted locally (Node would add it to the chain), only what the server sends counts.
  expect((await runCli(['aws', 'thumbprint', lab.issuer], { NODE_EXTRA_CA_CERTS: lab.ca.rootFile })).stdout).toBe(`${lab.ca.intermediateSha1}\n`);
  const json = await runCli(['aws', 'thumbprint', '--json'], cli);
  expect(JSON.parse(json.stdout)).toEqual({
    url: lab.issuer,
    thumbprint: lab.ca.intermediateSha1,
    subject: 'CN=jenkins-oidc test intermediate CA',
    issuer: 'CN=jenkins-oidc test root CA',
    validTo: expect.any(String),
    chain: ['CN=127.0.0.1', 'CN=jenkins-oidc test intermediate CA'],
  });
  expect(await runCli(['aws', 'thumbprint', 'http://127.0.0.1:1'], {})).toEqual({ code: 1, stdout: '', stderr: 'error: http://127.0.0.1:1 is not https: AWS only trusts https issuers\n' });
});

test('clients add/update take the AWS claim flags; an empty value removes them', async () => {
  const added = await runCli(
    ['clients', 'add', 'ci-flags', '--jenkins-url', 'https://jenkins.example.com', '--session-tags', 'job,ref', '--transitive-tags', 'job', '--source-identity', '{jenkins_instance}-{build_number}', '--json'],
    cli,
  );
  expect(added.code).toBe(0);
  expect(JSON.parse(added.stdout).client).toMatchObject({ sessionTags: ['job', 'ref'], transitiveTags: ['job'], sourceIdentity: '{jenkins_instance}-{build_number}' });
  const shown = await runCli(['clients', 'show', 'ci-flags'], cli);
  const line = (k: string, v: string) => `${k.padEnd(21)}  ${v}`;
  expect(shown.stdout.split('\n')).toEqual(expect.arrayContaining([line('session_tags', 'job, ref'), line('transitive_tags', 'job'), line('source_identity', '{jenkins_instance}-{build_number}')]));
  const cleared = await runCli(['clients', 'update', 'ci-flags', '--session-tags', '', '--source-identity', '', '--json'], cli);
  expect(JSON.parse(cleared.stdout)).toMatchObject({ sessionTags: [], transitiveTags: [], sourceIdentity: null });
  expect(await runCli(['clients', 'update', 'ci-flags', '--source-identity', '{job}/{build_number}'], cli)).toEqual({
    code: 1,
    stdout: '',
    stderr: 'error: source_identity: "/" is not allowed; AWS accepts only letters, digits and _ + = , . @ - in a source identity\n',
  });
});
