// `aws`: what an AWS account needs to trust this service (the IAM OIDC
// provider, roles and their trust policies; see docs/aws.md). The policies and
// templates are built in src/aws/; this file declares the flags and prints.
import { Option, type Command } from 'commander';
import { showClient } from '../../clients/commands.js';
import { loadConfig } from '../../config.js';
import { issuerThumbprint } from '../../aws/thumbprint.js';
import {
  checkAudience,
  checkMaxSessionDuration,
  checkThumbprint,
  cloudFormationTemplate,
  federatedPrincipal,
  issuerWarnings,
  parseMaxSessionDuration,
  rolesFromFlags,
  trustPolicy,
} from '../../aws/trust-policy.js';
import { toYaml } from '../../aws/yaml.js';
import { collect, warnAll, withDb } from '../context.js';
import { note, printJson } from '../output.js';

export function register(program: Command): void {
  const aws = program
    .command('aws')
    .description('set up AWS: the IAM OIDC provider, roles and their trust policies (see docs/aws.md)');
  const subHelpAws =
    "sub this role admits, repeatable: exact, or a StringLike pattern where ? is one character and * any characters, / and : included, " +
    "so end it at a separator ('jenkins_instance:ci-main:job:team/app/*', not 'job:team/app*'); values write % as %25 and : as %3A";
  const issuerHelp =
    'the issuer URL as AWS will see it (default: the ISSUER setting, which the service advertises; checked the same way). ' +
    'Set it when generating on another machine than the service';
  // --issuer stands in for ISSUER, so it is checked by the same rules as the service's own.
  const withIssuer = (issuer: string | undefined): NodeJS.ProcessEnv => (issuer === undefined ? process.env : { ...process.env, ISSUER: issuer });
  const excludePrHelp =
    'refuse multibranch pull-request jobs (PR-<n>, MR-<n>), which can run code from forks, with a StringNotLike on sub ' +
    '(it also refuses jobs below a folder or branch whose name starts with PR- or MR-)';

  aws
    .command('trust-policy')
    .description('print the trust policy JSON of a role that admits the chosen jobs of one controller')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the role admits')
    .option('--sub <pattern>', subHelpAws, collect)
    .option('--audience <aud>', "the aud the role requires (default sts.amazonaws.com, or the client's first audience)")
    .option('--account-id <id>', 'AWS account of the IAM OIDC provider (builds the provider ARN)')
    .option('--provider-arn <arn>', 'the IAM OIDC provider ARN, instead of --account-id')
    .option('--partition <name>', 'AWS partition: aws, aws-cn, aws-us-gov', 'aws')
    .option('--issuer <url>', issuerHelp)
    .option('--exclude-pull-requests', excludePrHelp)
    .option('--json', 'machine-readable output (the policy is JSON either way; warnings stay on stderr)')
    .action(async (opts: { client: string; sub?: string[]; audience?: string; accountId?: string; providerArn?: string; partition: string; issuer?: string; excludePullRequests?: boolean }) => {
      const { policy, warnings, issuer } = await withDb(async (db, config) => {
        const client = await showClient(db, opts.client);
        const federated = federatedPrincipal({ issuer: config.issuer, providerArn: opts.providerArn, accountId: opts.accountId, partition: opts.partition });
        const audience = checkAudience(opts.audience, client);
        return {
          ...trustPolicy({ issuer: config.issuer, client, subPatterns: opts.sub ?? [], audience, federated, excludePullRequests: opts.excludePullRequests }),
          issuer: config.issuer,
        };
      }, { keyEncryptionKey: false, publicIssuer: true }, withIssuer(opts.issuer));
      warnAll([...issuerWarnings(issuer), ...warnings]);
      printJson(policy);
    });

  aws
    .command('cloudformation')
    .description('print a CloudFormation template: the IAM OIDC provider and roles whose trust policies admit chosen jobs')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the roles admit')
    .option('--role-name <name>', 'name of the role admitting the --sub patterns (default jenkins-<client>)')
    .option('--sub <pattern>', subHelpAws, collect)
    .option('--role <name=pattern>', 'another role and a sub pattern it admits; repeat a name for more patterns', collect)
    .option('--audience <aud>', "client ID of the provider and aud the roles require (default sts.amazonaws.com, or the client's first audience)")
    .option('--thumbprint <sha1>', 'ThumbprintList entry (needed only for a private CA; see: jenkins-oidc aws thumbprint)', collect)
    .option('--existing-provider-arn <arn>', 'use the IAM OIDC provider already in the account (one per issuer URL) instead of creating one')
    .option('--managed-policy-arn <arn>', 'managed policy attached to every role, repeatable', collect)
    .option('--max-session-duration <seconds>', 'MaxSessionDuration of the roles, 3600-43200', parseMaxSessionDuration)
    .option('--issuer <url>', issuerHelp)
    .option('--exclude-pull-requests', `every role: ${excludePrHelp}`)
    .addOption(new Option('--format <format>', 'template format').choices(['yaml', 'json']).default('yaml'))
    .option('--json', 'the template as JSON (the same as --format json)')
    .action(async (opts: {
      client: string; roleName?: string; sub?: string[]; role?: string[]; audience?: string; thumbprint?: string[];
      existingProviderArn?: string; managedPolicyArn?: string[]; maxSessionDuration?: number; format: 'yaml' | 'json';
      issuer?: string; excludePullRequests?: boolean; json?: boolean;
    }) => {
      if (opts.json) opts.format = 'json';
      checkMaxSessionDuration(opts.maxSessionDuration);
      const { template, warnings, issuer } = await withDb(async (db, config) => {
        const client = await showClient(db, opts.client);
        const roles = rolesFromFlags({ clientName: client.name, roleName: opts.roleName, sub: opts.sub, role: opts.role });
        const out = cloudFormationTemplate({
          issuer: config.issuer,
          client,
          audience: checkAudience(opts.audience, client),
          roles,
          thumbprints: (opts.thumbprint ?? []).map(checkThumbprint),
          existingProviderArn: opts.existingProviderArn,
          managedPolicyArns: opts.managedPolicyArn ?? [],
          maxSessionDuration: opts.maxSessionDuration,
          excludePullRequests: opts.excludePullRequests,
        });
        return { ...out, issuer: config.issuer };
      }, { keyEncryptionKey: false, publicIssuer: true }, withIssuer(opts.issuer));
      warnAll([...issuerWarnings(issuer), ...warnings]);
      if (opts.format === 'json') printJson(template);
      else process.stdout.write(toYaml(template));
    });

  aws
    .command('thumbprint [url]')
    .description("print the SHA-1 thumbprint AWS computes for the issuer's TLS chain (the last certificate served)")
    .option('--json', 'machine-readable output')
    .action(async (url: string | undefined, opts: { json?: boolean }) => {
      const target = url ?? loadConfig().issuer;
      const result = await issuerThumbprint(target);
      if (opts.json) return printJson(result);
      process.stdout.write(`${result.thumbprint}\n`);
      note(`certificate: ${result.subject}\nissued by:   ${result.issuer}\nvalid until: ${result.validTo}\n` +
        'AWS ignores thumbprints for certificates from CAs it trusts; ThumbprintList matters for a private CA.');
    });
}
