// `clients`: the Jenkins controllers registered as OAuth clients. The work is
// in src/clients/commands.ts; this file declares the flags and prints.
import type { Command } from 'commander';
import { CLAIM_MAX_LENGTH } from '../../claims/build-claims.js';
import { BUILD_CLAIMS, type BuildClaimName } from '../../claims/names.js';
import { GOOGLE_SUBJECT_MAX_BYTES, longestSubBytes } from '../../claims/sub.js';
import {
  listClients,
  registerClient,
  removeClient,
  rotateClientSecret,
  setClientEnabled,
  showClient,
  updateClient,
  type ClientView,
} from '../../clients/commands.js';
import { DomainError } from '../../errors.js';
import { duration, list, seconds, warnAll, withDb } from '../context.js';
import { note, printJson, printRecord, printTable } from '../output.js';

function showClientView(c: ClientView): void {
  printRecord({
    name: c.name,
    jenkins_url: c.jenkinsUrl,
    audiences: c.audiences,
    sub_claims: c.subTemplate ? `${c.subClaims.join(',')} (not used: sub_template is set)` : c.subClaims,
    sub_template: c.subTemplate ?? '-',
    claim_types: c.claimTypes,
    max_request_token_ttl: c.maxRequestTokenTtl,
    session_tags: c.sessionTags.length ? c.sessionTags : '-',
    transitive_tags: c.transitiveTags.length ? c.transitiveTags : '-',
    source_identity: c.sourceIdentity ?? '-',
    allowed_sources: c.allowedSources.length ? c.allowedSources : 'any',
    enabled: c.enabled,
    secret: c.secretHint,
    secret_rotated_at: c.secretRotatedAt,
    previous_secret: c.previousSecret ? `${c.previousSecret.hint} (accepted until ${c.previousSecret.expiresAt})` : '-',
    created_at: c.createdAt,
  });
}

/**
 * Google's google.subject holds 127 bytes and the mapping fails the exchange
 * for a longer sub; said when a client is saved, while the fix is one flag away.
 */
function subWarnings(c: ClientView): string[] {
  // Only for a template: the default key:value sub is for AWS, and the Google generator says it there.
  if (c.subTemplate === null) return [];
  const longest = longestSubBytes({ subClaims: c.subClaims as BuildClaimName[], subTemplate: c.subTemplate }, CLAIM_MAX_LENGTH);
  if (longest <= GOOGLE_SUBJECT_MAX_BYTES) return [];
  return [`sub can reach ${longest} bytes; Google Cloud maps google.subject from it and holds at most ${GOOGLE_SUBJECT_MAX_BYTES}. ` +
    `For Google, hash long claims: jenkins-oidc clients update ${c.name} --sub-template '{jenkins_instance}:{job|sha256}'`];
}

function showSecretOnce(name: string, secret: string): void {
  process.stdout.write(`client_id      ${name}\nclient_secret  ${secret}\n`);
  note('\nStore the client secret now, in a SYSTEM-scoped Jenkins credential: it is shown only this once.');
}

