// `keys`: the signing keys by hand (they rotate by themselves; see
// docs/key-rotation.md). The work is in src/signing-keys/commands.ts.
import { Option, type Command } from 'commander';
import { DomainError } from '../../errors.js';
import { listKeys, revokeKey, rewrapKeys, rotateKeys } from '../../signing-keys/commands.js';
import { resolveKeyEncryptionKey } from '../../signing-keys/key-encryption-key.js';
import type { Step } from '../../signing-keys/lifecycle.js';
import { actor, withDb } from '../context.js';
import { note, printJson, printTable } from '../output.js';

export function register(program: Command): void {
  const keys = program.command('keys').description('signing keys: list, rotate, revoke, rewrap (see docs/key-rotation.md)');
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
    .description('compromised key: out of JWKS at once on every replica; tokens it signed stop verifying (a kid starting with "-": keys revoke -- KID)')
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
}
