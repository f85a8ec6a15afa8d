// `kubernetes`: what a cluster's kube-apiserver needs to authenticate builds
// by their ID tokens (see docs/kubernetes.md). Built in src/kubernetes/setup.ts;
// this file declares the flags and prints.
import { Option, type Command } from 'commander';
import { showClient } from '../../clients/commands.js';
import { toYaml } from '../../aws/yaml.js';
import { kubernetesSetup } from '../../kubernetes/setup.js';
import { collect, warnAll, withDb } from '../context.js';
import { printJson } from '../output.js';

export function register(program: Command): void {
  const kubernetes = program.command('kubernetes').description("set up Kubernetes: kube-apiserver's JWT authenticator for builds (see docs/kubernetes.md)");

  kubernetes
    .command('setup')
    .description('print the AuthenticationConfiguration (or the --oidc-* flags) that makes kube-apiserver authenticate builds of one controller')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the cluster authenticates')
    .option('--audience <aud>', "the aud the cluster requires (default kubernetes, which must be one of the client's audiences)", 'kubernetes')
    .option('--username-claim <claim>', 'the claim that becomes the Kubernetes username (default sub: the controller and the job)', 'sub')
    .option('--username-prefix <prefix>', 'prefix of every username, so a build never poses as a cluster user', 'jenkins:')
    .option('--required-claim <claim=value>', 'a string claim every token must carry, e.g. replayed=false or ref_type=branch; repeatable. jenkins_instance is always required', collect)
    .addOption(new Option('--format <format>', 'yaml or json: AuthenticationConfiguration for --authentication-config (1.30+); flags: the --oidc-* flags').choices(['yaml', 'json', 'flags']).default('yaml'))
    .option('--json', 'the same as --format json')
    .action(async (opts: { client: string; audience: string; usernameClaim: string; usernamePrefix: string; requiredClaim?: string[]; format: string; json?: boolean }) => {
      const out = await withDb(async (db, config) =>
        kubernetesSetup({
          issuer: config.issuer,
          signingAlg: config.signingAlg,
          client: await showClient(db, opts.client),
          audience: opts.audience,
          usernameClaim: opts.usernameClaim,
          usernamePrefix: opts.usernamePrefix,
          requiredClaims: opts.requiredClaim ?? [],
        }), { keyEncryptionKey: false, publicIssuer: true });
      warnAll(out.warnings);
      const format = opts.json ? 'json' : opts.format;
      if (format === 'json') return printJson(out.config);
      if (format === 'flags') return void process.stdout.write(`${out.flags.join(' \\\n  ')}\n`);
      process.stdout.write(toYaml(out.config as unknown as Parameters<typeof toYaml>[0]));
    });
}