export function register(program: Command): void {
  const clients = program.command('clients').description('Jenkins controllers registered as OAuth clients');
  const subHelp = `ordered claim names that make up sub (default jenkins_instance,job); from: ${BUILD_CLAIMS.join(', ')}`;
  const tagsHelp = 'build claims sent to AWS as session tags (the key is the claim name; any name --sub-claims accepts, e.g. job,ref_type,replayed), comma-separated; empty to remove';
  const transitiveHelp = 'session tags that stay on the session through role chaining; empty to remove';
  const sourceIdentityHelp = 'AWS source identity template of {claim} and [A-Za-z0-9_+=,.@-], e.g. "{jenkins_instance}-{build_number}"; empty to remove';
  const templateHelp = 'sub as a template of literal text and {claim} or {claim|sha256} (43 characters) placeholders, e.g. "{jenkins_instance}:{job|sha256}" for Google\'s 127 bytes; replaces the --sub-claims form; empty to remove';
  const claimTypesHelp = 'string: build_number, restarted_from and replayed as JSON strings, which Vault and Kubernetes can match (the default for new clients); json: numbers and booleans';
  const sourcesHelp = 'addresses or CIDR ranges (10.0.0.0/8, 2001:db8::/48) the controller may mint and revoke from, comma-separated; empty: any. A right secret from elsewhere is refused (401) and audited';
  type AwsFlags = { sessionTags?: string[]; transitiveTags?: string[]; sourceIdentity?: string; allowedSources?: string[]; subTemplate?: string; claimTypes?: string };
  const awsInput = (o: AwsFlags) => ({
    sessionTags: o.sessionTags, transitiveTags: o.transitiveTags, sourceIdentity: o.sourceIdentity, allowedSources: o.allowedSources, subTemplate: o.subTemplate, claimTypes: o.claimTypes,
  });

  clients
    .command('add <name>')
    .description('register a Jenkins controller; prints its client secret once')
    .requiredOption('--jenkins-url <url>', 'root URL of the controller; every build_url must lie under it')
    .option('--audience <aud>', 'allowed audience, repeatable or comma-separated (default sts.amazonaws.com)', list)
    .option('--sub-claims <claims>', subHelp, list)
    .option('--sub-template <template>', templateHelp)
    .option('--claim-types <types>', claimTypesHelp)
    .option('--max-ttl <duration>', 'longest request-token lifetime this controller may ask for (default REQUEST_TOKEN_MAX_TTL)', seconds)
    .option('--session-tags <claims>', tagsHelp, list)
    .option('--transitive-tags <claims>', transitiveHelp, list)
    .option('--source-identity <template>', sourceIdentityHelp)
    .option('--allowed-sources <cidrs>', sourcesHelp, list)
    .option('--json', 'machine-readable output (includes the secret)')
    .action(async (name: string, opts: { jenkinsUrl: string; audience?: string[]; subClaims?: string[]; maxTtl?: number; json?: boolean } & AwsFlags) => {
      const { client, secret } = await withDb((db, config) =>
        registerClient(db, { name, jenkinsUrl: opts.jenkinsUrl, audiences: opts.audience, subClaims: opts.subClaims, maxRequestTokenTtl: opts.maxTtl, ...awsInput(opts) }, config.requestTokenMaxTtl),
      );
      warnAll(subWarnings(client));
      if (opts.json) return printJson({ client, client_id: client.name, client_secret: secret });
      showClientView(client);
      process.stdout.write('\n');
      showSecretOnce(client.name, secret);
    });

  clients
    .command('list')
    .description('list registered controllers')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDb((db) => listClients(db));
      if (opts.json) return printJson(rows);
      printTable(rows.map((c) => ({ ...c, enabled: c.enabled ? 'yes' : 'no' })), ['name', 'jenkinsUrl', 'audiences', 'subClaims', 'enabled', 'secretHint']);
    });

  clients
    .command('show <name>')
    .description('show one controller')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const client = await withDb((db) => showClient(db, name));
      if (opts.json) return printJson(client);
      showClientView(client);
    });

  clients
    .command('update <name>')
    .description('change a controller; tokens minted later use the new settings')
    .option('--jenkins-url <url>', 'root URL of the controller')
    .option('--audience <aud>', 'allowed audiences (replaces the list), repeatable or comma-separated', list)
    .option('--sub-claims <claims>', subHelp, list)
    .option('--sub-template <template>', templateHelp)
    .option('--claim-types <types>', claimTypesHelp)
    .option('--max-ttl <duration>', 'longest request-token lifetime', seconds)
    .option('--session-tags <claims>', tagsHelp, list)
    .option('--transitive-tags <claims>', transitiveHelp, list)
    .option('--source-identity <template>', sourceIdentityHelp)
    .option('--allowed-sources <cidrs>', sourcesHelp, list)
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { jenkinsUrl?: string; audience?: string[]; subClaims?: string[]; maxTtl?: number; json?: boolean } & AwsFlags) => {
      const client = await withDb((db, config) =>
        updateClient(db, name, { jenkinsUrl: opts.jenkinsUrl, audiences: opts.audience, subClaims: opts.subClaims, maxRequestTokenTtl: opts.maxTtl, ...awsInput(opts) }, config.requestTokenMaxTtl),
      );
      warnAll(subWarnings(client));
      if (opts.json) return printJson(client);
      showClientView(client);
    });

  clients
    .command('rotate-secret <name>')
    .description('issue a new client secret (printed once); the old one stops working at once, or after --overlap')
    .option('--overlap <duration>', 'keep accepting the old secret this long (e.g. 1h, at most 30d), so the Jenkins credential can be updated without a gap', duration('--overlap'))
    .option('--json', 'machine-readable output (includes the secret)')
    .addHelpText('after', `
Both secrets work during the overlap; every mint and revocation records which one it used
(audit detail client_secret: current or previous), so you can see when the controller switched:
  jenkins-oidc audit list --client NAME --since 1h --json`)
    .action(async (name: string, opts: { json?: boolean; overlap?: number }) => {
      const { client, secret } = await withDb((db) => rotateClientSecret(db, name, opts.overlap ?? 0));
      if (opts.json) return printJson({ client, client_id: client.name, client_secret: secret });
      showSecretOnce(client.name, secret);
      note(client.previousSecret ? `The previous secret (${client.previousSecret.hint}) is accepted until ${client.previousSecret.expiresAt}.` : 'The previous secret no longer works.');
    });

  for (const [verb, enabled, text] of [
    ['disable', false, 'stop a controller: no minting, and its live request tokens stop working at once'],
    ['enable', true, 'allow a disabled controller again'],
  ] as const) {
    clients
      .command(`${verb} <name>`)
      .description(text)
      .option('--json', 'machine-readable output')
      .action(async (name: string, opts: { json?: boolean }) => {
        const client = await withDb((db) => setClientEnabled(db, name, enabled));
        if (opts.json) return printJson(client);
        process.stdout.write(`client ${client.name} ${enabled ? 'enabled' : 'disabled'}\n`);
      });
  }

  clients
    .command('remove <name>')
    .description('delete a controller and its request tokens (audit rows stay)')
    .option('--yes', 'confirm the removal (required)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { yes?: boolean; json?: boolean }) => {
      if (!opts.yes) throw new DomainError(`not removing "${name}" without --yes`, `to stop it reversibly instead: jenkins-oidc clients disable ${name}`);
      const result = await withDb((db) => removeClient(db, name));
      if (opts.json) return printJson(result);
      process.stdout.write(`removed client ${result.name} and ${result.requestTokensRemoved} request token(s)\n`);
    });
}
