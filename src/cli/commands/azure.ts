// `azure`: what Microsoft Entra needs to trust builds (federated identity
// credentials on an app registration; see docs/azure.md). Built in
// src/azure/setup.ts; this file declares the flags and prints.
import type { Command } from 'commander';
import { showClient } from '../../clients/commands.js';
import { azureSetup } from '../../azure/setup.js';
import { collect, warnAll, withDb } from '../context.js';
import { printJson } from '../output.js';

export function register(program: Command): void {
  const azure = program.command('azure').description('set up Microsoft Entra workload identity federation for builds (see docs/azure.md)');

  azure
    .command('setup')
    .description('print the az ad app federated-credential create commands (or, with --json, the credentials) that let jobs of one controller sign in as an app')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds sign in')
    .requiredOption('--app <id>', "the app registration's application (client) ID or object ID")
    .requiredOption('--job <name>', "a job's full name (e.g. team/app/main); one credential each (Entra allows 20 per app); repeatable", collect)
    .option('--ref <ref>', "a full Git ref (refs/heads/main): one credential per job and ref, for a client whose sub holds ref; repeatable", collect)
    .option('--json', 'machine-readable output')
    .action(async (opts: { client: string; app: string; job: string[]; ref?: string[]; json?: boolean }) => {
      const { setup, warnings } = await withDb(async (db, config) =>
        azureSetup({
          issuer: config.issuer,
          signingAlg: config.signingAlg,
          client: await showClient(db, opts.client),
          app: opts.app,
          jobs: opts.job,
          refs: opts.ref ?? [],
        }), { keyEncryptionKey: false, publicIssuer: true });
      warnAll(warnings);
      if (opts.json) return printJson(setup);
      process.stdout.write(`${setup.commands.join('\n')}\n`);
    });
}
