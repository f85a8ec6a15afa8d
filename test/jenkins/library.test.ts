// The Jenkins pipeline library (jenkins/) under Debian's Groovy 2.4, the line
// Jenkins pipelines run, against the real token service started here.
// .ci/run installs groovy; elsewhere, without it, this file says so and is
// skipped (CI=true, REQUIRE_TOOLS=1 or REQUIRE_GROOVY=1 make its absence a
// failure: helpers/tools.ts).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACCOUNT, startAwsLab, trustPolicyFor, type AwsLab } from '../helpers/aws-lab.js';
import { checkTool } from '../helpers/tools.js';
import { buildStandIn, goToolchainPresent, startKubeApiserver, type KubeApiserver } from '../helpers/kube-apiserver.js';
import { kubernetesSetup } from '../../src/kubernetes/setup.js';
import { vaultSetup } from '../../src/vault/setup.js';
import { azureSetup } from '../../src/azure/setup.js';
import { EntraStandIn } from '../helpers/entra-stand-in.js';
import { gcpSetup } from '../../src/gcp/setup.js';
import { GoogleStsStandIn } from '../helpers/google-sts-stand-in.js';
import { VaultStandIn } from '../helpers/vault-stand-in.js';

// Debian's python3-hvac is installed for the system Python (see test/vault/vault.test.ts).
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const GCP_PROVIDER = 'projects/123456789012/locations/global/workloadIdentityPools/jenkins/providers/ci-main';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LIBRARY = path.join(ROOT, 'jenkins');
const JAVA_HOME = process.env.JAVA_HOME ?? '/usr/lib/jvm/java-17-openjdk-amd64';
const groovy = spawnSync('groovy', ['--version'], { env: { ...process.env, JAVA_HOME }, encoding: 'utf8' });
const available = checkTool(groovy.status === 0, 'groovy (the Jenkins library tests need it)', 'apt-get install -y groovy; JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64');
const run = available ? describe : describe.skip;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.groovy') && name !== 'LibraryTest.groovy' ? [p] : [];
  });
}

/** Compiles the library's src/, the Jenkins stand-ins and the harness, as Jenkins would compile src/. */
function compile(): { classes: string; status: number | null; output: string } {
  const classes = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-groovy-'));
  const files = [...sources(path.join(LIBRARY, 'test')), ...sources(path.join(LIBRARY, 'src'))];
  const r = spawnSync('groovyc', ['-d', classes, ...files], { env: { ...process.env, JAVA_HOME }, encoding: 'utf8' });
  return { classes, status: r.status, output: `${r.stdout}${r.stderr}` };
}

/**
 * A Java trust store holding the lab's root CA: the controller (the JVM that
 * runs the harness) reaches the service over https, as docs/jenkins.md
 * requires, through the lab's TLS proxy.
 */
function trustStore(caFile: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'jo-truststore-')), 'trust.p12');
  const r = spawnSync(path.join(JAVA_HOME, 'bin/keytool'), ['-importcert', '-noprompt', '-alias', 'lab-root', '-file', caFile, '-keystore', file, '-storetype', 'PKCS12', '-storepass', 'changeit'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`keytool failed: ${r.stdout}${r.stderr}`);
  return file;
}

/**
 * The harness's own bound, inside the test's (600 s): a harness still running
 * then is stopped here and its output so far reported, which says how far it
 * got, instead of jest tearing the lab down under it (every later call then
 * fails with a ConnectException that hides where the time went).
 */
const HARNESS_TIMEOUT_MS = 570_000;

