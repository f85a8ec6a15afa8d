// The server-side CLI, `jenkins-oidc`: the command groups (commands/*.ts)
// composed into one program, and the one place that turns an error into an
// exit code. Importing this module runs nothing: main.ts is the executable
// entry, and tests build the program in-process.
import cluster from 'node:cluster';
import { Command } from 'commander';
import { InputError } from '../claims/text.js';
import { ConfigError, misspelledVariables } from '../config.js';
import { DomainError } from '../errors.js';
import { RUNTIME_VARIABLE } from '../process/runtime.js';
import { VERSION } from '../version.js';
import * as audit from './commands/audit.js';
import * as aws from './commands/aws.js';
import * as azure from './commands/azure.js';
import * as clients from './commands/clients.js';
import * as gcp from './commands/gcp.js';
import * as keys from './commands/keys.js';
import * as kubernetes from './commands/kubernetes.js';
import * as migrate from './commands/migrate.js';
import * as serve from './commands/serve.js';
import * as vault from './commands/vault.js';
import { note } from './output.js';

export function buildCli(): Command {
  const program = new Command('jenkins-oidc')
    .version(VERSION, '-V, --version', 'print the version')
    .description('OpenID Connect token service for Jenkins: builds assume AWS roles with short-lived signed ID tokens.')
    .addHelpText('after', `
Configuration comes from environment variables (docs/configuration.md; jenkins-oidc serve --help
lists them): with no DATABASE_URL every
command uses the embedded PostgreSQL in DATA_DIR (default ./.data), shared with a running serve.

Getting started:
  jenkins-oidc serve                                   start the service
  jenkins-oidc clients add ci-main --jenkins-url https://jenkins.example.com
  jenkins-oidc aws cloudformation --client ci-main --role-name deploy --sub 'jenkins_instance:ci-main:job:team/app/*'
  jenkins-oidc audit list --since 1h`);
  // In this order in --help.
  for (const group of [serve, migrate, clients, keys, audit, aws, vault, kubernetes, gcp, azure]) group.register(program);
  return program;
}

/**
 * Parses argv and runs the command. Exit codes: 2 for configuration refused
 * (ConfigError), 1 for every other failure; the message, and the advice of a
 * DomainError, go to stderr.
 */
export async function main(argv = process.argv): Promise<void> {
  // A misspelt variable is silently ignored otherwise (DATABSE_URL would mean
  // embedded mode). Said once: not again by each worker of `serve`, nor by the
  // process `serve` replaces itself with (process/runtime.ts).
  if (!cluster.isWorker && process.env[RUNTIME_VARIABLE] !== '1') for (const warning of misspelledVariables()) note(`warning: ${warning}`);
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      note(`jenkins-oidc: ${err.message}`);
      process.exitCode = 2;
    } else if (err instanceof DomainError) {
      note(`error: ${err.message}${err.advice ? `\n  ${err.advice}` : ''}`);
      process.exitCode = 1;
    } else if (err instanceof InputError) {
      note(`error: ${err.message}`);
      process.exitCode = 1;
    } else {
      note(`error: ${(err as Error).message ?? String(err)}`);
      process.exitCode = 1;
    }
  }
}
