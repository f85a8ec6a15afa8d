// The CLI's shape, in-process: buildCli() composes the command groups without
// running anything, so the command list, the --json promise and the helpers
// the commands call are checked here without a database or a child process.
import type { Command } from 'commander';
import { checkMaxSessionDuration, federatedPrincipal, parseMaxSessionDuration, rolesFromFlags } from '../../src/aws/trust-policy.js';
import { checkLimit, refusalReason } from '../../src/audit/query.js';
import { InputError } from '../../src/claims/text.js';
import { buildCli } from '../../src/cli/program.js';
import { VARIABLES } from '../../src/config.js';
import { DomainError } from '../../src/errors.js';

interface Entry {
  name: string;
  description: string;
  leaf: boolean;
  json: boolean;
}

function commandsOf(command: Command, prefix = ''): Entry[] {
  return command.commands.flatMap((c) => {
    const name = `${prefix}${c.name()}`;
    const entry = { name, description: c.description(), leaf: c.commands.length === 0, json: c.options.some((o) => o.long === '--json') };
    return [entry, ...commandsOf(c, `${name} `)];
  });
}

const commands = commandsOf(buildCli());

test('every command and subcommand, in help order, with its description', () => {
  expect(commands.map((c) => [c.name, c.description])).toEqual([
    ['serve', 'run the token service (migrates first unless MIGRATE_ON_START=false)'],
    ['migrate', 'apply pending database migrations (safe to run from several replicas at once)'],
    ['clients', 'Jenkins controllers registered as OAuth clients'],
    ['clients add', 'register a Jenkins controller; prints its client secret once'],
    ['clients list', 'list registered controllers'],
    ['clients show', 'show one controller'],
    ['clients update', 'change a controller; tokens minted later use the new settings'],
    ['clients rotate-secret', 'issue a new client secret (printed once); the old one stops working at once, or after --overlap'],
    ['clients disable', 'stop a controller: no minting, and its live request tokens stop working at once'],
    ['clients enable', 'allow a disabled controller again'],
    ['clients remove', 'delete a controller and its request tokens (audit rows stay)'],
    ['keys', 'signing keys: list, rotate, revoke, rewrap (see docs/key-rotation.md)'],
    ['keys list', 'every key with its status and history, oldest first'],
    ['keys rotate', 'start a planned rotation: publish a new key now, it signs after KEY_PUBLISH_LEAD'],
    ['keys revoke', 'compromised key: out of JWKS at once on every replica; tokens it signed stop verifying (a kid starting with "-": keys revoke -- KID)'],
    ['keys rewrap', 're-encrypt every private key under KEY_ENCRYPTION_KEY, reading the old one from KEY_ENCRYPTION_KEY_PREVIOUS'],
    ['audit', 'the audit trail of issued tokens, revocations and refusals: list, export, prune'],
    ['audit list', 'the audit trail, newest first'],
    ['audit export', 'stream every matching row to stdout, oldest first, for a SIEM or a spreadsheet'],
    ['audit prune', 'delete audit rows older than AUDIT_RETENTION and request tokens expired longer than REQUEST_TOKEN_RETENTION (serve does it every 15 minutes)'],
    ['aws', 'set up AWS: the IAM OIDC provider, roles and their trust policies (see docs/aws.md)'],
    ['aws trust-policy', 'print the trust policy JSON of a role that admits the chosen jobs of one controller'],
    ['aws cloudformation', 'print a CloudFormation template: the IAM OIDC provider and roles whose trust policies admit chosen jobs'],
    ['aws thumbprint', "print the SHA-1 thumbprint AWS computes for the issuer's TLS chain (the last certificate served)"],
    ['vault', 'set up HashiCorp Vault: the JWT auth method and a role builds log in with (see docs/vault.md)'],
    ['vault setup', 'print the vault commands (or, with --json, the API bodies) that make Vault trust chosen jobs of one controller'],
    ['kubernetes', "set up Kubernetes: kube-apiserver's JWT authenticator for builds (see docs/kubernetes.md)"],
    ['kubernetes setup', 'print the AuthenticationConfiguration (or the --oidc-* flags) that makes kube-apiserver authenticate builds of one controller'],
    ['gcp', 'set up Google Cloud Workload Identity Federation for builds (see docs/gcp.md)'],
    ['gcp setup', 'print the gcloud commands (or, with --json, the provider settings) that make Google Cloud trust builds of one controller'],
    ['azure', 'set up Microsoft Entra workload identity federation for builds (see docs/azure.md)'],
    ['azure setup', 'print the az ad app federated-credential create commands (or, with --json, the credentials) that let jobs of one controller sign in as an app'],
  ]);
});

test('every leaf command offers --json, except serve (logs JSON lines) and audit export (--format jsonl|csv)', () => {
  const leaves = commands.filter((c) => c.leaf);
  expect(leaves.filter((c) => !c.json).map((c) => c.name)).toEqual(['serve', 'audit export']);
  // The groups themselves only hold subcommands.
  expect(commands.filter((c) => !c.leaf).map((c) => c.name)).toEqual(['clients', 'keys', 'audit', 'aws', 'vault', 'kubernetes', 'gcp', 'azure']);
});