function groovyRun(classes: string, trust: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('groovy', ['-cp', classes, path.join(LIBRARY, 'test/LibraryTest.groovy')], {
      // The JVM's temporary files (the harness's workspaces) go under the run's scratch folder too.
      env: {
        ...process.env,
        JAVA_HOME,
        JAVA_OPTS: `-Djava.io.tmpdir=${os.tmpdir()} -Djavax.net.ssl.trustStore=${trust} -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12`,
        ...env,
      },
      cwd: LIBRARY,
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => {
      out += `\nthe harness did not finish within ${HARNESS_TIMEOUT_MS / 1000} s: stopped\n`;
      child.kill('SIGKILL');
    }, HARNESS_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

run('Jenkins pipeline library (Groovy 2.4)', () => {
  // The service (its issuer an https TLS proxy, as AWS requires) and the AWS STS stand-in.
  let lab: AwsLab;
  beforeAll(async () => {
    lab = await startAwsLab();
  });
  let kube: KubeApiserver | undefined;
  let vault: VaultStandIn | undefined;
  let entra: EntraStandIn | undefined;
  let googleSts: GoogleStsStandIn | undefined;
  afterAll(async () => {
    await googleSts?.stop();
    await entra?.stop();
    await vault?.stop();
    await kube?.stop();
    await lab?.stop();
  });

  test('every library test passes against the live service', async () => {
    expect(existsSync(path.join(LIBRARY, 'vars/withJenkinsOidc.groovy'))).toBe(true);
    await lab.addClient({ name: 'ci-main', audiences: ['sts.amazonaws.com', 'kubernetes', 'vault', 'api://AzureADTokenExchange', `https://iam.googleapis.com/${GCP_PROVIDER}`] });
    // The Entra stand-in (Node only, always there), configured from azure setup's credentials for
    // team/app/main; withAzureOidc's agent checks the sign-in against it (--authority-host).
    const AZURE_CLIENT_ID = '0b1c2d3e-4f50-4617-8899-aabbccddeeff';
    const AZURE_TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    entra = await new EntraStandIn(lab.ca).start();
    const azure = azureSetup({
      issuer: lab.issuer, signingAlg: 'RS256', app: AZURE_CLIENT_ID, jobs: ['team/app/main'], refs: [],
      client: { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com', audiences: ['api://AzureADTokenExchange'], subClaims: ['jenkins_instance', 'job'], subTemplate: null },
    });
    expect(azure.warnings).toEqual([]);
    entra.addApp(AZURE_TENANT_ID, AZURE_CLIENT_ID, azure.setup.credentials);
    // The Google STS stand-in (Node only), configured from gcp setup's provider; gcloud signs in
    // through withGcpOidc's credential file where the machine has it.
    googleSts = await new GoogleStsStandIn(lab.ca).start();
    const gcp = gcpSetup({
      issuer: lab.issuer, projectId: 'acme-prod', projectNumber: '123456789012', pool: 'jenkins', provider: 'ci-main', conditions: [], subjects: [], serviceAccount: undefined,
      client: { name: 'ci-main', audiences: [`https://iam.googleapis.com/${GCP_PROVIDER}`], claimTypes: 'string', subClaims: ['jenkins_instance', 'job'], subTemplate: null },
    });
    googleSts.addProvider(gcp.setup.providerName, gcp.setup.provider);
    const gcloudPresent = spawnSync('gcloud', ['--version'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
    // The Vault stand-in, configured from the generator's output, where hvac can check the token.
    const vaultEnv: Record<string, string> = {};
    if (spawnSync(PYTHON, ['-c', 'import hvac'], { stdio: 'ignore' }).status === 0) {
      vault = await new VaultStandIn(lab.ca).start();
      const { setup } = vaultSetup({
        issuer: lab.issuer, client: { name: 'ci-main', audiences: ['vault'], claimTypes: 'string', subTemplate: null }, path: 'jwt', role: 'deploy', audience: 'vault',
        boundClaims: ['job=team/app/*'], claimMappings: ['job', 'build_number', 'jenkins_instance'], policies: ['app-read'], tokenTtl: 900, userClaim: 'sub',
      });
      const write = async (apiPath: string, body: unknown) => {
        const res = await fetch(`${vault!.url}/v1/${apiPath}`, { method: 'POST', headers: { 'x-vault-token': vault!.rootToken }, body: JSON.stringify(body) });
        expect(res.status).toBe(204);
      };
      await write('sys/auth/jwt', { type: 'jwt' });
      await write('auth/jwt/config', setup.config);
      await write(`auth/jwt/role/${setup.role.name}`, setup.role.body);
      Object.assign(vaultEnv, { JENKINS_OIDC_TEST_VAULT_URL: vault.url, JENKINS_OIDC_TEST_PYTHON: PYTHON, JENKINS_OIDC_TEST_HVAC_PROBE: path.join(ROOT, 'test/helpers/hvac-probe.py') });
    }
    // kubectl against the kube-apiserver stand-in, configured by the generator, where both can run.
    const kubeEnv: Record<string, string> = {};
    if (goToolchainPresent() && spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0) {
      const { config } = kubernetesSetup({
        issuer: lab.issuer, signingAlg: 'RS256', client: { name: 'ci-main', audiences: ['sts.amazonaws.com', 'kubernetes'], claimTypes: 'string' },
        audience: 'kubernetes', usernameClaim: 'sub', usernamePrefix: 'jenkins:', requiredClaims: [],
      });
      kube = await startKubeApiserver(buildStandIn(), config, lab.ca);
      kubeEnv.JENKINS_OIDC_TEST_KUBE_SERVER = kube.url;
    }
    const secret = lab.secrets['ci-main']!;
    const role = (name: string, sub: string) => {
      lab.sts.addRole(`arn:aws:iam::${ACCOUNT}:role/${name}`, trustPolicyFor(lab.providerArn, lab.issuer, sub));
      return `arn:aws:iam::${ACCOUNT}:role/${name}`;
    };
    const chained = (account: string, name: string, principal: string) => {
      lab.sts.addChainedRole(`arn:aws:iam::${account}:role/${name}`, [{ Effect: 'Allow', Principal: { AWS: principal }, Action: 'sts:AssumeRole' }]);
      return `arn:aws:iam::${account}:role/${name}`;
    };
    const compiled = compile();
    expect(compiled.output).toBe('');
    expect(compiled.status).toBe(0);
    const result = await groovyRun(compiled.classes, trustStore(lab.ca.rootFile), {
      // The controller talks to the service over https (the lab's TLS proxy); builds are sent to the same URL,
      // and their curl trusts the lab's CA as an agent would trust the company's.
      JENKINS_OIDC_TEST_URL: lab.issuer,
      CURL_CA_BUNDLE: lab.ca.rootFile,
      // The service behind the proxy, for tests that need a plain-http service URL (JENKINS_OIDC_ALLOW_HTTP).
      JENKINS_OIDC_TEST_HTTP_URL: lab.t.url,
      JENKINS_OIDC_TEST_ISSUER: lab.issuer,
      JENKINS_OIDC_TEST_STS: lab.sts.url,
      JENKINS_OIDC_TEST_CA: lab.ca.rootFile,
      JENKINS_OIDC_TEST_PROBE: path.join(ROOT, 'test/helpers/aws-sdk-probe.mjs'),
      JENKINS_OIDC_TEST_ROLE_DEPLOY: role('deploy', 'jenkins_instance:ci-main:job:team/app/*'),
      JENKINS_OIDC_TEST_ROLE_AUDIT: role('audit', 'jenkins_instance:ci-main:job:team/*'),
      JENKINS_OIDC_TEST_ROLE_OTHER: role('other-team', 'jenkins_instance:ci-main:job:other/*'),
      // A role in another account that trusts the deploy role: withAwsOidc's chainRoleArns.
      JENKINS_OIDC_TEST_ROLE_CHAINED: chained('210987654321', 'prod-deploy', `arn:aws:iam::${ACCOUNT}:role/deploy`),
      ...kubeEnv,
      ...vaultEnv,
      JENKINS_OIDC_TEST_ENTRA_HOST: `https://localhost:${entra.port}`,
      JENKINS_OIDC_TEST_AZURE_CLIENT_ID: AZURE_CLIENT_ID,
      JENKINS_OIDC_TEST_AZURE_TENANT_ID: AZURE_TENANT_ID,
      JENKINS_OIDC_TEST_GCP_STS: googleSts.url,
      JENKINS_OIDC_TEST_GCP_PROVIDER: GCP_PROVIDER,
      JENKINS_OIDC_TEST_GCLOUD: gcloudPresent ? '1' : '',
      JENKINS_OIDC_TEST_CLIENT_ID: 'ci-main',
      JENKINS_OIDC_TEST_CLIENT_SECRET: secret,
      JENKINS_OIDC_TEST_JENKINS_URL: 'https://jenkins.example.com',
      JENKINS_OIDC_TEST_LIBRARY: LIBRARY,
    });
    const summary = result.out.trim().split('\n').at(-1);
    // The reach test's figures (members, hostile calls), for the record.
    for (const line of result.out.split('\n').filter((l) => /^  (reach|junk)[ :(]/.test(l))) console.log(line.trim());
    // Every test's line and time with LIBRARY_TEST_VERBOSE=1; the whole output whenever one fails.
    if (result.code !== 0 || process.env.LIBRARY_TEST_VERBOSE) process.stderr.write(result.out);
    expect(summary).toMatch(/^\d+ passed, 0 failed$/);
    expect(Number(summary!.split(' ')[0])).toBeGreaterThanOrEqual(38);
    expect(result.code).toBe(0);
    // The secret never reaches the build log the harness printed.
    expect(result.out).not.toContain(secret);
    // withAzureOidc's one sign-in check, for the job's exact sub.
    expect(entra.exchanges).toEqual([{ outcome: 'ok', clientId: AZURE_CLIENT_ID, subject: 'jenkins_instance:ci-main:job:team/app/main' }]);
    // withGcpOidc's gcloud sign-in: every exchange admitted, for the job's principal.
    if (gcloudPresent) {
      expect(googleSts.exchanges.length).toBeGreaterThan(0);
      expect(new Set(googleSts.exchanges.map((e) => `${e.outcome} ${e.principal}`))).toEqual(
        new Set([`ok principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/jenkins/subject/jenkins_instance:ci-main:job:team/app/main`]),
      );
    }
    // The service saw every library-minted token revoked.
    const [row] = await lab.t.database.query<{ open: number }>(
      "SELECT count(*)::int AS open FROM request_tokens WHERE revoked_at IS NULL AND client_name = 'ci-main'",
    );
    expect(row).toEqual({ open: 0 });
    // Every mint the library made, hostile calls included, was for a build the harness really ran:
    // none for the forged prod/deploy #999 or #1 the attacks named.
    const minted = await lab.t.database.query<{ job: string; build_number: number }>(
      "SELECT DISTINCT job, build_number FROM request_tokens WHERE client_name = 'ci-main'",
    );
    expect(minted.sort((a, b) => (a.job === b.job ? a.build_number - b.build_number : a.job < b.job ? -1 : 1))).toEqual([
      { job: 'reach/real-run', build_number: 7 },
      { job: 'team/app/PR-12', build_number: 42 },
      { job: 'team/app/main', build_number: 42 },
      // The restarts of issue 16: of a build from SCM, and of a Replay where replays are allowed.
      { job: 'team/app/main', build_number: 44 },
      { job: 'team/app/main', build_number: 45 },
      { job: 'team/app/v1.2.0', build_number: 42 },
      { job: 'team/freestyle-ish', build_number: 42 },
    ]);
    // 48 tests in one JVM, two of them sweeps of thousands of hostile calls: about 100 s on a quiet
    // machine, more than 300 s under a load average of 15, when the bound was 300 s and the lab was torn
    // down under the running harness. The bound only decides how long a hung harness takes to fail.
  }, 600_000);
});
