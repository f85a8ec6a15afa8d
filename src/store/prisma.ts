// The one Prisma client of a process: Prisma 7's Rust-free client over `pg`
// through @prisma/adapter-pg, so no engine binary is ever needed.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client.js';

const pools = new WeakMap<Db, pg.Pool>();

export function createPrisma(databaseUrl: string, poolSize = 10): Db {
  // Our own pool, handed to the adapter, so that metrics can watch it.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, application_name: 'jenkins-oidc' });
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  return db;
}

/** The connection pool behind a client made by createPrisma. */
export function poolOf(db: Db): pg.Pool | undefined {
  return pools.get(db);
}
