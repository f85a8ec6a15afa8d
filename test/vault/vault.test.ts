// Vault end to end: `jenkins-oidc vault setup --json` configures the Vault
// stand-in through Vault's API (as `vault write` would), and Vault's own
// Python client (hvac) and the agent log in with builds' ID tokens. Builds of
// the bound job get a token with the role's policies and the mapped claims;
// the wrong audience, another job, another controller and an expired token
// are refused with Vault's words.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { runCli } from '../helpers/cli.js';
import { checkTool } from '../helpers/tools.js';
import { VaultStandIn } from '../helpers/vault-stand-in.js';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/hvac-probe.py');
// Debian's python3-hvac is installed for the system Python; a python3 earlier
// on PATH (pyenv, a virtualenv) would not see it.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const hvacPresent = spawnSync(PYTHON, ['-c', 'import hvac'], { stdio: 'ignore' }).status === 0;
const run = checkTool(hvacPresent, "Vault's Python client hvac", 'apt-get install python3-hvac') ? describe : describe.skip;

interface ProbeAnswer {
  ok: boolean;
  error?: string;
  errors?: string[];
  [k: string]: unknown;
}

function hvac(request: Record<string, unknown>): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PROBE, JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ProbeAnswer) : reject(new Error(`hvac probe exited ${code}: ${err}`))));
  });
}

