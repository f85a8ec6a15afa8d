#!/usr/bin/env node
// The server-side CLI, `jenkins-oidc`: one declaration of every command. Each
// command is a plain async function from its concept folder that returns
// data; this file parses flags, opens the database, prints, and is the only
// place that sets the exit code.
import { Command, Option } from 'commander';
import { listAudit } from '../audit/audit.js';
import { InputError } from '../claims/text.js';
import { BUILD_CLAIMS } from '../claims/names.js';
import {
  listClients,
  registerClient,
  removeClient,
  rotateClientSecret,
  setClientEnabled,
  showClient,
  updateClient,
  type ClientView,
} from '../clients/commands.js';
import { issuerThumbprint } from '../aws/thumbprint.js';
import { checkAudience, checkThumbprint, cloudFormationTemplate, issuerWarnings, providerArn, trustPolicy, type RoleSpec } from '../aws/trust-policy.js';
import { toYaml } from '../aws/yaml.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { DomainError } from '../errors.js';
import { createLogger } from '../logger.js';
import { openDatabase } from '../store/database.js';
import { migrate, readMigrations } from '../store/migrate.js';
import type { Db } from '../store/prisma.js';
import { listKeys, revokeKey, rewrapKeys, rotateKeys } from '../signing-keys/commands.js';
import { resolveKeyEncryptionKey } from '../signing-keys/key-encryption-key.js';
import type { Step } from '../signing-keys/lifecycle.js';
import os from 'node:os';
import { note, printJson, printRecord, printTable } from './output.js';

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
const seconds = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InputError('--max-ttl', `must be whole seconds, got "${value}"`);
  return Number(value);
};

