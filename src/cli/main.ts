#!/usr/bin/env node
// The server-side CLI, `jenkins-oidc`: one declaration of every command. Each
// command is a plain async function from its concept folder that returns
// data; this file parses flags, opens the database, prints, and is the only
// place that sets the exit code.
import { describeWait, waitForDatabase } from '../server/startup.js';
import { VERSION } from '../version.js';
import { Command, Option } from 'commander';
import { EXPORT_FORMATS, exportAudit, type ExportFormat } from '../audit/export.js';
import { AUDIT_EVENT_NAMES, listAudit, OUTCOMES, parseWhen, type AuditFilter, type Outcome } from '../audit/query.js';
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
import { ConfigError, formatDuration, loadConfig, misspelledVariables, parseDuration, type Config, type ConfigNeeds } from '../config.js';
import { DomainError } from '../errors.js';
import { createLogger } from '../logger.js';
import { openDatabase, type Database } from '../store/database.js';
import { migrate, readMigrations } from '../store/migrate.js';
import type { Db } from '../store/prisma.js';
import { listKeys, revokeKey, rewrapKeys, rotateKeys } from '../signing-keys/commands.js';
import { resolveKeyEncryptionKey } from '../signing-keys/key-encryption-key.js';
import type { Step } from '../signing-keys/lifecycle.js';
import { PRUNE_BATCH_SIZE, pruneExpiredData, pruneUnderLock, type PruneResult } from '../retention/prune.js';
import { PRUNE_INTERVAL_MS, RetentionScheduler } from '../retention/scheduler.js';
import os from 'node:os';
import { note, printJson, printRecord, printTable, StdoutStream } from './output.js';

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
/** The one duration grammar (config.ts): seconds, or 30s, 5m, 1h, 30d. */
const duration = (flag: string) => (value: string) => {
  const n = parseDuration(value);
  if (n === undefined) throw new InputError(flag, `must be a duration such as 3600, 90m, 1h or 1d, got "${value}"`);
  return n;
};
const seconds = duration('--max-ttl');

/**
 * Runs a command against the configured database, applying migrations first
 * where that is safe. `needs`: what beyond the database the command uses; by
 * default neither the key-encryption key nor a public issuer, so client and
 * audit commands run in production mode with DATABASE_URL alone.
 */
