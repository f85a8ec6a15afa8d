// jenkins-oidc-agent azure-credentials without Entra: what it writes and
// prints for the Azure SDKs and az (a 0600 token file for Entra's audience,
// the three variables), the background refresher keeping that file fresh,
// its usage refusals and retries. Entra's own answers (the verification and
// its refusal explanations, az login) are in azure.test.ts.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runAgent } from '../helpers/agent.js';
import { startAwsLab, type AwsLab } from '../helpers/aws-lab.js';
import { decodeJwt } from '../helpers/service.js';
import { processGone, waitFor } from '../helpers/wait.js';

const CLIENT_ID = '0b1c2d3e-4f50-4617-8899-aabbccddeeff';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AUD = 'api://AzureADTokenExchange';
let lab: AwsLab;
let env: Record<string, string>;
const refreshers: number[] = [];

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main', audiences: [AUD], subTemplate: '{jenkins_instance}:{job}' });
  env = await lab.buildEnv('ci-main', { job: 'team/app/main', build_url: 'https://jenkins.example.com/job/team/job/app/job/main/7/' });
}, 120_000);
afterAll(async () => {
  for (const pid of refreshers) {
    try {
      process.kill(pid);
    } catch {
      // already gone
    }
  }
  await lab?.stop();
});

test('--no-verify: a 0600 token file for api://AzureADTokenExchange with the build\'s sub, and the three variables for eval', async () => {
  const res = await runAgent(['azure-credentials', '--client-id', CLIENT_ID.toUpperCase(), '--tenant-id', TENANT_ID, '--no-verify'], env);
  expect(res.code).toBe(0);
  expect(res.stderr).toBe('');
  const file = /^export AZURE_FEDERATED_TOKEN_FILE=(.*)$/m.exec(res.stdout)![1]!;
  expect(res.stdout).toBe(`export AZURE_CLIENT_ID=${CLIENT_ID}\nexport AZURE_TENANT_ID=${TENANT_ID}\nexport AZURE_FEDERATED_TOKEN_FILE=${file}\n`);
  expect(file.startsWith(path.join(env.WORKSPACE_TMP!, 'jenkins-oidc-agent'))).toBe(true);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(decodeJwt(readFileSync(file, 'utf8')).payload).toMatchObject({ iss: lab.issuer, aud: AUD, sub: 'ci-main:team/app/main' });
  // The token is in the file only, never on stdout.
  expect(res.stdout).not.toMatch(/eyJ/);
});

test('--json and --authority-host: the same variables as JSON, with AZURE_AUTHORITY_HOST', async () => {
  const file = path.join(env.WORKSPACE_TMP!, 'azure-token');
  const res = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', 'contoso.onmicrosoft.com', '--token-file', file, '--authority-host', 'https://login.microsoftonline.us/', '--no-verify', '--json'], env);
  expect(res.code).toBe(0);
  expect(JSON.parse(res.stdout)).toEqual({ AZURE_CLIENT_ID: CLIENT_ID, AZURE_TENANT_ID: 'contoso.onmicrosoft.com', AZURE_FEDERATED_TOKEN_FILE: file, AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' });
  expect(statSync(file).mode & 0o777).toBe(0o600);
});

test('--refresh keeps the token file fresh until the file is removed', async () => {
  const file = path.join(env.WORKSPACE_TMP!, 'azure-refreshed');
  const res = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, '--token-file', file, '--refresh', '--refresh-interval', '1', '--no-verify'], env);
  expect(res.code).toBe(0);
  const pid = Number(/\(pid (\d+)\)/.exec(res.stderr)![1]);
  refreshers.push(pid);
  expect(res.stderr).toBe(`jenkins-oidc-agent: keeping ${file} fresh in the background (pid ${pid}) until the request token stops working, the file is removed, or the build step ends\n`);
  const first = decodeJwt(readFileSync(file, 'utf8')).payload;
  await waitFor('a new token in the file', () => decodeJwt(readFileSync(file, 'utf8')).payload.jti !== first.jti);
  expect(decodeJwt(readFileSync(file, 'utf8')).payload).toMatchObject({ aud: AUD, sub: 'ci-main:team/app/main' });
  expect(statSync(file).mode & 0o777).toBe(0o600);
  rmSync(file);
  await waitFor('the refresher to exit', () => processGone(pid));
  expect(existsSync(file)).toBe(false);
});

test.each<[string, string[], string]>([
  ['no --client-id', ['--tenant-id', TENANT_ID], 'jenkins-oidc-agent: azure-credentials needs --client-id\n  See: jenkins-oidc-agent help azure-credentials\n'],
  ['a client ID that is not a GUID', ['--client-id', 'my-app', '--tenant-id', TENANT_ID], 'jenkins-oidc-agent: --client-id must be the app registration\'s application (client) ID, a GUID, got "my-app"\n'],
  ['a tenant that is neither a GUID nor a domain', ['--client-id', CLIENT_ID, '--tenant-id', 'contoso'], 'jenkins-oidc-agent: --tenant-id must be the directory (tenant) ID or a domain of it, got "contoso"\n'],
  ['an http authority', ['--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, '--authority-host', 'http://login.example.com'], 'jenkins-oidc-agent: --authority-host must be https, got http://login.example.com\n'],
])('usage refused: %s (exit 2)', async (_name, args, stderr) => {
  const res = await runAgent(['azure-credentials', ...args], env);
  expect({ code: res.code, stdout: res.stdout, stderr: res.stderr }).toEqual({ code: 2, stdout: '', stderr });
});

test('Entra not answering: retried, then exit 3 and no file written', async () => {
  // A port that refuses connections: bound, then closed.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const file = path.join(env.WORKSPACE_TMP!, 'azure-unreached');
  const res = await runAgent(['azure-credentials', '--client-id', CLIENT_ID, '--tenant-id', TENANT_ID, '--token-file', file, '--authority-host', `https://127.0.0.1:${port}`, '--retry-max-attempts', '2', '--retry-base-delay-ms', '1'], env);
  expect(res.code).toBe(3);
  expect(res.stdout).toBe('');
  expect(res.stderr).toMatch(/^jenkins-oidc-agent: ECONNREFUSED; retrying in 0\.0 s \(attempt 2 of 2\)\njenkins-oidc-agent: Microsoft Entra at https:\/\/127\.0\.0\.1:\d+ did not answer after 2 attempt\(s\): ECONNREFUSED\n$/);
  expect(existsSync(file)).toBe(false);
});

test('--help and the command list', async () => {
  const help = await runAgent(['azure-credentials', '--help'], {});
  expect(help.code).toBe(0);
  expect(help.stdout.split('\n')[0]).toBe('Usage: jenkins-oidc-agent azure-credentials --client-id ID --tenant-id TENANT [options]');
  expect(help.stdout).toContain('az login --service-principal -u "$AZURE_CLIENT_ID" -t "$AZURE_TENANT_ID" --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")"');
  const main = await runAgent(['help'], {});
  expect(main.stdout).toContain('  azure-credentials  write the ID token to a 0600 file kept fresh');
});
