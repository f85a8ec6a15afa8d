// The agent's commands: each takes typed options and returns what to print
// (stdout) and notes (stderr). main.ts parses flags and prints.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentError, usage } from './errors.js';
import { decodeClaims, fetchIdToken, readRequestCredentials, type RequestCredentials, type TokenClaims, RequestTokenRefused } from './id-token.js';
import { quoteCommandArg, quoteShell, writePrivateFile } from './files.js';
import { exportLines, renderCredentials, type Format } from './output.js';
import type { RetryOptions } from './retry.js';
import { AZURE_AUTHORITY_HOST, checkAuthorityHost, checkClientId, checkTenantId, verifyFederatedLogin } from './azure.js';
import { credentialFile, executableResponse, parseProvider } from './gcp.js';
import { checkExecInfo, checkServer, execCredential, kubeconfig } from './kubernetes.js';
import { checkMountPath as checkVaultMountPath, checkRoleName, checkVaultAddr, vaultLogin, vaultRevokeSelf, type VaultTarget } from './vault.js';
import { assumeChainedRole, assumeRoleWithWebIdentity, checkAllowedAccount, checkSessionName, defaultSessionName, parseRoleArn, type AssumedRole } from './sts.js';

export interface Result {
  stdout: string;
  notes: string[];
}

export interface Context {
  env: NodeJS.ProcessEnv;
  retry: RetryOptions;
  /** The node binary and this script, to run the agent again (credential_process, --refresh). */
  self: { node: string; script: string };
}

function creds(ctx: Context): RequestCredentials {
  return readRequestCredentials(ctx.env);
}

// ---- token, claims ---------------------------------------------------------

export interface TokenOptions {
  audience?: string;
  out?: string;
  json?: boolean;
}

export async function token(ctx: Context, o: TokenOptions): Promise<Result> {
  const jwt = await fetchIdToken(creds(ctx), o.audience, ctx.retry);
  if (o.out) {
    writePrivateFile(o.out, jwt);
    const out = path.resolve(o.out);
    return { stdout: o.json ? `${JSON.stringify({ file: out, claims: decodeClaims(jwt) }, null, 2)}\n` : '', notes: [`wrote the ID token to ${out} (mode 0600)`] };
  }
  return { stdout: o.json ? `${JSON.stringify({ value: jwt, claims: decodeClaims(jwt) }, null, 2)}\n` : `${jwt}\n`, notes: [] };
}

export async function claims(ctx: Context, o: { audience?: string }): Promise<Result> {
  const jwt = await fetchIdToken(creds(ctx), o.audience, ctx.retry);
  return { stdout: `${JSON.stringify(decodeClaims(jwt), null, 2)}\n`, notes: [] };
}

// ---- assume-role -------------------------------------------------------------

export interface AssumeRoleOptions {
  roleArn: string;
  region?: string;
  sessionName?: string;
  durationSeconds: number;
  audience: string;
  stsEndpoint?: string;
  allowedAccountIds?: string[];
  format: Format;
  out?: string;
  tokenFile?: string;
  refresh?: boolean;
  refreshInterval?: number;
  verify: boolean;
  /** Further roles, each assumed with the previous session's credentials (role chaining). */
  chainRoleArns?: string[];
}

function region(ctx: Context, o: { region?: string }): string {
  const value = o.region ?? (ctx.env.AWS_REGION || undefined) ?? (ctx.env.AWS_DEFAULT_REGION || undefined) ?? 'us-east-1';
  // Checked here: a malformed region otherwise surfaces as an SDK error far from its cause.
  if (!/^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(value)) throw usage(`--region must be an AWS region such as eu-west-1, got "${value}"`);
  return value;
}

function stsEndpoint(ctx: Context, o: { stsEndpoint?: string }): string | undefined {
  const value = o.stsEndpoint ?? ctx.env.AWS_ENDPOINT_URL_STS ?? ctx.env.AWS_ENDPOINT_URL;
  if (value === undefined || value === '') return undefined;
  try {
    new URL(value);
  } catch {
    throw usage(`--sts-endpoint must be a URL such as https://sts.eu-west-1.amazonaws.com, got "${value}"`);
  }
  return value;
}