async function withDb<T>(fn: (db: Db, config: Config, database: Database) => Promise<T>, needs: ConfigNeeds = { keyEncryptionKey: false, publicIssuer: false }): Promise<T> {
  const config = loadConfig(process.env, process.cwd(), needs);
  if (config.mode === 'embedded') note(`using the embedded database in ${config.dataDir}`);
  const database = await openDatabase(config, 'cli', undefined, note);
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
    return await fn(database.db, config, database);
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

function printPrune(r: PruneResult): void {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const line = (table: string, variable: string, t: PruneResult['auditEvents'], what: string) =>
    t.before === null
      ? `${table.padEnd(14)}  kept forever (${variable}=0)`
      : `${table.padEnd(14)}  ${verb} ${t.rows} row(s) ${what} ${t.before} (${variable}=${formatDuration(t.retention)})`;
  process.stdout.write(`${line('audit_events', 'AUDIT_RETENTION', r.auditEvents, 'from before')}\n`);
  process.stdout.write(`${line('request_tokens', 'REQUEST_TOKEN_RETENTION', r.requestTokens, 'that expired before')}\n`);
  if (r.stopped) note('stopped before everything due was deleted; run it again');
}

export function buildCli(): Command {
  const program = new Command('jenkins-oidc')
    .version(VERSION, '-V, --version', 'print the version')
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
    let retention: RetentionScheduler | undefined;
    let stopping = false;
    let startupDeadline: NodeJS.Timeout | undefined;
    const finish = () =>
      Promise.resolve(retention?.stop()).then(() => service!.close()).then(
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
    // Deletes expired request tokens and old audit rows, on one replica at a time.
    retention = new RetentionScheduler({
      db: service.database.db,
      databaseUrl: service.database.url,
      retention: config,
      logger,
      onPruned: (table, rows) => service!.metrics.rowsPruned(table, rows),
    });
    if (stopping) {
      // Stopped before it was ever ready: no balancer needs a grace.
      clearTimeout(startupDeadline);
      service.hurry();
      await finish();
    } else {
      retention.start();
    }
  });

  program
    .command('migrate')
    .description('apply pending database migrations (safe to run from several replicas at once)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      // Migrations need neither the key-encryption key nor the public issuer (a migration Job has neither).
      const config = loadConfig(process.env, process.cwd(), { keyEncryptionKey: false, publicIssuer: false });
      // A migration Job may start before its database: wait, as serve does.
      if (config.databaseUrl) {
        await waitForDatabase(config.databaseUrl, { timeoutSeconds: config.databaseConnectTimeout, attemptSeconds: config.databaseAcquireTimeout, report: (e) => note(describeWait(e)) });
      }
      const database = await openDatabase(config, 'cli', undefined, note);
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
    .option('--max-ttl <duration>', 'longest request-token lifetime this controller may ask for (default REQUEST_TOKEN_MAX_TTL)', seconds)
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
    .option('--max-ttl <duration>', 'longest request-token lifetime', seconds)
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
      { keyEncryptionKey: true, publicIssuer: false });
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
      { keyEncryptionKey: true, publicIssuer: false });
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
      }, { keyEncryptionKey: true, publicIssuer: false });
      if (opts.json) return printJson(result);
      process.stdout.write(`rewrapped ${result.rewrapped.length} key(s)${result.alreadyCurrent.length ? `, ${result.alreadyCurrent.length} already under the new key` : ''}\n`);
      note('Restart every replica with the new KEY_ENCRYPTION_KEY; the previous key is no longer needed.');
    });

  const audit = program
    .command('audit')
    .description('the audit trail of issued tokens, revocations and refusals: list, export, prune')
    .addHelpText('after', `
Every request token and ID token issued, every revocation and every refusal is one row:
time, event, client, job, build number, audience, jti, signing key (kid), request token id,
remote address and a detail object. Rows are kept for AUDIT_RETENTION (default 400d) and then
deleted by the service; expired request tokens REQUEST_TOKEN_RETENTION (default 7d) after expiry.

Events (--event):   ${AUDIT_EVENT_NAMES.join(', ')}
Outcome (--outcome): refused = every event ending in .refused; ok = every other event.`);
  type FilterFlags = { client?: string; job?: string; kid?: string; event?: string[]; outcome?: Outcome; since?: Date; until?: Date };
  const filterOf = (o: FilterFlags): AuditFilter => ({ client: o.client, job: o.job, kid: o.kid, events: o.event, outcome: o.outcome, since: o.since, until: o.until });
  const withFilters = (cmd: Command) =>
    cmd
      .option('--client <name>', 'only this controller (client_id)')
      .option('--job <job>', 'only this job (full name, e.g. team/app/main)')
      .option('--kid <kid>', 'only ID tokens signed by this key (see: jenkins-oidc keys list)')
      .option('--event <name>', 'only these events, repeatable or comma-separated, e.g. id_token.issued', list)
      .addOption(new Option('--outcome <outcome>', 'ok: tokens issued and revoked; refused: every *.refused event').choices(OUTCOMES))
      .option('--since <when>', 'rows at or after: ISO time, or a duration back from now (30m, 12h, 7d)', (v: string) => parseWhen('since', v))
      .option('--until <when>', 'rows before: ISO time, or a duration back from now', (v: string) => parseWhen('until', v));

  withFilters(audit.command('list').description('the audit trail, newest first'))
    .addOption(new Option('--limit <n>', 'at most this many rows').default(100).argParser((v) => Number(v)))
    .option('--json', 'machine-readable output (exact values; the table escapes control characters)')
    .addHelpText('after', `
Text that callers chose (audience, client, job) is printed with control characters escaped:
a newline shows as \\n, an escape character as \\x1b, a backslash as \\\\. --json prints exact values.

Examples:
  jenkins-oidc audit list --since 1h --outcome refused          what was refused in the last hour
  jenkins-oidc audit list --kid KID --event id_token.issued     ID tokens a (compromised) key signed
  jenkins-oidc audit list --client ci-main --job team/app/main --since 2026-11-01 --until 2026-11-02`)
    .action(async (opts: FilterFlags & { limit: number; json?: boolean }) => {
      if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > 10000) throw new InputError('--limit', 'must be between 1 and 10000');
      const rows = await withDb((db) => listAudit(db, { ...filterOf(opts), limit: opts.limit }));
      if (opts.json) return printJson(rows);
      // A refusal's reason (its OAuth error) and, for a window of unauthenticated refusals, how many.
      const reason = (d: unknown) => {
        const detail = (d ?? {}) as { error?: unknown; count?: unknown };
        return typeof detail.error === 'string' ? `${detail.error}${typeof detail.count === 'number' ? ` x${detail.count}` : ''}` : null;
      };
      printTable(rows.map((r) => ({ ...r, reason: reason(r.detail) })), ['at', 'event', 'reason', 'client', 'job', 'buildNumber', 'audience', 'kid', 'remoteAddr']);
    });

  withFilters(audit.command('export').description('stream every matching row to stdout, oldest first, for a SIEM or a spreadsheet'))
    .addOption(new Option('--format <format>', 'jsonl: one exact JSON object per line; csv: RFC 4180 with a header row').choices(EXPORT_FORMATS).default('jsonl'))
    .addHelpText('after', `
Rows go to stdout, oldest first; notes go to stderr. --since is inclusive, --until exclusive
and defaults to the moment the export starts. For a SIEM, export fixed windows with ISO times,
each --since the previous --until, so no row is in two files; keep --until a minute behind now,
so that a row still being written lands in the next window instead of none.
JSONL objects have the fields of "audit list --json", exact. CSV cells that start with = + - @
get a leading ' so that a spreadsheet never runs them as formulas: use JSONL for exact values.

Examples:
  jenkins-oidc audit export --since 2026-11-01T00:00:00Z --until 2026-11-02T00:00:00Z > audit-2026-11-01.jsonl
  jenkins-oidc audit export --since 7d --format csv --outcome refused > refusals.csv`)
    .action(async (opts: FilterFlags & { format: ExportFormat }) => {
      const filter = { ...filterOf(opts), until: opts.until ?? new Date() };
      const out = new StdoutStream();
      const count = await withDb((db) => exportAudit(db, filter, opts.format, (chunk) => out.write(chunk), (n) => note(`… ${n} rows`))).catch((err) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EPIPE' && code !== 'ERR_STREAM_DESTROYED') throw err;
        throw new DomainError('the reader of the export went away before the end', 'export again; from --since at the last row received, nothing is lost');
      });
      note(`exported ${count} row(s) from ${filter.since ? `${filter.since.toISOString()} (inclusive)` : 'the oldest row'} to ${filter.until.toISOString()} (exclusive)`);
    });

  audit
    .command('prune')
    .description(`delete audit rows older than AUDIT_RETENTION and request tokens expired longer than REQUEST_TOKEN_RETENTION (serve does it every ${PRUNE_INTERVAL_MS / 60_000} minutes)`)
    .option('--dry-run', 'count the rows that are due, delete nothing')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Deletes in batches of ${PRUNE_BATCH_SIZE} rows with a pause between them, so token requests never wait
