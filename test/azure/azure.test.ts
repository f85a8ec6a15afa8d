// Microsoft Entra end to end: `jenkins-oidc azure setup --json` configures an
// Entra stand-in (an app registration and its federated credentials), the
// agent writes the build's token file and checks the trust once
// (azure-credentials), and the real Azure CLI signs in with that file
// (`az login --service-principal --federated-token`) through a CONNECT proxy
// that sends only Microsoft's hosts to the stand-in; the access token az
// then holds is the stand-in's, for the app, for the job's sub. The wrong
// audience, another job, an expired token and an ES256 token are refused
// with Entra's documented error codes.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { runCli } from '../helpers/cli.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { ENTRA_HOSTS, EntraStandIn, type FederatedCredential } from '../helpers/entra-stand-in.js';
import { checkTool } from '../helpers/tools.js';

const AZ = '/usr/bin/az';
const azPresent = existsSync(AZ) && spawnSync(AZ, ['version'], { stdio: 'ignore', timeout: 120_000, env: { PATH: process.env.PATH ?? '', AZURE_CONFIG_DIR: mkdtempSync(path.join(os.tmpdir(), 'jo-az-probe-')), AZURE_CORE_COLLECT_TELEMETRY: 'no' } }).status === 0;
const run = checkTool(azPresent, 'the Azure CLI (az)', 'apt-get install azure-cli') ? describe : describe.skip;