/**
 * A per-build folder for files the agent writes: the build's temporary folder
 * when Jenkins gives one. Otherwise a folder of this user's own under the
 * shared temporary folder, refused unless it is a real folder that only this
 * user can enter: another user who made it first could plant a config file
 * whose credential_process the build's SDK would run.
 */
function buildFolder(ctx: Context, requestToken: string): string {
  const id = createHash('sha256').update(requestToken).digest('hex').slice(0, 16);
  if (ctx.env.WORKSPACE_TMP) return path.join(ctx.env.WORKSPACE_TMP, 'jenkins-oidc-agent', id);
  const uid = process.getuid?.();
  const base = path.join(os.tmpdir(), uid === undefined ? 'jenkins-oidc-agent' : `jenkins-oidc-agent-${uid}`);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const st = lstatSync(base);
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw usage(`${base} is not a private folder of this user (a link, another owner, or open to others); remove it, or set WORKSPACE_TMP`);
  }
  return path.join(base, id);
}

interface Assumption {
  assumed: AssumedRole;
  jwt: string;
  claims: TokenClaims;
  sessionName: string;
  region: string;
}

async function assume(ctx: Context, o: AssumeRoleOptions, request: RequestCredentials): Promise<Assumption> {
  const role = parseRoleArn(o.roleArn);
  checkAllowedAccount(role.account, o.allowedAccountIds, `role ${role.arn}`);
  const jwt = await fetchIdToken(request, o.audience, ctx.retry);
  const claims = decodeClaims(jwt);
  const sessionName = o.sessionName ?? defaultSessionName(claims);
  const r = region(ctx, o);
  const assumed = await assumeRoleWithWebIdentity({
    role,
    webIdentityToken: jwt,
    claims,
    sessionName,
    durationSeconds: o.durationSeconds,
    region: r,
    endpoint: stsEndpoint(ctx, o),
    retry: ctx.retry,
  });
  // STS names the account it actually issued credentials in; check that one too.
  const account = /^arn:[^:]+:sts::(\d{12}):/.exec(assumed.assumedRoleUser.Arn)?.[1];
  if (account) checkAllowedAccount(account, o.allowedAccountIds, `the assumed role ${assumed.assumedRoleUser.Arn}`);
  let last = assumed;
  for (const arn of o.chainRoleArns ?? []) {
    const next = parseRoleArn(arn);
    checkAllowedAccount(next.account, o.allowedAccountIds, `chained role ${next.arn}`);
    last = await assumeChainedRole({ role: next, from: last, sessionName, durationSeconds: o.durationSeconds, region: r, endpoint: stsEndpoint(ctx, o), retry: ctx.retry });
    const chainedAccount = /^arn:[^:]+:sts::(\d{12}):/.exec(last.assumedRoleUser.Arn)?.[1];
    if (chainedAccount) checkAllowedAccount(chainedAccount, o.allowedAccountIds, `the assumed role ${last.assumedRoleUser.Arn}`);
  }
  return { assumed: last, jwt, claims, sessionName, region: r };
}

export async function assumeRole(ctx: Context, o: AssumeRoleOptions): Promise<Result> {
  if (o.sessionName !== undefined) checkSessionName(o.sessionName);
  if (o.refresh && o.format !== 'web-identity') throw usage('--refresh works with --format web-identity (the other formats hand out credentials that the caller refreshes)');
  for (const arn of o.chainRoleArns ?? []) parseRoleArn(arn);
  if (o.chainRoleArns?.length && o.format === 'web-identity') {
    throw usage('--chain-role-arn cannot work with --format web-identity: the SDKs assume only the first role from a token file', [
      'For a long build, let the SDKs run the agent whenever they need credentials: jenkins-oidc-agent aws-config --role-arn ARN --chain-role-arn ARN2',
    ]);
  }
  const request = creds(ctx);
  if (o.format === 'web-identity') return webIdentity(ctx, o, request);
  const { assumed, region: r } = await assume(ctx, o, request);
  const text = renderCredentials(o.format, assumed, r);
  if (o.out) {
    writePrivateFile(o.out, text);
    return { stdout: '', notes: [`wrote credentials for ${assumed.assumedRoleUser.Arn} to ${path.resolve(o.out)} (mode 0600), valid until ${assumed.credentials.Expiration}`] };
  }
  return { stdout: text, notes: [] };
}

