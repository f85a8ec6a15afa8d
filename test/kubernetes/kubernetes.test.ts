// Kubernetes end to end: `jenkins-oidc kubernetes setup --json` configures a
// kube-apiserver stand-in built on go-oidc (the verifier kube-apiserver
// uses), and the real kubectl authenticates with the agent as its exec
// credential plugin (`kubectl auth whoami`). The wrong audience, another
// controller, a replayed build and an expired token are refused.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { runCli } from '../helpers/cli.js';
import { buildStandIn, goToolchainPresent, startKubeApiserver, type KubeApiserver } from '../helpers/kube-apiserver.js';
import { checkTool } from '../helpers/tools.js';

// kubectl comes with the machine image; Google's apt source (its only
// Debian source) is not reachable from CI machines, so it cannot be
// installed there: without it these tests are skipped, with this message, even in CI.
const kubectlPresent = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
if (!kubectlPresent) console.warn('SKIPPED: kubectl is not installed (it comes with the machine image and cannot be installed from Debian)');
const goPresent = checkTool(goToolchainPresent(), 'Go with go-oidc (for the kube-apiserver stand-in)', 'apt-get install golang-go golang-github-coreos-go-oidc-dev');
const run = kubectlPresent && goPresent ? describe : describe.skip;

function kubectl(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('kubectl', args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

run('Kubernetes with the real kubectl and a go-oidc kube-apiserver stand-in', () => {
  let lab: AwsLab;
  let api: KubeApiserver;
  let cli: Record<string, string>;
  let config: Record<string, unknown>;
  const MAIN = { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/', replayed: 'false' };

  beforeAll(async () => {
    const binary = buildStandIn();
    lab = await startAwsLab();
    await lab.addClient({ name: 'ci-main', audiences: ['sts.amazonaws.com', 'kubernetes'] });
    await lab.addClient({ name: 'ci-other', audiences: ['kubernetes'] });
    await lab.addClient({ name: 'ci-legacy', audiences: ['kubernetes'], claimTypes: 'json' });
    cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true' };
    const res = await runCli(['kubernetes', 'setup', '--client', 'ci-main', '--required-claim', 'replayed=false', '--json'], cli);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    config = JSON.parse(res.stdout);
    api = await startKubeApiserver(binary, config, lab.ca);
  }, 180_000);
  afterAll(async () => {
    await api?.stop();
    await lab?.stop();
  });
  beforeEach(async () => {
    await api.setClockOffset(0);
  });

  /** kubectl auth whoami in a build of `client`, through a kubeconfig the agent wrote. */
  async function whoami(client: string, build: Record<string, string>, audience = 'kubernetes') {
    const env = await lab.buildEnv(client, build);
    const written = await runAgent(['kubeconfig', '--server', api.url, '--certificate-authority', lab.ca.rootFile, '--audience', audience], env);
    expect(written.code).toBe(0);
    const file = /^export KUBECONFIG=(\S+)\n$/.exec(written.stdout)![1]!;
    const logFrom = api.log.length;
    const res = await kubectl(['--kubeconfig', file, 'auth', 'whoami', '-o', 'json'], { ...env, HOME: lab.home });
    return { ...res, file, apiLog: () => api.log.slice(logFrom) };
  }

  test('kubernetes setup --json: issuer and audience, the controller and replayed=false required, username sub with a prefix', () => {
    expect(config).toEqual({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AuthenticationConfiguration',
      jwt: [
        {
          issuer: { url: lab.issuer, audiences: ['kubernetes'] },
          claimValidationRules: [
            { claim: 'jenkins_instance', requiredValue: 'ci-main' },
            { claim: 'replayed', requiredValue: 'false' },
          ],
          claimMappings: { username: { claim: 'sub', prefix: 'jenkins:' } },
        },
      ],
    });
  });

  test('kubernetes setup --format flags prints the --oidc-* flags of older clusters, RS256 only', async () => {
    const res = await runCli(['kubernetes', 'setup', '--client', 'ci-main', '--required-claim', 'replayed=false', '--format', 'flags'], cli);
    expect(res).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        `--oidc-issuer-url=${lab.issuer} \\`,
        '  --oidc-client-id=kubernetes \\',
        '  --oidc-username-claim=sub \\',
        '  --oidc-username-prefix=jenkins: \\',
        '  --oidc-required-claim=jenkins_instance=ci-main \\',
        '  --oidc-required-claim=replayed=false \\',
        '  --oidc-signing-algs=RS256',
        '',
      ].join('\n'),
    });
  });

  test('kubernetes setup refuses a required claim that is a number or boolean in the client\'s tokens', async () => {
    const res = await runCli(['kubernetes', 'setup', '--client', 'ci-legacy', '--required-claim', 'replayed=false'], cli);
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: "error: --required-claim: replayed is a JSON boolean in client ci-legacy's tokens, and kube-apiserver matches string claims only; switch the client to string claims first: jenkins-oidc clients update ci-legacy --claim-types string\n",
    });
  });

  test('kubectl auth whoami: the agent as exec plugin; the username is the prefix and the build\'s sub', async () => {
    const res = await whoami('ci-main', MAIN);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      status: { userInfo: { username: 'jenkins:jenkins_instance:ci-main:job:team/app/main', groups: ['system:authenticated'] } },
    });
    expect(res.apiLog()).toEqual(['authenticated: jenkins:jenkins_instance:ci-main:job:team/app/main']);
    // The kubeconfig holds no token, and only its owner can read it.
    expect(statSync(res.file).mode & 0o777).toBe(0o600);
    expect(readFileSync(res.file, 'utf8')).not.toMatch(/eyJ/);
  });

  test.each<[string, string, Record<string, string>, string, RegExp]>([
    ['a token for another audience', 'ci-main', MAIN, 'sts.amazonaws.com', /^refused: oidc: expected audience "kubernetes" got \["sts\.amazonaws\.com"\]$/],
    ["another controller's build of the same job", 'ci-other', MAIN, 'kubernetes', /^refused: oidc: required claim jenkins_instance value does not match\. Got = ci-other, want = ci-main$/],
    ['a replayed build', 'ci-main', { ...MAIN, replayed: 'true' }, 'kubernetes', /^refused: oidc: required claim replayed value does not match\. Got = true, want = false$/],
  ])('kubectl is refused: %s', async (_name, client, build, audience, reason) => {
    const res = await whoami(client, build, audience);
    expect({ code: res.code, stdout: res.stdout, stderr: res.stderr }).toEqual({ code: 1, stdout: '', stderr: 'error: You must be logged in to the server (Unauthorized)\n' });
    const lines = res.apiLog();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(reason);
  });

  test('kubectl is refused an expired token (the API server\'s clock past exp)', async () => {
    await api.setClockOffset(3600);
    const res = await whoami('ci-main', MAIN);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 1, stderr: 'error: You must be logged in to the server (Unauthorized)\n' });
    for (const line of res.apiLog()) expect(line).toMatch(/^refused: oidc: token is expired \(Token Expiry: .+\)$/);
  });

  test('kube-credential prints a v1 ExecCredential expiring 30 s before the ID token; another ExecCredential version is refused', async () => {
    const env = await lab.buildEnv('ci-main', MAIN);
    const res = await runAgent(['kube-credential'], { ...env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } }) });
    expect(res.code).toBe(0);
    const cred = JSON.parse(res.stdout) as { status: { token: string; expirationTimestamp: string } };
    const { exp, aud } = JSON.parse(Buffer.from(cred.status.token.split('.')[1]!, 'base64url').toString()) as { exp: number; aud: string };
    expect(aud).toBe('kubernetes');
    expect(cred).toEqual({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token: cred.status.token, expirationTimestamp: new Date((exp - 30) * 1000).toISOString().replace('.000Z', 'Z') },
    });
    const old = await runAgent(['kube-credential'], { ...env, KUBERNETES_EXEC_INFO: JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1' }) });
    expect(old).toEqual({
      code: 2,
      stdout: '',
      stderr: 'jenkins-oidc-agent: kubectl asked for an ExecCredential client.authentication.k8s.io/v1beta1; this agent answers client.authentication.k8s.io/v1: set apiVersion: client.authentication.k8s.io/v1 in the kubeconfig\'s exec section\n',
    });
  });
});