/** Runs a command against the configured database, applying migrations first where that is safe. */
async function withDb<T>(fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  if (config.mode === 'embedded') note(`using the embedded database in ${config.dataDir}`);
  const database = await openDatabase(config, 'cli');
  try {
    if (config.mode === 'embedded') {
      await migrate(database.url);
    } else {
      const [table] = await database.db.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = '_prisma_migrations'`;
      if (table?.n === 0) throw new DomainError('the database has no jenkins-oidc tables yet', 'run: jenkins-oidc migrate');
      const applied = new Set(
        (await database.db.$queryRaw<{ name: string }[]>`SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL`).map((r) => r.name),
      );
      const pending = readMigrations().filter((m) => !applied.has(m.name));
      if (pending.length) throw new DomainError(`${pending.length} migration(s) pending: ${pending.map((m) => m.name).join(', ')}`, 'run: jenkins-oidc migrate');
    }
    return await fn(database.db, config);
  } finally {
    await database.close();
  }
}

function showClientView(c: ClientView): void {
  printRecord({
    name: c.name,
    jenkins_url: c.jenkinsUrl,
    audiences: c.audiences,
    sub_claims: c.subClaims,
    max_request_token_ttl: c.maxRequestTokenTtl,
    session_tags: c.sessionTags.length ? c.sessionTags : '-',
    transitive_tags: c.transitiveTags.length ? c.transitiveTags : '-',
    source_identity: c.sourceIdentity ?? '-',
    enabled: c.enabled,
    secret: c.secretHint,
    secret_rotated_at: c.secretRotatedAt,
    created_at: c.createdAt,
  });
}

function showSecretOnce(name: string, secret: string): void {
  process.stdout.write(`client_id      ${name}\nclient_secret  ${secret}\n`);
  note('\nStore the client secret now, in a SYSTEM-scoped Jenkins credential: it is shown only this once.');
}

export function buildCli(): Command {
  const program = new Command('jenkins-oidc')
    .description('OpenID Connect token service for Jenkins: builds assume AWS roles with short-lived signed ID tokens.')
    .addHelpText('after', `
Configuration comes from environment variables (see README): with no DATABASE_URL every
command uses the embedded PostgreSQL in DATA_DIR (default ./.data), shared with a running serve.

Getting started:
  jenkins-oidc serve                                   start the service
  jenkins-oidc clients add ci-main --jenkins-url https://jenkins.example.com
  jenkins-oidc aws cloudformation --client ci-main --role-name deploy --sub 'jenkins_instance:ci-main:job:team/app/*'
  jenkins-oidc audit list --since 1h`);

  program.command('serve').description('run the token service (migrates first unless MIGRATE_ON_START=false)').action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    // Loaded here only: the other commands need no HTTP server nor oidc-provider.
    const { startService } = await import('../server/service.js');
    if (config.mode === 'embedded') note(`starting with the embedded PostgreSQL in ${config.dataDir} (set DATABASE_URL for production)`);
    // A crash leaves its reason in the JSON log; pino's exit hook then writes
    // out every line still buffered.
    process.on('uncaughtException', (err) => {
      logger.fatal({ err }, 'uncaught exception: exiting');
      process.exit(1);
    });
    process.on('unhandledRejection', (err) => {
      logger.fatal({ err }, 'unhandled promise rejection: exiting');
      process.exit(1);
    });
    // Signal handlers go in before anything starts: a SIGTERM during start-up
    // (a fast rolling update) must still end with PostgreSQL stopped cleanly.
    let service: Awaited<ReturnType<typeof startService>> | undefined;
    let stopping = false;
    let startupDeadline: NodeJS.Timeout | undefined;
    const finish = () =>
      service!.close().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    const stop = (signal: string) => {
      if (stopping) {
        // Twice Ctrl-C, or an impatient orchestrator: skip the rest of the
        // grace; requests in flight still get their SHUTDOWN_TIMEOUT.
        logger.info({ signal }, 'second signal: ending the grace now');
        service?.hurry();
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      if (service) void finish();
      // Start-up stuck (an unreachable database, say): do not outlive the signal by long.
      else startupDeadline = setTimeout(() => process.exit(1), 10_000).unref();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A closed terminal: stop cleanly too, rather than leave PostgreSQL orphaned.
    process.on('SIGHUP', () => stop('SIGHUP'));
    service = await startService(config, logger);
    if (stopping) {
      // Stopped before it was ever ready: no balancer needs a grace.
      clearTimeout(startupDeadline);
      service.hurry();
      await finish();
    }
  });

  program
    .command('migrate')
    .description('apply pending database migrations (safe to run from several replicas at once)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const database = await openDatabase(config, 'cli');
      try {
        const result = await migrate(database.url, { onProgress: (m) => !opts.json && note(m) });
        if (opts.json) return printJson({ ...result, available: readMigrations().map((m) => m.name) });
        process.stdout.write(result.applied.length ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}\n` : 'database is up to date\n');
        if (result.modified.length) note(`warning: applied migrations changed since: ${result.modified.join(', ')}`);
      } finally {
        await database.close();
      }
    });

  const clients = program.command('clients').description('Jenkins controllers registered as OAuth clients');
  const subHelp = `ordered claim names that make up sub (default jenkins_instance,job); from: ${BUILD_CLAIMS.join(', ')}`;
  const tagsHelp = 'build claims sent to AWS as session tags (the key is the claim name; any name --sub-claims accepts, e.g. job,ref_type,replayed), comma-separated; empty to remove';
  const transitiveHelp = 'session tags that stay on the session through role chaining; empty to remove';
  const sourceIdentityHelp = 'AWS source identity template of {claim} and [A-Za-z0-9_+=,.@-], e.g. "{jenkins_instance}-{build_number}"; empty to remove';
  type AwsFlags = { sessionTags?: string[]; transitiveTags?: string[]; sourceIdentity?: string };
  const awsInput = (o: AwsFlags) => ({ sessionTags: o.sessionTags, transitiveTags: o.transitiveTags, sourceIdentity: o.sourceIdentity });

  clients
    .command('add <name>')
    .description('register a Jenkins controller; prints its client secret once')
    .requiredOption('--jenkins-url <url>', 'root URL of the controller; every build_url must lie under it')
    .option('--audience <aud>', 'allowed audience, repeatable or comma-separated (default sts.amazonaws.com)', list)
    .option('--sub-claims <claims>', subHelp, list)
    .option('--max-ttl <seconds>', 'longest request-token lifetime this controller may ask for (default REQUEST_TOKEN_MAX_TTL)', seconds)
    .option('--session-tags <claims>', tagsHelp, list)
    .option('--transitive-tags <claims>', transitiveHelp, list)
    .option('--source-identity <template>', sourceIdentityHelp)
    .option('--json', 'machine-readable output (includes the secret)')
    .action(async (name: string, opts: { jenkinsUrl: string; audience?: string[]; subClaims?: string[]; maxTtl?: number; json?: boolean } & AwsFlags) => {
      const { client, secret } = await withDb((db, config) =>
        registerClient(db, { name, jenkinsUrl: opts.jenkinsUrl, audiences: opts.audience, subClaims: opts.subClaims, maxRequestTokenTtl: opts.maxTtl, ...awsInput(opts) }, config.requestTokenMaxTtl),
      );
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
    .option('--max-ttl <seconds>', 'longest request-token lifetime', seconds)
    .option('--session-tags <claims>', tagsHelp, list)
    .option('--transitive-tags <claims>', transitiveHelp, list)
    .option('--source-identity <template>', sourceIdentityHelp)
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { jenkinsUrl?: string; audience?: string[]; subClaims?: string[]; maxTtl?: number; json?: boolean } & AwsFlags) => {
      const client = await withDb((db, config) =>
        updateClient(db, name, { jenkinsUrl: opts.jenkinsUrl, audiences: opts.audience, subClaims: opts.subClaims, maxRequestTokenTtl: opts.maxTtl, ...awsInput(opts) }, config.requestTokenMaxTtl),
      );
      if (opts.json) return printJson(client);
      showClientView(client);
    });

  clients
    .command('rotate-secret <name>')
    .description('issue a new client secret (printed once); the old one stops working at once')
    .option('--json', 'machine-readable output (includes the secret)')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { client, secret } = await withDb((db) => rotateClientSecret(db, name));
      if (opts.json) return printJson({ client, client_id: client.name, client_secret: secret });
      showSecretOnce(client.name, secret);
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

  const keys = program.command('keys').description('signing keys: list, rotate, revoke, rewrap (see docs/key-rotation.md)');
  const actor = () => `admin:${os.userInfo().username}`;
  const printSteps = (steps: Step[]) => {
    for (const s of steps) process.stdout.write(`${s.kid}  ${s.from ?? '(new)'} -> ${s.to}  (${s.reason})\n`);
  };
  const algOption = () => new Option('--alg <alg>', 'algorithm of the new key (default SIGNING_ALG)').choices(['RS256', 'ES256']);

  keys
    .command('list')
    .description('every key with its status and history, oldest first')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDb((db) => listKeys(db));
      if (opts.json) return printJson(rows);
      printTable(rows, ['kid', 'alg', 'status', 'createdAt', 'activatedAt', 'retiredAt', 'removedAt']);
      process.stdout.write('\nhistory:\n');
      const events = rows.flatMap((k) => k.history.map((e) => ({ ...e, kid: k.kid }))).sort((a, b) => a.at.localeCompare(b.at));
      for (const e of events) process.stdout.write(`${e.at}  ${e.kid}  ${e.from ?? '(new)'} -> ${e.to}  by ${e.actor}${e.reason ? `: ${e.reason}` : ''}\n`);
    });

  keys
    .command('rotate')
    .description('start a planned rotation: publish a new key now, it signs after KEY_PUBLISH_LEAD')
    .option('--now', 'emergency: the new key signs at once (the old one is retired, still published)')
    .addOption(algOption())
    .option('--json', 'machine-readable output')
    .action(async (opts: { now?: boolean; alg?: 'RS256' | 'ES256'; json?: boolean }) => {
      const steps = await withDb((db, config) =>
        rotateKeys(db, resolveKeyEncryptionKey(config), { alg: opts.alg ?? config.signingAlg, now: opts.now, actor: actor(), publishLead: config.keyPublishLead }),
      );
      if (opts.json) return printJson(steps);
      printSteps(steps);
    });

  keys
    .command('revoke <kid>')
    .description('compromised key: out of JWKS at once on every replica; tokens it signed stop verifying')
    .option('--rotate', 'required to revoke the key that signs now: a new key signs at once')
    .addOption(algOption())
    .option('--json', 'machine-readable output')
    .action(async (kid: string, opts: { rotate?: boolean; alg?: 'RS256' | 'ES256'; json?: boolean }) => {
      const steps = await withDb((db, config) =>
        revokeKey(db, resolveKeyEncryptionKey(config), kid, { actor: actor(), rotate: opts.rotate, alg: opts.alg ?? config.signingAlg }),
      );
      if (opts.json) return printJson(steps);
      printSteps(steps);
    });

  keys
    .command('rewrap')
    .description('re-encrypt every private key under KEY_ENCRYPTION_KEY, reading the old one from KEY_ENCRYPTION_KEY_PREVIOUS')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const result = await withDb(async (db, config) => {
        if (!config.previousKeyEncryptionKey) {
          throw new DomainError('KEY_ENCRYPTION_KEY_PREVIOUS is not set', 'set it to the key the service runs with today, and KEY_ENCRYPTION_KEY to the new one');
        }
        return rewrapKeys(db, config.previousKeyEncryptionKey, resolveKeyEncryptionKey(config), actor());
      });
      if (opts.json) return printJson(result);
      process.stdout.write(`rewrapped ${result.rewrapped.length} key(s)${result.alreadyCurrent.length ? `, ${result.alreadyCurrent.length} already under the new key` : ''}\n`);
      note('Restart every replica with the new KEY_ENCRYPTION_KEY; the previous key is no longer needed.');
    });

  const audit = program.command('audit').description('the audit trail of issued tokens, revocations and refusals');
  audit
    .command('list')
    .description('newest first')
    .option('--client <name>', 'only this controller')
    .option('--job <job>', 'only this job (full name)')
    .option('--since <when>', 'ISO time or a duration back from now: 30m, 12h, 7d')
    .addOption(new Option('--limit <n>', 'at most this many rows').default(100).argParser((v) => Number(v)))
    .option('--json', 'machine-readable output')
    .action(async (opts: { client?: string; job?: string; since?: string; limit: number; json?: boolean }) => {
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 10000) throw new InputError('--limit', 'must be between 1 and 10000');
      const rows = await withDb((db) => listAudit(db, opts));
      if (opts.json) return printJson(rows);
      printTable(rows, ['at', 'event', 'client', 'job', 'buildNumber', 'audience', 'kid', 'remoteAddr']);
    });

  const aws = program
    .command('aws')
    .description('set up AWS: the IAM OIDC provider, roles and their trust policies (see docs/aws.md)');
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  const subHelpAws =
    "sub this role admits, repeatable: exact, or a StringLike pattern where ? is one character and * any characters, / and : included, " +
    "so end it at a separator ('jenkins_instance:ci-main:job:team/app/*', not 'job:team/app*'); values write % as %25 and : as %3A";
  const excludePrHelp =
    'refuse multibranch pull-request jobs (PR-<n>, MR-<n>), which can run code from forks, with a StringNotLike on sub ' +
    '(it also refuses jobs below a folder or branch whose name starts with PR- or MR-)';
  const warnAll = (warnings: string[]) => warnings.forEach((w) => note(`warning: ${w}`));

  aws
    .command('trust-policy')
    .description('print the trust policy JSON of a role that admits the chosen jobs of one controller')
    .requiredOption('--client <name>', 'the Jenkins controller (client) whose builds the role admits')
    .option('--sub <pattern>', subHelpAws, collect)
    .option('--audience <aud>', "the aud the role requires (default sts.amazonaws.com, or the client's first audience)")
    .option('--account-id <id>', 'AWS account of the IAM OIDC provider (builds the provider ARN)')
    .option('--provider-arn <arn>', 'the IAM OIDC provider ARN, instead of --account-id')
    .option('--partition <name>', 'AWS partition: aws, aws-cn, aws-us-gov', 'aws')
    .option('--exclude-pull-requests', excludePrHelp)
    .action(async (opts: { client: string; sub?: string[]; audience?: string; accountId?: string; providerArn?: string; partition: string; excludePullRequests?: boolean }) => {
      const { policy, warnings, issuer } = await withDb(async (db, config) => {
        const client = await showClient(db, opts.client);
        let federated = opts.providerArn;
        if (!federated) {
          if (!opts.accountId) throw new DomainError('the trust policy needs the IAM OIDC provider it trusts', 'give --account-id 123456789012 (or --provider-arn arn:aws:iam::...:oidc-provider/...)');
          federated = providerArn(config.issuer, opts.accountId, opts.partition);
        }
        const audience = checkAudience(opts.audience, client);
        return {
          ...trustPolicy({ issuer: config.issuer, client, subPatterns: opts.sub ?? [], audience, federated, excludePullRequests: opts.excludePullRequests }),
          issuer: config.issuer,
        };
      });
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
    .option('--max-session-duration <seconds>', 'MaxSessionDuration of the roles, 3600-43200', (v: string) => {
      if (!/^\d+$/.test(v)) throw new InputError('--max-session-duration', `must be whole seconds, got "${v}"`);
      return Number(v);
    })
    .option('--exclude-pull-requests', `every role: ${excludePrHelp}`)
    .addOption(new Option('--format <format>', 'template format').choices(['yaml', 'json']).default('yaml'))
    .action(async (opts: {
      client: string; roleName?: string; sub?: string[]; role?: string[]; audience?: string; thumbprint?: string[];
      existingProviderArn?: string; managedPolicyArn?: string[]; maxSessionDuration?: number; format: 'yaml' | 'json';
      excludePullRequests?: boolean;
    }) => {
      if (opts.maxSessionDuration !== undefined && (opts.maxSessionDuration < 3600 || opts.maxSessionDuration > 43200)) {
        throw new InputError('--max-session-duration', `must be 3600-43200 seconds, got ${opts.maxSessionDuration}`);
      }
      const { template, warnings, issuer } = await withDb(async (db, config) => {
        const client = await showClient(db, opts.client);
        const roles = new Map<string, RoleSpec>();
        if (opts.sub?.length || opts.roleName) {
          const name = opts.roleName ?? `jenkins-${client.name}`;
          roles.set(name, { name, subPatterns: opts.sub ?? [] });
        }
        for (const spec of opts.role ?? []) {
          const at = spec.indexOf('=');
          if (at < 1) throw new InputError('--role', `must be NAME=SUB_PATTERN, got "${spec}"`);
          const name = spec.slice(0, at);
          const role = roles.get(name) ?? { name, subPatterns: [] };
          role.subPatterns.push(spec.slice(at + 1));
          roles.set(name, role);
        }
        const out = cloudFormationTemplate({
          issuer: config.issuer,
          client,
          audience: checkAudience(opts.audience, client),
          roles: [...roles.values()],
          thumbprints: (opts.thumbprint ?? []).map(checkThumbprint),
          existingProviderArn: opts.existingProviderArn,
          managedPolicyArns: opts.managedPolicyArn ?? [],
          maxSessionDuration: opts.maxSessionDuration,
          excludePullRequests: opts.excludePullRequests,
        });
        return { ...out, issuer: config.issuer };
      });
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

  return program;
}

export async function main(argv = process.argv): Promise<void> {
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

await main();