async function webIdentity(ctx: Context, o: AssumeRoleOptions, request: RequestCredentials): Promise<Result> {
  const role = parseRoleArn(o.roleArn);
  checkAllowedAccount(role.account, o.allowedAccountIds, `role ${role.arn}`);
  const file = path.resolve(o.tokenFile ?? path.join(buildFolder(ctx, request.token), `web-identity-token-${createHash('sha256').update(`${role.arn} ${o.audience}`).digest('hex').slice(0, 8)}`));
  let jwt: string;
  let sessionName: string;
  const notes: string[] = [];
  if (o.verify) {
    // One real call now, so a trust-policy mismatch fails here with the
    // explanation, not later inside whichever tool first needs credentials.
    const a = await assume(ctx, o, request);
    jwt = a.jwt;
    sessionName = a.sessionName;
    notes.push(`verified: AWS STS admits this build to ${a.assumed.assumedRoleUser.Arn}`);
  } else {
    jwt = await fetchIdToken(request, o.audience, ctx.retry);
    sessionName = o.sessionName ?? defaultSessionName(decodeClaims(jwt));
  }
  writePrivateFile(file, jwt);
  const vars: [string, string][] = [
    ['AWS_ROLE_ARN', role.arn],
    ['AWS_WEB_IDENTITY_TOKEN_FILE', file],
    ['AWS_ROLE_SESSION_NAME', sessionName],
    ['AWS_REGION', region(ctx, o)],
    ['AWS_DEFAULT_REGION', region(ctx, o)],
  ];
  const endpoint = o.stsEndpoint ? stsEndpoint(ctx, o) : undefined;
  if (endpoint) vars.push(['AWS_ENDPOINT_URL_STS', endpoint]);
  if (o.refresh) {
    const args = [ctx.self.script, '__refresh', '--token-file', file, '--audience', o.audience];
    if (o.refreshInterval !== undefined) args.push('--refresh-interval', String(o.refreshInterval));
    const child = spawn(ctx.self.node, args, { detached: true, stdio: 'ignore', env: ctx.env });
    child.unref();
    notes.push(
      `keeping ${file} fresh in the background (pid ${child.pid}) until the request token stops working, the file is removed, or the build step ends`,
    );
  }
  return { stdout: exportLines(vars), notes };
}

// ---- the background refresher ----------------------------------------------------

export interface RefreshOptions {
  tokenFile: string;
  audience: string;
  refreshInterval?: number;
}

/** How often a sleeping refresher checks that its file is still there. */
const FILE_CHECK_MS = 2000;

/** How long to keep trying while the token service does not answer, past the last token's expiry. */
const GIVE_UP_AFTER_EXPIRY_S = 600;

function nextRefreshSeconds(jwt: string | undefined, fixed: number | undefined): number {
  if (fixed !== undefined) return fixed;
  const { exp } = jwt ? decodeClaims(jwt) : {};
  if (typeof exp !== 'number') return 30;
  // Half the remaining lifetime: a reader always finds a token with at least that much left.
  return Math.max(5, Math.min(600, Math.floor((exp - Date.now() / 1000) / 2)));
}

/**
 * Runs detached from the build step: rewrites the token file before the token
 * in it expires. Stops when the file disappears (the build cleaned up), when
 * the token service refuses the request token (build over: revoked or
 * expired; the file is removed then), or after the service has been
 * unreachable for ten minutes past the last token's expiry.
 */
export async function refreshLoop(ctx: Context, o: RefreshOptions): Promise<void> {
  const request = creds(ctx);
  let current: string | undefined;
  try {
    current = readFileSync(o.tokenFile, 'utf8');
  } catch {
    return;
  }
  let wait = nextRefreshSeconds(current, o.refreshInterval);
  for (;;) {
    // Woken every few seconds to look for the file: a block that ended (its
    // folder deleted) stops the refresher within seconds, not at the next
    // refresh, which can be minutes away.
    const until = Date.now() + wait * 1000;
    while (Date.now() < until && existsSync(o.tokenFile)) await new Promise((resolve) => setTimeout(resolve, Math.min(FILE_CHECK_MS, until - Date.now())));
    if (!existsSync(o.tokenFile)) return;
    try {
      current = await fetchIdToken(request, o.audience, { ...ctx.retry, maxAttempts: 3 });
      if (!existsSync(o.tokenFile)) return;
      writePrivateFile(o.tokenFile, current, { createDirs: false, replaceOnly: true });
      wait = nextRefreshSeconds(current, o.refreshInterval);
    } catch (err) {
      // The build removed the folder between the check and the write: done.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      // Only a dead request token ends the refresher; a proxy's 403 or a
      // garbled answer is treated like an outage, until the give-up time.
      if (err instanceof RequestTokenRefused) {
        rmSync(o.tokenFile, { force: true });
        return;
      }
      const exp = current ? decodeClaims(current).exp : undefined;
      if (typeof exp === 'number' && Date.now() / 1000 > exp + GIVE_UP_AFTER_EXPIRY_S) return;
      wait = Math.min(30, o.refreshInterval ?? 30);
    }
  }
}