run('Vault JWT auth with the real hvac client', () => {
  let lab: AwsLab;
  let vault: VaultStandIn;
  let cli: Record<string, string>;
  let setupJson: { path: string; config: Record<string, unknown>; role: { name: string; body: Record<string, unknown> } };

  async function vaultApi(method: string, apiPath: string, body: unknown) {
    const res = await fetch(`${vault.url}/v1/${apiPath}`, { method, headers: { 'x-vault-token': vault.rootToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  }

  /** An ID token of a build of `client`, for `audience`, through the agent. */
  async function idToken(client: string, build: Record<string, string>, audience = 'vault'): Promise<string> {
    const env = await lab.buildEnv(client, build);
    const res = await runAgent(['token', '--audience', audience], env);
    expect(res.code).toBe(0);
    return res.stdout.trim();
  }

  const MAIN = { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/42/' };

  beforeAll(async () => {
    lab = await startAwsLab();
    await lab.addClient({ name: 'ci-main', audiences: ['sts.amazonaws.com', 'vault'] });
    await lab.addClient({ name: 'ci-other', audiences: ['vault'] });
    await lab.addClient({ name: 'ci-legacy', audiences: ['vault'], claimTypes: 'json' });
    vault = await new VaultStandIn(lab.ca).start();
    cli = { DATABASE_URL: lab.t.database.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: lab.issuer, ALLOW_INSECURE_ISSUER: 'true' };
    const res = await runCli(['vault', 'setup', '--client', 'ci-main', '--role', 'deploy', '--policy', 'app-read', '--bound-claim', 'job=team/app/*', '--json'], cli);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    setupJson = JSON.parse(res.stdout);
    // Applied as `vault auth enable` and `vault write` would, through the API.
    expect(await vaultApi('POST', `sys/auth/${setupJson.path}`, { type: 'jwt' })).toEqual({ status: 204, text: '' });
    expect(await vaultApi('POST', `auth/${setupJson.path}/config`, setupJson.config)).toEqual({ status: 204, text: '' });
    expect(await vaultApi('POST', `auth/${setupJson.path}/role/${setupJson.role.name}`, setupJson.role.body)).toEqual({ status: 204, text: '' });
  });
  afterAll(async () => {
    await vault?.stop();
    await lab?.stop();
  });
  beforeEach(() => {
    vault.clockOffsetSeconds = 0;
  });

  test('vault setup --json: discovery and bound_issuer, a jwt role bound to the audience, the controller and the job', () => {
    expect(setupJson).toEqual({
      path: 'jwt',
      config: { oidc_discovery_url: lab.issuer, bound_issuer: lab.issuer, jwt_supported_algs: ['RS256', 'ES256'] },
      role: {
        name: 'deploy',
        body: {
          role_type: 'jwt',
          bound_audiences: ['vault'],
          bound_claims_type: 'glob',
          bound_claims: { jenkins_instance: 'ci-main', job: 'team/app/*' },
          user_claim: 'sub',
          claim_mappings: { job: 'job', build_number: 'build_number', jenkins_instance: 'jenkins_instance' },
          token_policies: ['app-read'],
          token_ttl: 900,
          token_max_ttl: 900,
          token_type: 'service',
        },
      },
    });
  });

  test('vault setup without --json prints the vault commands', async () => {
    const res = await runCli(['vault', 'setup', '--client', 'ci-main', '--role', 'deploy', '--policy', 'app-read', '--bound-claim', 'job=team/app/main'], cli);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      [
        '# once per Vault: the JWT auth method at auth/jwt, trusting this issuer\'s keys and only its iss',
        'vault auth enable -path=jwt jwt',
        `vault write auth/jwt/config oidc_discovery_url=${lab.issuer} bound_issuer=${lab.issuer} jwt_supported_algs=RS256,ES256`,
        '',
        '# the role builds log in with (jenkins-oidc-agent vault-login --role deploy)',
        "vault write auth/jwt/role/deploy - <<'JSON'",
        JSON.stringify({
          role_type: 'jwt', bound_audiences: ['vault'], bound_claims_type: 'string', bound_claims: { jenkins_instance: 'ci-main', job: 'team/app/main' }, user_claim: 'sub',
          claim_mappings: { job: 'job', build_number: 'build_number', jenkins_instance: 'jenkins_instance' }, token_policies: ['app-read'], token_ttl: 900, token_max_ttl: 900, token_type: 'service',
        }, null, 2),
        'JSON',
        '',
      ].join('\n'),
    );
  });

  test.each<[string, string[], string]>([
    ['a number claim of a json client', ['--client', 'ci-legacy', '--bound-claim', 'job=x', '--claim-mapping', 'job,build_number'],
      'error: --claim-mapping: build_number is a JSON number in client ci-legacy\'s tokens, and Vault fails the login on a claim that is not a string; switch the client to string claims first: jenkins-oidc clients update ci-legacy --claim-types string\n'],
    ['no bound claim besides the controller', ['--client', 'ci-main'],
      'error: --bound-claim: give at least one, such as --bound-claim job=team/app/main: bound to the controller alone, the role would admit every job of ci-main\n'],
    ['another controller', ['--client', 'ci-main', '--bound-claim', 'jenkins_instance=ci-other', '--bound-claim', 'job=x'],
      "error: --bound-claim: jenkins_instance must be this controller, ci-main, exactly; a role for another controller's builds is made with --client\n"],
    ['an audience the client cannot ask for', ['--client', 'ci-other', '--bound-claim', 'job=x', '--audience', 'sts.amazonaws.com'],
      'error: --audience: "sts.amazonaws.com" is not an audience of client ci-other (vault); add it: jenkins-oidc clients update ci-other --audience vault,sts.amazonaws.com\n'],
  ])('vault setup refuses %s', async (_name, args, stderr) => {
    const res = await runCli(['vault', 'setup', '--role', 'r', '--policy', 'p', ...args], cli);
    expect({ code: res.code, stderr: res.stderr, stdout: res.stdout }).toEqual({ code: 1, stderr, stdout: '' });
  });

  test('hvac logs in with a build token of the bound job: policies, string claims in the metadata, a working token', async () => {
    const jwt = await idToken('ci-main', MAIN);
    expect(await hvac({ op: 'login', addr: vault.url, role: 'deploy', jwt })).toEqual({
      ok: true,
      token_set: true,
      auth: {
        policies: ['default', 'app-read'],
        token_policies: ['default', 'app-read'],
        metadata: { job: 'team/app/main', build_number: '42', jenkins_instance: 'ci-main', role: 'deploy' },
        lease_duration: 900,
        renewable: true,
        token_type: 'service',
        orphan: true,
      },
      lookup_policies: ['default', 'app-read'],
    });
  });

  test.each<[string, () => Promise<string>, string]>([
    ['a token for another audience', () => idToken('ci-main', MAIN, 'sts.amazonaws.com'), 'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience'],
    ["another job's token", () => idToken('ci-main', { job: 'team/other/main', build_url: 'https://jenkins.example.com/job/team/job/other/job/main/42/' }), 'error validating claims: claim "job" does not match any associated bound claim values'],
    ["another controller's build of the same job", () => idToken('ci-other', MAIN), 'error validating claims: claim "jenkins_instance" does not match any associated bound claim values'],
  ])('hvac is refused: %s', async (_name, token, message) => {
    expect(await hvac({ op: 'login', addr: vault.url, role: 'deploy', jwt: await token() })).toEqual({ ok: false, error: 'InvalidRequest', errors: [message] });
  });

  test('hvac is refused an expired token (past exp + 150 s expiration leeway + 60 s clock skew), and admitted within the leeway', async () => {
    const jwt = await idToken('ci-main', MAIN);
    const { exp } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number };
    // The last second it is admitted, and the first it is not (the clock stopped at each, so
    // the time Python and hvac take to start does not move the boundary).
    try {
      vault.frozenAt = exp + 150 + 60;
      expect(await hvac({ op: 'login', addr: vault.url, role: 'deploy', jwt })).toMatchObject({ ok: true });
      vault.frozenAt = exp + 150 + 60 + 1;
      expect(await hvac({ op: 'login', addr: vault.url, role: 'deploy', jwt })).toEqual({ ok: false, error: 'InvalidRequest', errors: ['error validating token: token is expired (exp)'] });
    } finally {
      vault.frozenAt = undefined;
    }
  });

  test('agent vault-login prints VAULT_ADDR and VAULT_TOKEN for eval; hvac uses the token; vault-revoke ends it', async () => {
    const env = await lab.buildEnv('ci-main', MAIN);
    const login = await runAgent(['vault-login', '--vault-addr', vault.url, '--role', 'deploy'], env);
    expect(login.stderr).toBe(`jenkins-oidc-agent: logged in to Vault at ${vault.url} as role deploy (policies default, app-read; valid 900 s)\n`);
    expect(login.code).toBe(0);
    const match = /^export VAULT_ADDR=(\S+)\nexport VAULT_TOKEN=(hvs\.[A-Za-z0-9_-]+)\n$/.exec(login.stdout);
    expect(match?.[1]).toBe(vault.url);
    const token = match![2]!;
    expect(await hvac({ op: 'lookup-self', addr: vault.url, token })).toEqual({
      ok: true, policies: ['default', 'app-read'], meta: { job: 'team/app/main', build_number: '42', jenkins_instance: 'ci-main', role: 'deploy' },
    });
    const revoke = await runAgent(['vault-revoke', '--vault-addr', vault.url], { ...env, VAULT_TOKEN: token });
    expect(revoke).toEqual({ code: 0, stdout: '', stderr: `jenkins-oidc-agent: revoked the Vault token at ${vault.url}\n` });
    expect(await hvac({ op: 'lookup-self', addr: vault.url, token })).toEqual({ ok: false, error: 'Forbidden', errors: ['permission denied'] });
    const again = await runAgent(['vault-revoke', '--vault-addr', vault.url], { ...env, VAULT_TOKEN: token });
    expect(again).toEqual({ code: 0, stdout: '', stderr: `jenkins-oidc-agent: Vault at ${vault.url} no longer knew the token (expired or already revoked)\n` });
  });

  test('agent vault-login --out writes the token to a 0600 file and prints only VAULT_ADDR; vault-revoke --token-file removes it', async () => {
    const env = await lab.buildEnv('ci-main', MAIN);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'jo-vault-')), 'vault-token');
    const login = await runAgent(['vault-login', '--role', 'deploy', '--out', file], { ...env, VAULT_ADDR: vault.url });
    expect(login.code).toBe(0);
    expect(login.stdout).toBe(`export VAULT_ADDR=${vault.url}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8');
    expect(login.stderr).not.toContain(token);
    expect(await hvac({ op: 'lookup-self', addr: vault.url, token })).toMatchObject({ ok: true, policies: ['default', 'app-read'] });
    const revoke = await runAgent(['vault-revoke', '--token-file', file], { ...env, VAULT_ADDR: vault.url });
    expect(revoke.code).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(await hvac({ op: 'lookup-self', addr: vault.url, token })).toEqual({ ok: false, error: 'Forbidden', errors: ['permission denied'] });
  });

  test("agent vault-login for another job: exit 1 with Vault's words beside the token's iss, aud, sub", async () => {
    const env = await lab.buildEnv('ci-main', { job: 'team/other/main', build_url: 'https://jenkins.example.com/job/team/job/other/job/main/7/', build_number: '7' });
    const res = await runAgent(['vault-login', '--vault-addr', vault.url, '--role', 'deploy'], env);
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        'jenkins-oidc-agent: Vault refused the login to role deploy at auth/jwt: error validating claims: claim "job" does not match any associated bound claim values',
        '  The ID token carried:',
        `    iss  ${lab.issuer}`,
        '    aud  vault',
        '    sub  jenkins_instance:ci-main:job:team/other/main',
        '    job  team/other/main   jenkins_instance ci-main   build_number "7"',
        "  What it means: role deploy's bound_claims do not admit this build (another job, branch or controller); see: vault read auth/jwt/role/deploy",
        '',
      ].join('\n'),
    });
  });

  test('agent vault-login refuses a plain-http Vault off this machine before any token is fetched', async () => {
    const env = await lab.buildEnv('ci-main', MAIN);
    const res = await runAgent(['vault-login', '--vault-addr', 'http://vault.example.com:8200', '--role', 'deploy'], env);
    expect(res).toEqual({ code: 2, stdout: '', stderr: 'jenkins-oidc-agent: --vault-addr must be https (the tokens would cross the network in clear), got http://vault.example.com:8200\n' });
  });
});
