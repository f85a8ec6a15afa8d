// What `serve` does once per start, before anything serves: apply pending
// migrations (MIGRATE_ON_START) and make sure a signing key is active (and
// that one of SIGNING_ALG is on its way). One process does it in
// startService; with WORKERS > 1 the primary does it before it forks, so the
// workers never queue on the advisory locks only to find nothing left to do,
// and a failure is one clear error rather than one per worker.
//
// Nothing here loads oidc-provider: the primary imports this module.
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { ensureSigningKey, timingOf } from '../signing-keys/lifecycle.js';
import { resolveKeyEncryptionKey } from '../signing-keys/key-encryption-key.js';
import type { Database } from '../store/database.js';
import { assertMigrated, migrate } from '../store/migrate.js';

export async function prepareDatabase(database: Database, config: Config, logger: Logger): Promise<void> {
  if (config.migrateOnStart) {
    const result = await migrate(database.url, { onProgress: (m) => logger.info(m) });
    if (result.applied.length) logger.info({ applied: result.applied }, 'migrations applied');
    if (result.modified.length) logger.warn({ modified: result.modified }, 'applied migrations were modified since');
  } else {
    // Someone else migrates (the Kubernetes Job): until they have, say so, as
    // every CLI command does, rather than fail on the first missing table.
    await assertMigrated(database.db);
  }
  const kek = resolveKeyEncryptionKey(config);
  for (const step of await ensureSigningKey(database.db, kek, config.signingAlg, timingOf(config))) {
    logger.info({ kid: step.kid, to: step.to, reason: step.reason }, 'signing key step');
  }
}