const AUD = 'api://AzureADTokenExchange';
const CLIENT_ID = '0b1c2d3e-4f50-4617-8899-aabbccddeeff';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const MAIN = { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/' };
const OTHER = { job: 'team/other/main', build_url: 'https://jenkins.example.com/job/team/job/other/job/main/9/' };

interface Setup {
  app: string;
  credentials: (FederatedCredential & { description: string })[];
  commands: string[];
}

function az(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(AZ, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The lab, the stand-in configured from `azure setup --json`, and the proxy az goes through. */
async function startEntraLab(serviceEnv: Record<string, string> = {}) {
  const lab = await startAwsLab(serviceEnv);
  await lab.addClient({ name: 'ci-main', audiences: [AUD, 'sts.amazonaws.com'], subTemplate: '{jenkins_instance}:{job}' });
  const entra = await new EntraStandIn(lab.ca).start();
  const proxy = await startConnectProxy({ hosts: ENTRA_HOSTS, port: entra.port });
  // The generator runs as an admin would, with the service's configuration
  // as it is when the credentials are created.
  const cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true' };
  const res = await runCli(['azure', 'setup', '--client', 'ci-main', '--app', CLIENT_ID, '--job', 'team/app/main', '--job', 'team/app/release', '--json'], cli);
  if (res.code !== 0) throw new Error(`azure setup failed: ${res.stderr}`);
  const setup = JSON.parse(res.stdout) as Setup;
  entra.addApp(TENANT_ID, CLIENT_ID, setup.credentials);
  return { lab, entra, proxy, cli, setup, setupStderr: res.stderr };
}

/** az's environment: its own config folder, Microsoft's hosts through the proxy, the test CA trusted. */
function azEnv(lab: AwsLab, proxy: ConnectProxy): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: lab.home,
    AZURE_CONFIG_DIR: mkdtempSync(path.join(os.tmpdir(), 'jo-azure-config-')),
    AZURE_CORE_COLLECT_TELEMETRY: 'no',
    HTTPS_PROXY: proxy.url,
    // requests (under MSAL and the ARM client) verifies TLS with this bundle instead of the system's.
    REQUESTS_CA_BUNDLE: lab.ca.rootFile,
  };
}

/** The build's token file from the agent, then az login with it. */
async function login(ctx: { lab: AwsLab; proxy: ConnectProxy }, build: Record<string, string>, agentArgs: string[] = []) {
  const env = await ctx.lab.buildEnv('ci-main', build);
  const written = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, '--no-verify', ...agentArgs], env);
  expect(written.code).toBe(0);
  const vars = Object.fromEntries([...written.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  const environment = azEnv(ctx.lab, ctx.proxy);
  const token = readFileSync(vars.AZURE_FEDERATED_TOKEN_FILE!, 'utf8');
  const loggedIn = await az(['login', '--service-principal', '-u', vars.AZURE_CLIENT_ID!, '-t', vars.AZURE_TENANT_ID!, '--federated-token', token, '--output', 'json'], environment);
  return { env, vars, environment, loggedIn };
}

run('Microsoft Entra workload identity federation with the real Azure CLI', () => {
  let ctx: Awaited<ReturnType<typeof startEntraLab>>;

  beforeAll(async () => {
    ctx = await startEntraLab();
  }, 180_000);
  afterAll(async () => {
    await ctx?.proxy.close();
    await ctx?.entra.stop();
    await ctx?.lab.stop();
  });
  beforeEach(() => {
    ctx.entra.clockOffsetSeconds = 0;
    ctx.entra.exchanges.length = 0;
  });

  test('azure setup --json: one credential per job, the issuer as served, the exact sub of its builds, Entra\'s audience', () => {
    const { lab, setup, setupStderr } = ctx;
    expect(setupStderr).toBe('');
    const credential = (job: string, name: string) => ({ name, issuer: lab.issuer, subject: `ci-main:${job}`, description: `Jenkins ci-main: ${job} (jenkins-oidc)`, audiences: [AUD] });
    const credentials = [credential('team/app/main', 'ci-main-team-app-main'), credential('team/app/release', 'ci-main-team-app-release')];
    expect(setup).toEqual({
      app: CLIENT_ID,
      credentials,
      commands: credentials.map((c) => `az ad app federated-credential create --id ${CLIENT_ID} --parameters '${JSON.stringify(c)}'`),
    });
  });

  test('azure setup without --json prints the az commands', async () => {
    const res = await runCli(['azure', 'setup', '--client', 'ci-main', '--app', CLIENT_ID, '--job', 'team/app/main', '--job', 'team/app/release'], ctx.cli);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    expect(res.stdout).toBe(`${ctx.setup.commands.join('\n')}\n`);
  });

  test('az logs in with the agent\'s token file; the access token it holds is for the app and the job\'s sub; nothing left the machine', async () => {
    const { loggedIn, environment } = await login(ctx, MAIN);
    expect({ code: loggedIn.code, stderr: loggedIn.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(loggedIn.stdout)).toEqual([
      expect.objectContaining({ id: '5f2c1e4a-0d3b-4c6e-9a8f-7b1d2e3f4a5b', tenantId: TENANT_ID, user: { name: CLIENT_ID, type: 'servicePrincipal' }, state: 'Enabled' }),
    ]);
    const token = await az(['account', 'get-access-token', '--output', 'json'], environment);
    expect(token.code).toBe(0);
    const accessToken = JSON.parse(token.stdout).accessToken as string;
    expect(ctx.entra.tokenInfo(accessToken)).toEqual({ clientId: CLIENT_ID, tenantId: TENANT_ID, subject: 'ci-main:team/app/main', exp: expect.any(Number) });
    expect(ctx.entra.exchanges).toEqual([{ outcome: 'ok', clientId: CLIENT_ID, subject: 'ci-main:team/app/main' }]);
    // The one other host az asked for: its version check on a fresh config
    // folder (azure.cli.core.util.check_connectivity), refused by the proxy.
    expect(ctx.proxy.refused).toEqual(['azure.microsoft.com:443']);
    expect(new Set(ctx.proxy.tunnels)).toEqual(new Set(ENTRA_HOSTS.map((h) => `${h}:443`)));
  });

  test.each<[string, Record<string, string>, string[], string]>([
    ['a token for another audience', MAIN, ['--audience', 'sts.amazonaws.com'],
      "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: 'ci-main:team/app/main'. Assertion Audience: 'sts.amazonaws.com'."],
    ["another job's token (no credential has its sub)", OTHER, [],
      "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: 'ci-main:team/other/main'. Assertion Audience: 'api://AzureADTokenExchange'."],
  ])('az is refused: %s', async (_name, build, agentArgs, outcome) => {
    const { loggedIn } = await login(ctx, build, agentArgs);
    const expected = outcome.replace('{issuer}', ctx.lab.issuer);
    expect(loggedIn.code).toBe(1);
    expect(loggedIn.stderr).toContain(expected);
    expect(ctx.entra.exchanges).toEqual([{ outcome: expected }]);
  });

  test('az is refused an expired token (Entra\'s clock past exp): AADSTS700024', async () => {
    ctx.entra.clockOffsetSeconds = 3600;
    const { loggedIn } = await login(ctx, MAIN);
    expect(loggedIn.code).toBe(1);
    expect(loggedIn.stderr).toContain('AADSTS700024: Client assertion is not within its valid time range.');
    expect(ctx.entra.exchanges).toEqual([{ outcome: 'AADSTS700024: Client assertion is not within its valid time range.' }]);
  });

  test('the agent checks the trust once: verified for the job, and a refusal explained beside the token\'s iss, aud and sub', async () => {
    const authority = ['--authority-host', `https://localhost:${ctx.entra.port}`];
    const env = await ctx.lab.buildEnv('ci-main', MAIN);
    const ok = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, ...authority], env);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toBe(`jenkins-oidc-agent: verified: Microsoft Entra signs this build in as app ${CLIENT_ID} in tenant ${TENANT_ID}\n`);
    expect(ok.stdout).toMatch(new RegExp(`^export AZURE_CLIENT_ID=${CLIENT_ID}\nexport AZURE_TENANT_ID=${TENANT_ID}\nexport AZURE_FEDERATED_TOKEN_FILE=\\S+\nexport AZURE_AUTHORITY_HOST=https://localhost:${ctx.entra.port}\n$`));

    const other = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, '--token-file', path.join(env.WORKSPACE_TMP!, 'refused'), ...authority], await ctx.lab.buildEnv('ci-main', OTHER));
    expect({ code: other.code, stdout: other.stdout }).toEqual({ code: 1, stdout: '' });
    expect(other.stderr).toBe(
      `jenkins-oidc-agent: Microsoft Entra refused the sign-in as app ${CLIENT_ID} in tenant ${TENANT_ID}: AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '${ctx.lab.issuer}'. Assertion Subject: 'ci-main:team/other/main'. Assertion Audience: 'api://AzureADTokenExchange'.\n` +
        '  The ID token carried:\n' +
        `    iss  ${ctx.lab.issuer}\n` +
        '    aud  api://AzureADTokenExchange\n' +
        '    sub  ci-main:team/other/main\n' +
        `  What it means: no federated credential of app ${CLIENT_ID} has exactly this issuer, subject and audience (Entra compares them exactly and case-sensitively, without wildcards).\n` +
        '    Create one for this job: jenkins-oidc azure setup --client CLIENT --app APP --job JOB; a new credential can take a few minutes to propagate.\n',
    );
    // Refused: no token file left for a tool to pick up.
    expect(existsSync(path.join(env.WORKSPACE_TMP!, 'refused'))).toBe(false);
  });
});