// ---- aws-config ------------------------------------------------------------------

export interface AwsConfigOptions extends Omit<AssumeRoleOptions, 'format' | 'out' | 'tokenFile' | 'refresh' | 'refreshInterval'> {
  profile: string;
  configFile?: string;
  retryMaxAttempts?: number;
  json?: boolean;
}

/** Replaces (or appends) one profile section of an AWS config file, keeping the rest as it was. */
export function setProfileSection(existing: string, profile: string, lines: string[]): string {
  const header = profile === 'default' ? '[default]' : `[profile ${profile}]`;
  const out: string[] = [];
  let skipping = false;
  for (const line of existing.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('[')) skipping = trimmed.replace(/\s+/g, ' ') === header;
    if (!skipping) out.push(line);
  }
  while (out.length && out[out.length - 1]!.trim() === '') out.pop();
  return `${out.length ? `${out.join('\n')}\n\n` : ''}${header}\n${lines.join('\n')}\n`;
}

export async function awsConfig(ctx: Context, o: AwsConfigOptions): Promise<Result> {
  if (!/^[A-Za-z0-9_.+=,@-]{1,64}$/.test(o.profile)) throw usage(`--profile must be a simple name such as jenkins-oidc, got "${o.profile}"`);
  if (o.sessionName !== undefined) checkSessionName(o.sessionName);
  const role = parseRoleArn(o.roleArn);
  const request = creds(ctx);
  const r = region(ctx, o);
  const endpoint = o.stsEndpoint ? stsEndpoint(ctx, o) : undefined;
  const notes: string[] = [];
  if (o.verify) {
    const a = await assume(ctx, { ...o, format: 'credential-process' }, request);
    notes.push(`verified: AWS STS admits this build to ${a.assumed.assumedRoleUser.Arn}`);
  }
  const args = [ctx.self.node, ctx.self.script, 'assume-role', '--format', 'credential-process', '--role-arn', role.arn, '--region', r, '--audience', o.audience, '--duration-seconds', String(o.durationSeconds)];
  if (o.sessionName) args.push('--session-name', o.sessionName);
  if (endpoint) args.push('--sts-endpoint', endpoint);
  if (o.allowedAccountIds?.length) args.push('--allowed-account-ids', o.allowedAccountIds.join(','));
  for (const arn of o.chainRoleArns ?? []) args.push('--chain-role-arn', parseRoleArn(arn).arn);
  if (o.retryMaxAttempts !== undefined) args.push('--retry-max-attempts', String(o.retryMaxAttempts));
  // The profile holds no secret: the agent it runs reads the build request
  // token from the environment of whichever process asks for credentials.
  const configFile = path.resolve(o.configFile ?? ctx.env.AWS_CONFIG_FILE ?? path.join(buildFolder(ctx, request.token), 'aws-config'));
  let existing = '';
  try {
    existing = readFileSync(configFile, 'utf8');
  } catch {
    // a new file
  }
  writePrivateFile(configFile, setProfileSection(existing, o.profile, [`credential_process = ${args.map(quoteCommandArg).join(' ')}`, `region = ${r}`]));
  notes.push(`wrote profile ${o.profile} to ${configFile}: AWS SDKs and the AWS CLI now refresh credentials themselves while the request token lives`);
  const stdout = o.json
    ? `${JSON.stringify({ AWS_CONFIG_FILE: configFile, AWS_PROFILE: o.profile }, null, 2)}\n`
    : exportLines([
        ['AWS_CONFIG_FILE', configFile],
        ['AWS_PROFILE', o.profile],
      ]);
  return { stdout, notes };
}

