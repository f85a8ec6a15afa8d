// Opens the database a process works on: DATABASE_URL when set, otherwise the
// embedded PostgreSQL in DATA_DIR (started here, or shared with a running
// `serve`). Every command and the server go through this one function.
import type { Config } from '../config.js';
import { openEmbedded } from './embedded.js';
import { closePrisma, createPrisma, type Db } from './prisma.js';

export interface Database {
  url: string;
  db: Db;
  close(): Promise<void>;
}

export async function openDatabase(
  config: Config,
  owner: 'serve' | 'cli',
  log: (message: string) => void = () => undefined,
  notify?: (message: string) => void,
): Promise<Database> {
  // A CLI command runs a handful of queries; a replica serves many at once.
  const poolSize = owner === 'cli' ? 2 : config.databasePoolSize;
  // A CLI command may legitimately run for minutes (a migration, an export).
  const statementTimeout = owner === 'cli' ? undefined : config.databaseStatementTimeout;
  if (config.databaseUrl) {
    const db = createPrisma(config.databaseUrl, poolSize, config.databaseAcquireTimeout, statementTimeout);
    return { url: config.databaseUrl, db, close: () => closePrisma(db) };
  }
  const embedded = await openEmbedded(config.dataDir, owner, log, notify);
  const db = createPrisma(embedded.url, poolSize, config.databaseAcquireTimeout, statementTimeout);
  return {
    url: embedded.url,
    db,
    close: async () => {
      await closePrisma(db).catch(() => undefined);
      await embedded.stop();
    },
  };
}