run('Microsoft Entra and an ES256 issuer', () => {
  let ctx: Awaited<ReturnType<typeof startEntraLab>>;
  beforeAll(async () => {
    // The credentials were created while the service signed RS256; it has since been switched to ES256.
    ctx = await startEntraLab({ SIGNING_ALG: 'ES256' });
  }, 180_000);
  afterAll(async () => {
    await ctx?.proxy.close();
    await ctx?.entra.stop();
    await ctx?.lab.stop();
  });

  test('azure setup refuses an ES256 service, and az is refused an ES256 token: AADSTS50027 (Entra supports RS256 only)', async () => {
    const refused = await runCli(['azure', 'setup', '--client', 'ci-main', '--app', CLIENT_ID, '--job', 'team/app/main', '--json'], { ...ctx.cli, SIGNING_ALG: 'ES256' });
    expect(refused).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: SIGNING_ALG: this service signs with ES256; Microsoft Entra supports only issuers whose tokens are signed with RS256. Keep SIGNING_ALG=RS256 while Azure trusts this service\n',
    });
    const { loggedIn } = await login(ctx, MAIN);
    expect(loggedIn.code).toBe(1);
    const outcome = "AADSTS50027: Invalid JWT token. Unsupported signing algorithm 'ES256': only RS256 is supported for federated credentials.";
    expect(loggedIn.stderr).toContain(outcome);
    expect(ctx.entra.exchanges).toEqual([{ outcome }]);
  });
});