// ---- vault-login, vault-revoke -------------------------------------------------

export interface VaultLoginOptions {
  vaultAddr?: string;
  namespace?: string;
  path: string;
  role: string;
  audience: string;
  out?: string;
  json?: boolean;
}

function vaultTarget(ctx: Context, o: { vaultAddr?: string; namespace?: string }): VaultTarget {
  const namespace = o.namespace ?? (ctx.env.VAULT_NAMESPACE || undefined);
  if (namespace !== undefined && !/^[A-Za-z0-9_.\/-]{1,255}$/.test(namespace)) throw usage(`--namespace must be a Vault namespace path such as team/ci, got "${namespace}"`);
  return { addr: checkVaultAddr(o.vaultAddr ?? (ctx.env.VAULT_ADDR || undefined)), namespace };
}

export async function vaultLoginCommand(ctx: Context, o: VaultLoginOptions): Promise<Result> {
  const target = vaultTarget(ctx, o);
  const path_ = checkVaultMountPath(o.path);
  const role = checkRoleName(o.role);
  const jwt = await fetchIdToken(creds(ctx), o.audience, ctx.retry);
  const login = await vaultLogin(target, { path: path_, role, jwt, claims: decodeClaims(jwt), retry: ctx.retry });
  const summary = `logged in to Vault at ${target.addr} as role ${role} (policies ${login.policies.join(', ')}; valid ${login.leaseDuration} s)`;
  const vars: [string, string][] = [['VAULT_ADDR', target.addr]];
  if (target.namespace) vars.push(['VAULT_NAMESPACE', target.namespace]);
  if (o.out) {
    writePrivateFile(o.out, login.token);
    const file = path.resolve(o.out);
    if (o.json) return { stdout: `${JSON.stringify({ file, lease_duration: login.leaseDuration, policies: login.policies, metadata: login.metadata }, null, 2)}\n`, notes: [summary] };
    return { stdout: exportLines(vars), notes: [`${summary}; wrote the Vault token to ${file} (mode 0600); revoke it at the end: jenkins-oidc-agent vault-revoke --token-file ${quoteShell(file)}`] };
  }
  if (o.json) return { stdout: `${JSON.stringify({ client_token: login.token, lease_duration: login.leaseDuration, policies: login.policies, metadata: login.metadata }, null, 2)}\n`, notes: [summary] };
  return { stdout: exportLines([...vars, ['VAULT_TOKEN', login.token]]), notes: [summary] };
}