test('serve --help lists every setting and points at docs/configuration.md', () => {
  const serve = buildCli().commands.find((c) => c.name() === 'serve')!;
  let help = '';
  serve.configureOutput({ writeOut: (text) => void (help += text) });
  serve.outputHelp();
  expect(help).toContain('docs/configuration.md');
  // Every variable config.ts validates, by name (the list is wrapped, so look for words).
  const words = new Set(help.split(/[\s,]+/));
  expect(Object.keys(VARIABLES).filter((name) => !words.has(name))).toEqual([]);
});

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError || err instanceof DomainError) return `${err.name}: ${err.message}${err instanceof DomainError && err.advice ? ` / ${err.advice}` : ''}`;
    throw err;
  }
  throw new Error('did not fail');
}

describe('aws cloudformation: roles from --role-name, --sub and --role NAME=PATTERN', () => {
  test('--sub alone names the role jenkins-<client>; --role adds roles, a repeated name gathers patterns, = may appear in the pattern', () => {
    expect(rolesFromFlags({
      clientName: 'ci-main',
      sub: ['jenkins_instance:ci-main:job:team/app/*'],
      role: ['deploy=jenkins_instance:ci-main:job:team/deploy', 'audit=jenkins_instance:ci-main:job:a=b', 'deploy=jenkins_instance:ci-main:job:team/deploy2'],
    })).toEqual([
      { name: 'jenkins-ci-main', subPatterns: ['jenkins_instance:ci-main:job:team/app/*'] },
      { name: 'deploy', subPatterns: ['jenkins_instance:ci-main:job:team/deploy', 'jenkins_instance:ci-main:job:team/deploy2'] },
      { name: 'audit', subPatterns: ['jenkins_instance:ci-main:job:a=b'] },
    ]);
  });

  test('--role-name with --sub patterns and a --role of the same name make one role', () => {
    expect(rolesFromFlags({ clientName: 'ci-main', roleName: 'deploy', sub: ['p1'], role: ['deploy=p2'] })).toEqual([{ name: 'deploy', subPatterns: ['p1', 'p2'] }]);
  });

  test('no flags, no roles (the template then refuses); a --role without NAME= is refused', () => {
    expect(rolesFromFlags({ clientName: 'ci-main' })).toEqual([]);
    expect(failure(() => rolesFromFlags({ clientName: 'ci-main', role: ['jenkins_instance:ci-main:job:x'] }))).toBe(
      'InputError: --role: must be NAME=SUB_PATTERN, got "jenkins_instance:ci-main:job:x"',
    );
    expect(failure(() => rolesFromFlags({ clientName: 'ci-main', role: ['=p'] }))).toBe('InputError: --role: must be NAME=SUB_PATTERN, got "=p"');
  });

  test('--max-session-duration: whole seconds, 3600-43200', () => {
    expect(parseMaxSessionDuration('7200')).toBe(7200);
    expect(failure(() => parseMaxSessionDuration('2h'))).toBe('InputError: --max-session-duration: must be whole seconds, got "2h"');
    expect(checkMaxSessionDuration(undefined)).toBeUndefined();
    expect(checkMaxSessionDuration(43200)).toBe(43200);
    expect(failure(() => checkMaxSessionDuration(3599))).toBe('InputError: --max-session-duration: must be 3600-43200 seconds, got 3599');
  });
});

test('aws trust-policy: the provider ARN as given, or built from --account-id', () => {
  const issuer = 'https://oidc.example.com/jenkins';
  expect(federatedPrincipal({ issuer, providerArn: 'arn:aws:iam::111111111111:oidc-provider/x', accountId: '123456789012' })).toBe('arn:aws:iam::111111111111:oidc-provider/x');
  expect(federatedPrincipal({ issuer, accountId: '123456789012', partition: 'aws-cn' })).toBe('arn:aws-cn:iam::123456789012:oidc-provider/oidc.example.com/jenkins');
  expect(failure(() => federatedPrincipal({ issuer }))).toBe(
    'DomainError: the trust policy needs the IAM OIDC provider it trusts / give --account-id 123456789012 (or --provider-arn arn:aws:iam::...:oidc-provider/...)',
  );
});

test('audit list: --limit bounds and the reason column', () => {
  expect(checkLimit(10000)).toBe(10000);
  for (const bad of [0, 10001, 1.5, NaN]) expect(failure(() => checkLimit(bad))).toBe('InputError: --limit: must be between 1 and 10000');
  expect(refusalReason({ error: 'invalid_grant', count: 3 })).toBe('invalid_grant x3');
  expect(refusalReason({ error: 'invalid_client' })).toBe('invalid_client');
  expect(refusalReason(null)).toBeNull();
  expect(refusalReason({ count: 3 })).toBeNull();
});
