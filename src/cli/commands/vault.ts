// `vault`: what a HashiCorp Vault needs to trust this service (the JWT auth
// method and a role; see docs/vault.md). Built in src/vault/setup.ts; this
// file declares the flags and prints.
import type { Command } from 'commander';
import { showClient } from '../../clients/commands.js';
import type { BuildClaimName } from '../../claims/names.js';
import { vaultCommands, vaultSetup } from '../../vault/setup.js';
import { collect, duration, list, warnAll, withDb } from '../context.js';
import { printJson } from '../output.js';

export function register(program: Command): void {
  const vault = program.command('vault').description('set up HashiCorp Vault: the JWT auth method and a role builds log in with (see docs/vault.md)');

  vault
    .command('setup')
    .description('print the vault commands (or, with --json, the API bodies) that make Vault trust chosen jobs of one controller')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the role admits')
    .requiredOption('--role <name>', 'the Vault role name')
    .requiredOption('--policy <names>', 'Vault policies the build gets, repeatable or comma-separated', list)
    .option('--bound-claim <claim=value>', 'a claim the token must carry, e.g. job=team/app/main or ref=refs/heads/*; repeatable; ' +
      'the same claim twice: any of the values; a * makes every value a glob, where * matches any characters, / included. The controller is always bound', collect)
    .option('--claim-mapping <claims>', 'claims copied into the Vault token\'s metadata and audit log (default job,build_number,jenkins_instance)', list)
    .option('--user-claim <claim>', 'the claim that names the Vault entity alias (default sub)', 'sub')
    .option('--audience <aud>', "the aud the role requires (default vault, which must be one of the client's audiences)", 'vault')
    .option('--path <path>', 'mount path of the JWT auth method', 'jwt')
    .option('--token-ttl <duration>', 'lifetime of the Vault token, 60s-24h (default 15m); the agent logs in again for a longer build', duration('--token-ttl'), 900)
    .option('--json', 'the API bodies as JSON: {"path", "config", "role": {"name", "body"}} (Terraform: vault_jwt_auth_backend, vault_jwt_auth_backend_role)')
    .action(async (opts: {
      client: string; role: string; policy: string[]; boundClaim?: string[]; claimMapping?: string[]; userClaim: string;
      audience: string; path: string; tokenTtl: number; json?: boolean;
    }) => {
      const { setup, warnings } = await withDb(async (db, config) => {
        const client = await showClient(db, opts.client);
        return vaultSetup({
          issuer: config.issuer,
          client,
          path: opts.path,
          role: opts.role,
          audience: opts.audience,
          boundClaims: opts.boundClaim ?? [],
          claimMappings: opts.claimMapping ?? ['job', 'build_number', 'jenkins_instance'],
          policies: opts.policy,
          tokenTtl: opts.tokenTtl,
          userClaim: opts.userClaim as BuildClaimName | 'sub',
        });
      }, { keyEncryptionKey: false, publicIssuer: true });
      warnAll(warnings);
      if (opts.json) return printJson(setup);
      process.stdout.write(vaultCommands(setup));
    });
}