behind it; one process prunes at a time across all replicas. To apply another retention once,
set it for this command only: AUDIT_RETENTION=90d jenkins-oidc audit prune --dry-run`)
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const result = await withDb(async (db, config, database) => {
        const retention = { auditRetention: config.auditRetention, requestTokenRetention: config.requestTokenRetention };
        if (opts.dryRun) return pruneExpiredData(db, retention, { dryRun: true });
        const shown: Record<string, number> = {};
        const progress = (table: string, n: number) => {
          if (!opts.json && n - (shown[table] ?? 0) >= 100_000) note(`… ${table}: ${(shown[table] = n)} rows deleted`);
        };
        const done = await pruneUnderLock(database, retention, { onBatch: progress });
        if (!done) {
          throw new DomainError('another jenkins-oidc process is pruning right now', 'its log line "retention: deleted expired rows" says what it deleted; run this again once it is done');
        }
        return done;
      });
      if (opts.json) return printJson(result);
      printPrune(result);
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
    .option('--json', 'machine-readable output (the policy is JSON either way; warnings stay on stderr)')
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
      }, { keyEncryptionKey: false, publicIssuer: true });
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
    .option('--json', 'the template as JSON (the same as --format json)')
    .action(async (opts: {
      client: string; roleName?: string; sub?: string[]; role?: string[]; audience?: string; thumbprint?: string[];
      existingProviderArn?: string; managedPolicyArn?: string[]; maxSessionDuration?: number; format: 'yaml' | 'json';
      excludePullRequests?: boolean; json?: boolean;
    }) => {
      if (opts.json) opts.format = 'json';
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
      }, { keyEncryptionKey: false, publicIssuer: true });
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
  // A misspelt variable is silently ignored otherwise (DATABSE_URL would mean embedded mode).
  for (const warning of misspelledVariables()) note(`warning: ${warning}`);
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
