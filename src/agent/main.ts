// jenkins-oidc-agent: the build-side CLI. Bundled by `npm run build` into one
// file with no runtime dependencies (dist/agent/jenkins-oidc-agent.mjs, the
// AWS SDK included) that runs on Node 18 or later, and served by the token
// service at /agent/jenkins-oidc-agent.mjs with its SHA-256 beside it.
//
// It imports nothing from the server side: no oidc-provider, Prisma or Koa.
// This file parses flags, prints, and alone sets the exit code.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { assumeRole, awsConfig, claims, refreshLoop, token, vaultLoginCommand, vaultRevokeCommand, kubeCredential, kubeconfigCommand, gcpConfig, gcpCredential, azureCredentials, type Context, type Result } from './commands.js';
import { AZURE_AUDIENCE } from './azure.js';
import { AgentError, EXIT, usage } from './errors.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { FORMATS, type Format } from './output.js';

// The bundled SDK warns once on Node 18 that its future releases will not
// support it. This bundle pins an SDK release that does, so the warning is
// noise in every build log on such agents; only that one is dropped.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
  if (typeof warning === 'string' && warning.startsWith('NodeDeprecationWarning: The AWS SDK for JavaScript (v3) will')) return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

declare const __AGENT_VERSION__: string;
const VERSION = typeof __AGENT_VERSION__ === 'string' ? __AGENT_VERSION__ : 'dev';

const DEFAULT_AUDIENCE = 'sts.amazonaws.com';

type Options = NonNullable<ParseArgsConfig['options']>;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;

const COMMON: Options = { help: { type: 'boolean', short: 'h' }, 'retry-max-attempts': str, 'retry-base-delay-ms': str };
const AWS: Options = {
  'role-arn': str,
  region: str,
  audience: str,
  'session-name': str,
  'duration-seconds': str,
  'sts-endpoint': str,
  'allowed-account-ids': { type: 'string', multiple: true },
  'no-verify': bool,
  'chain-role-arn': { type: 'string', multiple: true },
};
const OPTIONS: Record<string, Options> = {
  token: { ...COMMON, audience: str, out: str, json: bool },
  claims: { ...COMMON, audience: str },
  'assume-role': { ...COMMON, ...AWS, format: str, out: str, 'token-file': str, refresh: bool, 'refresh-interval': str },
  'aws-config': { ...COMMON, ...AWS, profile: str, 'config-file': str, json: bool },
  'vault-login': { ...COMMON, 'vault-addr': str, namespace: str, path: str, role: str, audience: str, out: str, json: bool },
  'vault-revoke': { ...COMMON, 'vault-addr': str, namespace: str, 'token-file': str },
  'kube-credential': { ...COMMON, audience: str },
  kubeconfig: { ...COMMON, server: str, 'certificate-authority': str, audience: str, out: str },
  'gcp-config': { ...COMMON, provider: str, audience: str, 'service-account': str, 'token-url': str, 'token-info-url': str, out: str },
  'gcp-credential': { ...COMMON, audience: str },
  'azure-credentials': { ...COMMON, 'client-id': str, 'tenant-id': str, audience: str, 'authority-host': str, 'token-file': str, refresh: bool, 'refresh-interval': str, 'no-verify': bool, json: bool },
  __refresh: { ...COMMON, 'token-file': str, audience: str, 'refresh-interval': str },
};

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