export async function vaultRevokeCommand(ctx: Context, o: { vaultAddr?: string; namespace?: string; tokenFile?: string }): Promise<Result> {
  const target = vaultTarget(ctx, o);
  let token: string | undefined;
  if (o.tokenFile) {
    try {
      token = readFileSync(o.tokenFile, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { stdout: '', notes: [`${o.tokenFile} does not exist: nothing to revoke`] };
      throw usage(`cannot read --token-file ${o.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    token = ctx.env.VAULT_TOKEN?.trim() || undefined;
  }
  if (!token) throw usage('no Vault token to revoke: give --token-file FILE or set VAULT_TOKEN');
  const revoked = await vaultRevokeSelf(target, token, ctx.retry);
  if (o.tokenFile) rmSync(o.tokenFile, { force: true });
  return { stdout: '', notes: [revoked ? `revoked the Vault token at ${target.addr}` : `Vault at ${target.addr} no longer knew the token (expired or already revoked)`] };
}

// ---- kube-credential, kubeconfig --------------------------------------------------

export async function kubeCredential(ctx: Context, o: { audience: string }): Promise<Result> {
  checkExecInfo(ctx.env.KUBERNETES_EXEC_INFO);
  const jwt = await fetchIdToken(creds(ctx), o.audience, ctx.retry);
  return { stdout: execCredential(jwt, decodeClaims(jwt)), notes: [] };
}

export async function kubeconfigCommand(ctx: Context, o: { server: string; certificateAuthority?: string; audience: string; out?: string }): Promise<Result> {
  const server = checkServer(o.server);
  let caData: string | undefined;
  if (o.certificateAuthority) {
    try {
      caData = readFileSync(o.certificateAuthority).toString('base64');
    } catch (err) {
      throw usage(`cannot read --certificate-authority ${o.certificateAuthority}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const request = creds(ctx);
  const file = path.resolve(o.out ?? path.join(buildFolder(ctx, request.token), 'kubeconfig'));
  writePrivateFile(file, kubeconfig({ server, certificateAuthorityData: caData, node: ctx.self.node, script: ctx.self.script, audience: o.audience }));
  return { stdout: exportLines([['KUBECONFIG', file]]), notes: [`wrote ${file}: kubectl runs this agent for a fresh ID token (audience ${o.audience}) whenever it needs one`] };
}

// ---- gcp-config, gcp-credential ---------------------------------------------------

export async function gcpCredential(ctx: Context, o: { audience: string }): Promise<Result> {
  const jwt = await fetchIdToken(creds(ctx), o.audience, ctx.retry);
  return { stdout: executableResponse(jwt, decodeClaims(jwt)), notes: [] };
}

export async function gcpConfig(ctx: Context, o: { provider: string; audience?: string; serviceAccount?: string; tokenUrl?: string; tokenInfoUrl?: string; out?: string }): Promise<Result> {
  const provider = parseProvider(o.provider);
  const audience = o.audience ?? provider.tokenAudience;
  const request = creds(ctx);
  const file = path.resolve(o.out ?? path.join(buildFolder(ctx, request.token), 'gcp-credentials.json'));
  writePrivateFile(file, credentialFile({ provider, audience, node: ctx.self.node, script: ctx.self.script, serviceAccount: o.serviceAccount, tokenUrl: o.tokenUrl, tokenInfoUrl: o.tokenInfoUrl }));
  return {
    stdout: exportLines([
      ['GOOGLE_APPLICATION_CREDENTIALS', file],
      ['CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', file],
      ['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES', '1'],
    ]),
    notes: [`wrote ${file}: Google's libraries and gcloud run this agent for a fresh ID token (audience ${audience}) whenever they need one`],
  };
}

// ---- azure-credentials -------------------------------------------------------------

export interface AzureCredentialsOptions {
  clientId: string;
  tenantId: string;
  audience: string;
  authorityHost?: string;
  tokenFile?: string;
  refresh?: boolean;
  refreshInterval?: number;
  verify: boolean;
  json?: boolean;
}

export async function azureCredentials(ctx: Context, o: AzureCredentialsOptions): Promise<Result> {
  const clientId = checkClientId(o.clientId);
  const tenantId = checkTenantId(o.tenantId);
  const authorityHost = o.authorityHost ?? (ctx.env.AZURE_AUTHORITY_HOST || undefined);
  const authority = checkAuthorityHost(authorityHost ?? AZURE_AUTHORITY_HOST);
  const request = creds(ctx);
  const file = path.resolve(o.tokenFile ?? path.join(buildFolder(ctx, request.token), `azure-federated-token-${createHash('sha256').update(`${tenantId} ${clientId} ${o.audience}`).digest('hex').slice(0, 8)}`));
  const jwt = await fetchIdToken(request, o.audience, ctx.retry);
  const notes: string[] = [];
  if (o.verify) {
    await verifyFederatedLogin({ authorityHost: authority, tenantId, clientId, jwt, claims: decodeClaims(jwt), retry: ctx.retry });
    notes.push(`verified: Microsoft Entra signs this build in as app ${clientId} in tenant ${tenantId}`);
  }
  writePrivateFile(file, jwt);
  const vars: [string, string][] = [
    ['AZURE_CLIENT_ID', clientId],
    ['AZURE_TENANT_ID', tenantId],
    ['AZURE_FEDERATED_TOKEN_FILE', file],
  ];
  // Only when chosen: the SDKs' default is the public cloud.
  if (authorityHost) vars.push(['AZURE_AUTHORITY_HOST', authority]);
  if (o.refresh) {
    const args = [ctx.self.script, '__refresh', '--token-file', file, '--audience', o.audience];
    if (o.refreshInterval !== undefined) args.push('--refresh-interval', String(o.refreshInterval));
    const child = spawn(ctx.self.node, args, { detached: true, stdio: 'ignore', env: ctx.env });
    child.unref();
    notes.push(`keeping ${file} fresh in the background (pid ${child.pid}) until the request token stops working, the file is removed, or the build step ends`);
  }
  return { stdout: o.json ? `${JSON.stringify(Object.fromEntries(vars), null, 2)}\n` : exportLines(vars), notes };
}
