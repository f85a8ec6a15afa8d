// The one Prisma client of a process: Prisma 7's Rust-free client over `pg`
// through @prisma/adapter-pg, so no engine binary is ever needed.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client.js';

export function createPrisma(databaseUrl: string, poolSize = 10): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize, application_name: 'jenkins-oidc' });
  return new PrismaClient({ adapter });
}