function int(values: Values, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw usage(`--${name} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
  }
  return Number(raw);
}

const s = (values: Values, name: string): string | undefined => values[name] as string | undefined;

function required(values: Values, name: string, command: string): string {
  const v = s(values, name);
  if (!v) throw usage(`${command} needs --${name}`, [`See: jenkins-oidc-agent help ${command}`]);
  return v;
}

function accountIds(values: Values): string[] | undefined {
  const raw = values['allowed-account-ids'] as string[] | undefined;
  if (!raw) return undefined;
  const ids = raw.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const id of ids) if (!/^\d{12}$/.test(id)) throw usage(`--allowed-account-ids takes 12-digit AWS account IDs, got "${id}"`);
  return ids;
}

function awsOptions(values: Values, command: string) {
  return {
    roleArn: required(values, 'role-arn', command),
    region: s(values, 'region'),
    sessionName: s(values, 'session-name'),
    durationSeconds: int(values, 'duration-seconds', 3600, 900, 43200),
    audience: s(values, 'audience') ?? DEFAULT_AUDIENCE,
    stsEndpoint: s(values, 'sts-endpoint'),
    allowedAccountIds: accountIds(values),
    verify: !values['no-verify'],
    chainRoleArns: values['chain-role-arn'] as string[] | undefined,
  };
}

async function run(argv: string[], ctx: Omit<Context, 'retry'>): Promise<Result | undefined> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? rest[0] : undefined;
    return { stdout: `${(topic && COMMAND_HELP[topic]) || MAIN_HELP}\n`, notes: [] };
  }
  if (command === 'version' || command === '--version') return { stdout: `${VERSION}\n`, notes: [] };
  const options = OPTIONS[command];
  if (!options) throw usage(`unknown command "${command}"`, ['Commands: token, claims, assume-role, aws-config, vault-login, vault-revoke, kubeconfig, kube-credential, gcp-config, gcp-credential, azure-credentials, version, help']);
  let values: Values;
  try {
    ({ values } = parseArgs({ args: rest, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw usage((err as Error).message, [`See: jenkins-oidc-agent help ${command}`]);
  }
  if (values.help) return { stdout: `${COMMAND_HELP[command] ?? MAIN_HELP}\n`, notes: [] };
  const full: Context = {
    ...ctx,
    retry: {
      maxAttempts: int(values, 'retry-max-attempts', 5, 1, 20),
      baseDelayMs: int(values, 'retry-base-delay-ms', 500, 1, 60_000),
      maxDelayMs: 20_000,
      onRetry: ({ attempt, maxAttempts, delayMs, reason }) =>
        process.stderr.write(`jenkins-oidc-agent: ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${maxAttempts})\n`),
    },
  };
  switch (command) {
    case 'token':
      return token(full, { audience: s(values, 'audience'), out: s(values, 'out'), json: Boolean(values.json) });
    case 'claims':
      return claims(full, { audience: s(values, 'audience') });
    case 'assume-role': {
      const format = (s(values, 'format') ?? 'env') as Format;
      if (!FORMATS.includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`);
      return assumeRole(full, {
        ...awsOptions(values, command),
        format,
        out: s(values, 'out'),
        tokenFile: s(values, 'token-file'),
        refresh: Boolean(values.refresh),
        refreshInterval: values['refresh-interval'] === undefined ? undefined : int(values, 'refresh-interval', 60, 1, 3600),
      });
    }
    case 'aws-config':
      return awsConfig(full, {
        ...awsOptions(values, command),
        profile: s(values, 'profile') ?? 'jenkins-oidc',
        configFile: s(values, 'config-file'),
        retryMaxAttempts: values['retry-max-attempts'] === undefined ? undefined : full.retry.maxAttempts,
        json: Boolean(values.json),
      });
    case 'vault-login':
      return vaultLoginCommand(full, {
        vaultAddr: s(values, 'vault-addr'),
        namespace: s(values, 'namespace'),
        path: s(values, 'path') ?? 'jwt',
        role: required(values, 'role', command),
        audience: s(values, 'audience') ?? 'vault',
        out: s(values, 'out'),
        json: Boolean(values.json),
      });
    case 'vault-revoke':
      return vaultRevokeCommand(full, { vaultAddr: s(values, 'vault-addr'), namespace: s(values, 'namespace'), tokenFile: s(values, 'token-file') });
    case 'kube-credential':
      return kubeCredential(full, { audience: s(values, 'audience') ?? 'kubernetes' });
    case 'kubeconfig':
      return kubeconfigCommand(full, {
        server: required(values, 'server', command),
        certificateAuthority: s(values, 'certificate-authority'),
        audience: s(values, 'audience') ?? 'kubernetes',
        out: s(values, 'out'),
      });
    case 'gcp-config':
      return gcpConfig(full, {
        provider: required(values, 'provider', command),
        audience: s(values, 'audience'),
        serviceAccount: s(values, 'service-account'),
        tokenUrl: s(values, 'token-url'),
        tokenInfoUrl: s(values, 'token-info-url'),
        out: s(values, 'out'),
      });
    case 'gcp-credential':
      return gcpCredential(full, { audience: required(values, 'audience', command) });
    case 'azure-credentials':
      return azureCredentials(full, {
        clientId: required(values, 'client-id', command),
        tenantId: required(values, 'tenant-id', command),
        audience: s(values, 'audience') ?? AZURE_AUDIENCE,
        authorityHost: s(values, 'authority-host'),
        tokenFile: s(values, 'token-file'),
        refresh: Boolean(values.refresh),
        refreshInterval: values['refresh-interval'] === undefined ? undefined : int(values, 'refresh-interval', 60, 1, 3600),
        verify: !values['no-verify'],
        json: Boolean(values.json),
      });
    case '__refresh':
      await refreshLoop(full, {
        tokenFile: required(values, 'token-file', command),
        audience: s(values, 'audience') ?? DEFAULT_AUDIENCE,
        refreshInterval: values['refresh-interval'] === undefined ? undefined : int(values, 'refresh-interval', 60, 1, 3600),
      });
      return undefined;
  }
  return undefined;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  try {
    const result = await run(argv, { env: process.env, self: { node: process.execPath, script: path.resolve(process.argv[1] ?? '') } });
    if (result) {
      process.stdout.write(result.stdout);
      for (const note of result.notes) process.stderr.write(`jenkins-oidc-agent: ${note}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof AgentError) {
      process.stderr.write(`jenkins-oidc-agent: ${err.message}\n${err.details.map((l) => `  ${l}\n`).join('')}`);
      return EXIT[err.kind];
    }
    // Unexpected: the message only (an SDK error's message carries no credential).
    process.stderr.write(`jenkins-oidc-agent: unexpected error: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.refused;
  }
}

process.exitCode = await main();
