// One PostgreSQL server for the whole run; every test file creates its own
// database on it (test/helpers/database.ts).
// - DATABASE_URL set (CI: the machine's PostgreSQL 15): use that server.
// - unset: start the embedded PostgreSQL 18 in a scratch folder, through the
//   service's own code (dist/, built by `npm test` before jest runs).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default async function globalSetup() {
  if (process.env.DATABASE_URL) {
    process.env.TEST_ADMIN_DATABASE_URL = process.env.DATABASE_URL;
    process.env.TEST_POSTGRES = 'DATABASE_URL';
  } else {
    const { openEmbedded } = await import('../../dist/store/embedded.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-test-pg-'));
    const handle = await openEmbedded(dir, 'serve');
    globalThis.__EMBEDDED_PG__ = handle;
    process.env.TEST_ADMIN_DATABASE_URL = handle.url;
    process.env.TEST_POSTGRES = 'embedded';
  }
  // Tests build their own configuration; nothing may fall back to the caller's.
  delete process.env.DATABASE_URL;
}
