// `gcp`: what Google Cloud needs to trust this service (a Workload Identity
// Federation pool and provider, and principals to grant; see docs/gcp.md).
// Built in src/gcp/setup.ts; this file declares the flags and prints.
import type { Command } from 'commander';
import { showClient } from '../../clients/commands.js';
import { gcpSetup } from '../../gcp/setup.js';
import { collect, warnAll, withDb } from '../context.js';
import { printJson } from '../output.js';

export function register(program: Command): void {
  const gcp = program.command('gcp').description('set up Google Cloud Workload Identity Federation for builds (see docs/gcp.md)');

  gcp
    .command('setup')
    .description('print the gcloud commands (or, with --json, the provider settings) that make Google Cloud trust builds of one controller')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the provider admits')
    .requiredOption('--project-id <id>', 'the Google Cloud project of the pool')
    .requiredOption('--project-number <number>', "the project's number (gcloud projects describe ID --format='value(projectNumber)')")
    .option('--pool <id>', 'workload identity pool ID', 'jenkins')
    .option('--provider <id>', 'provider ID (one per controller; default the client name)')
    .option('--condition <claim=value>', 'a claim the token must carry (CEL attribute condition, ANDed); repeatable. jenkins_instance is always required', collect)
    .option('--subject <sub>', "a build's exact sub to grant (principal://.../subject/SUB); repeatable", collect)
    .option('--service-account <email>', 'grant the subjects roles/iam.workloadIdentityUser on this service account (impersonation) instead of direct access')
    .option('--json', 'machine-readable output')
    .action(async (opts: { client: string; projectId: string; projectNumber: string; pool: string; provider?: string; condition?: string[]; subject?: string[]; serviceAccount?: string; json?: boolean }) => {
      const { setup, warnings } = await withDb(async (db, config) =>
        gcpSetup({
          issuer: config.issuer,
          client: await showClient(db, opts.client),
          projectId: opts.projectId,
          projectNumber: opts.projectNumber,
          pool: opts.pool,
          provider: opts.provider ?? opts.client,
          conditions: opts.condition ?? [],
          subjects: opts.subject ?? [],
          serviceAccount: opts.serviceAccount,
        }), { keyEncryptionKey: false, publicIssuer: true });
      warnAll(warnings);
      if (opts.json) return printJson(setup);
      process.stdout.write(`${setup.commands.join('\n')}\n`);
    });
}
