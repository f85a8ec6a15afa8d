// Google Cloud end to end: `jenkins-oidc gcp setup --json` configures a
// Google STS stand-in (the provider's issuer, allowed audience, attribute
// mapping and condition), the agent writes an external_account credential
// file whose source is itself as an executable, and the real gcloud logs in
// with it (`gcloud auth login --cred-file`) and prints an access token whose
// principal is the one the generator printed for the job. The wrong audience,
// another controller, an expired token and a sub over Google's 127 bytes are
// refused.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { runCli } from '../helpers/cli.js';
import { GoogleStsStandIn } from '../helpers/google-sts-stand-in.js';

// gcloud comes with the machine image; Google's apt source is not reachable
// from CI machines, so it cannot be installed there: without it these tests
// are skipped, with this message, even in CI.
const gcloudPresent = spawnSync('gcloud', ['--version'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
if (!gcloudPresent) console.warn('SKIPPED: gcloud is not installed (it comes with the machine image and cannot be installed from Debian)');
const run = gcloudPresent ? describe : describe.skip;

const PROJECT_NUMBER = '123456789012';
const PROVIDER = `projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/jenkins/providers/ci-main`;
const AUDIENCE = `https://iam.googleapis.com/${PROVIDER}`;

function gcloud(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('gcloud', args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

run('Google Cloud Workload Identity Federation with the real gcloud', () => {
  let lab: AwsLab;
  let sts: GoogleStsStandIn;
  let cli: Record<string, string>;
  let setup: { providerName: string; audience: string; provider: { issuerUri: string; allowedAudiences: string[]; attributeMapping: Record<string, string>; attributeCondition: string }; principals: string[]; commands: string[] };
  const MAIN = { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/' };
  const SUB = `ci-main:${createHash('sha256').update('team/app/main').digest('base64url')}`;

  beforeAll(async () => {
    lab = await startAwsLab();
    await lab.addClient({ name: 'ci-main', audiences: ['sts.amazonaws.com', AUDIENCE], subTemplate: '{jenkins_instance}:{job|sha256}' });
    await lab.addClient({ name: 'ci-other', audiences: [AUDIENCE], subTemplate: '{jenkins_instance}:{job|sha256}' });
    await lab.addClient({ name: 'ci-long', audiences: [AUDIENCE] });
    sts = await new GoogleStsStandIn(lab.ca).start();
    cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true' };
    const res = await runCli(['gcp', 'setup', '--client', 'ci-main', '--project-id', 'acme-prod', '--project-number', PROJECT_NUMBER, '--subject', SUB, '--json'], cli);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    setup = JSON.parse(res.stdout);
    sts.addProvider(setup.providerName, setup.provider);
  }, 120_000);
  afterAll(async () => {
    await sts?.stop();
    await lab?.stop();
  });
  beforeEach(() => {
    sts.clockOffsetSeconds = 0;
    sts.exchanges.length = 0;
  });

  /** gcloud auth login --cred-file with the file the agent wrote, then print-access-token. */
  async function login(client: string, build: Record<string, string>, extra: string[] = []) {
    const env = await lab.buildEnv(client, build);
    const written = await runAgent(['gcp-config', '--provider', PROVIDER, '--token-url', `${sts.url}/v1/token`, '--token-info-url', `${sts.url}/v1/introspect`, ...extra], env);
    expect(written.code).toBe(0);
    const vars = Object.fromEntries([...written.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    const gcloudEnv = { ...env, ...vars, CLOUDSDK_CONFIG: mkdtempSync(path.join(os.tmpdir(), 'jo-gcloud-')), CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE: lab.ca.rootFile, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
    const loggedIn = await gcloud(['auth', 'login', `--cred-file=${vars.GOOGLE_APPLICATION_CREDENTIALS}`], gcloudEnv);
    return { vars, loggedIn, token: loggedIn.code === 0 ? await gcloud(['auth', 'print-access-token'], gcloudEnv) : undefined };
  }

  test('gcp setup --json: the provider trusts the issuer for its own audience, maps google.subject from sub and pins the controller', () => {
    expect(setup).toEqual({
      providerName: PROVIDER,
      audience: AUDIENCE,
      provider: {
        issuerUri: lab.issuer,
        allowedAudiences: [AUDIENCE],
        attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.jenkins_instance': 'assertion.jenkins_instance', 'attribute.job': 'assertion.job' },
        attributeCondition: "assertion.jenkins_instance == 'ci-main'",
      },
      principals: [`principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/jenkins/subject/${SUB}`],
      commands: [
        "gcloud iam workload-identity-pools create jenkins --project=acme-prod --location=global --display-name='Jenkins (jenkins-oidc)'",
        `gcloud iam workload-identity-pools providers create-oidc ci-main --project=acme-prod --location=global --workload-identity-pool=jenkins \\\n  --issuer-uri='${lab.issuer}' --allowed-audiences='${AUDIENCE}' \\\n` +
          "  --attribute-mapping='google.subject=assertion.sub,attribute.jenkins_instance=assertion.jenkins_instance,attribute.job=assertion.job' \\\n" +
          "  --attribute-condition='assertion.jenkins_instance == '\\''ci-main'\\'''",
        `# grant principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/jenkins/subject/${SUB} the roles it needs, e.g.: gcloud projects add-iam-policy-binding acme-prod --role=roles/storage.objectViewer --member='principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/jenkins/subject/${SUB}'`,
      ],
    });
  });

  test("gcp setup warns when a client's sub can exceed google.subject's 127 bytes", async () => {
    const res = await runCli(['gcp', 'setup', '--client', 'ci-long', '--project-id', 'acme-prod', '--project-number', PROJECT_NUMBER, '--provider', 'ci-main', '--json'], cli);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(
      "warning: client ci-long's sub can reach 2133 bytes; google.subject holds 127 and Google refuses the exchange of a longer one. Hash the job into it: jenkins-oidc clients update ci-long --sub-template '{jenkins_instance}:{job|sha256}'\n",
    );
  });

  test('gcloud logs in with the credential file; the access token is for the principal gcp setup printed', async () => {
    const { vars, loggedIn, token } = await login('ci-main', MAIN);
    expect(loggedIn.code).toBe(0);
    expect(loggedIn.stderr).toContain(`Authenticated with external account credentials for: [${setup.principals[0]}].`);
    expect(token?.code).toBe(0);
    expect(sts.principalOf(token!.stdout.trim())).toMatchObject({ principal: setup.principals[0], attributes: { 'google.subject': SUB, 'attribute.jenkins_instance': 'ci-main', 'attribute.job': 'team/app/main' } });
    // The credential file names the agent as its source and holds no token.
    const file = readFileSync(vars.GOOGLE_APPLICATION_CREDENTIALS!, 'utf8');
    expect(statSync(vars.GOOGLE_APPLICATION_CREDENTIALS!).mode & 0o777).toBe(0o600);
    expect(JSON.parse(file)).toMatchObject({ type: 'external_account', audience: `//iam.googleapis.com/${PROVIDER}`, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(file).not.toMatch(/eyJ/);
    expect(vars.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES).toBe('1');
  });

  test.each<[string, string, Record<string, string>, string[], string]>([
    ['a token for another audience', 'ci-main', MAIN, ['--audience', 'sts.amazonaws.com'], 'invalid_grant: The audience in ID Token does not match the expected audience.'],
    ["another controller's build", 'ci-other', MAIN, [], 'unauthorized_client: The given credential is rejected by the attribute condition.'],
    ['a sub over 127 bytes (the default key:value sub of a deep job)', 'ci-long', { job: `team/${'deep/'.repeat(24)}app`, build_url: 'https://jenkins.example.com/job/x/42/' }, [],
      'invalid_request: The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify your attribute mapping or the incoming assertion to produce a mapped attribute that is less than 127 bytes.'],
  ])('gcloud is refused: %s', async (_name, client, build, extra, outcome) => {
    const { loggedIn } = await login(client, build, extra);
    expect(loggedIn.code).toBe(1);
    expect(sts.exchanges.map((e) => e.outcome)).toContain(outcome);
    expect(sts.exchanges.filter((e) => e.outcome === 'ok')).toEqual([]);
  });

  test('gcloud is refused an expired token (the STS clock past exp)', async () => {
    sts.clockOffsetSeconds = 3600;
    const { loggedIn } = await login('ci-main', MAIN);
    expect(loggedIn.code).toBe(1);
    expect(new Set(sts.exchanges.map((e) => e.outcome))).toEqual(new Set(['invalid_grant: ID Token expired.']));
  });
});