run('Kubernetes and an ES256 issuer', () => {
  let lab: AwsLab;
  let api: KubeApiserver;
  let setup: { code: number | null; stdout: string; stderr: string };
  beforeAll(async () => {
    const binary = buildStandIn();
    lab = await startAwsLab({ SIGNING_ALG: 'ES256' });
    await lab.addClient({ name: 'ci-main', audiences: ['kubernetes'] });
    const cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true', SIGNING_ALG: 'ES256' };
    setup = await runCli(['kubernetes', 'setup', '--client', 'ci-main', '--json'], cli);
    api = await startKubeApiserver(binary, JSON.parse(setup.stdout), lab.ca);
  }, 180_000);
  afterAll(async () => {
    await api?.stop();
    await lab?.stop();
  });

  test('the generator warns, and kubectl is refused an ES256 token: kube-apiserver verifies RS256 only', async () => {
    expect(setup.stderr).toBe('warning: this service signs with ES256 (SIGNING_ALG); kube-apiserver verifies RS256 only by default: keep SIGNING_ALG=RS256 while a cluster trusts it\n');
    const env = await lab.buildEnv('ci-main', { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/' });
    const written = await runAgent(['kubeconfig', '--server', api.url, '--certificate-authority', lab.ca.rootFile], env);
    const file = /^export KUBECONFIG=(\S+)\n$/.exec(written.stdout)![1]!;
    const from = api.log.length;
    const res = await kubectl(['--kubeconfig', file, 'auth', 'whoami'], { ...env, HOME: lab.home });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 1, stderr: 'error: You must be logged in to the server (Unauthorized)\n' });
    const lines = api.log.slice(from);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toBe('refused: oidc: id token signed with unsupported algorithm, expected ["RS256"] got "ES256"');
  });
});

