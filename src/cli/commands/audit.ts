// `audit`: reading the audit trail (list, export) and pruning it by hand. The
// work is in src/audit/ and src/retention/; this file declares and prints.
import { Option, type Command } from 'commander';
import { EXPORT_FORMATS, exportAudit, type ExportFormat } from '../../audit/export.js';
import { AUDIT_EVENT_NAMES, checkLimit, listAudit, OUTCOMES, parseWhen, rowNote, type AuditFilter, type Outcome } from '../../audit/query.js';
import { formatDuration } from '../../config.js';
import { DomainError } from '../../errors.js';
import { PRUNE_BATCH_SIZE, pruneNow, type PruneResult } from '../../retention/prune.js';
import { PRUNE_INTERVAL_MS } from '../../retention/scheduler.js';
import { list, withDb } from '../context.js';
import { note, printJson, printTable, StdoutStream } from '../output.js';

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

export function register(program: Command): void {
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
  type FilterFlags = { client?: string; job?: string; kid?: string; event?: string[]; outcome?: Outcome; since?: Date; until?: Date; newSources?: boolean };
  const filterOf = (o: FilterFlags): AuditFilter => ({ client: o.client, job: o.job, kid: o.kid, events: o.event, outcome: o.outcome, since: o.since, until: o.until, newSources: o.newSources });
  const withFilters = (cmd: Command) =>
    cmd
      .option('--client <name>', 'only this controller (client_id)')
      .option('--job <job>', 'only this job (full name, e.g. team/app/main)')
      .option('--kid <kid>', 'only ID tokens signed by this key (see: jenkins-oidc keys list)')
      .option('--event <name>', 'only these events, repeatable or comma-separated, e.g. id_token.issued', list)
      .addOption(new Option('--outcome <outcome>', 'ok: tokens issued and revoked; refused: every *.refused event').choices(OUTCOMES))
      .option('--since <when>', 'rows at or after: ISO time, or a duration back from now (30m, 12h, 7d)', (v: string) => parseWhen('since', v))
      .option('--until <when>', 'rows before: ISO time, or a duration back from now', (v: string) => parseWhen('until', v))
      .option('--new-sources', 'only mints from an address their controller had never minted from before (a stolen client secret used elsewhere)');

  withFilters(audit.command('list').description('the audit trail, newest first'))
    .addOption(new Option('--limit <n>', 'at most this many rows').default(100).argParser((v) => Number(v)))
    .option('--json', 'machine-readable output (exact values; the table escapes control characters)')
    .addHelpText('after', `
Text that callers chose (audience, client, job) is printed with control characters escaped:
a newline shows as \\n, an escape character as \\x1b, a backslash as \\\\. --json prints exact values.

Examples:
  jenkins-oidc audit list --since 1h --outcome refused          what was refused in the last hour
  jenkins-oidc audit list --kid KID --event id_token.issued     ID tokens a (compromised) key signed
  jenkins-oidc audit list --new-sources --since 30d             mints from addresses never seen before
  jenkins-oidc audit list --client ci-main --job team/app/main --since 2026-11-01 --until 2026-11-02`)
    .action(async (opts: FilterFlags & { limit: number; json?: boolean }) => {
      const limit = checkLimit(opts.limit);
      const rows = await withDb((db) => listAudit(db, { ...filterOf(opts), limit }));
      if (opts.json) return printJson(rows);
      printTable(rows.map((r) => ({ ...r, note: rowNote(r.detail) })), ['at', 'event', 'note', 'client', 'job', 'buildNumber', 'audience', 'kid', 'remoteAddr']);
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
      const shown: Record<string, number> = {};
      const progress = (table: string, n: number) => {
        if (!opts.json && n - (shown[table] ?? 0) >= 100_000) note(`… ${table}: ${(shown[table] = n)} rows deleted`);
      };
      const result = await withDb((_db, config, database) =>
        pruneNow(database, { auditRetention: config.auditRetention, requestTokenRetention: config.requestTokenRetention }, { dryRun: opts.dryRun, onBatch: progress }),
      );
      if (opts.json) return printJson(result);
      printPrune(result);
    });
}
