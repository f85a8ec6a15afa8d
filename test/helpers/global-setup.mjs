// One PostgreSQL server for the whole run; every test file creates its own
// database on it (test/helpers/database.ts).
// - DATABASE_URL set (CI: the machine's PostgreSQL 15): use that server.
// - unset: start the embedded PostgreSQL 18 in a scratch folder, through the
//   service's own code (dist/, built by `npm test` before jest runs).
//
// Every scratch file of the run (test folders, the embedded PostgreSQL, the
// services and commands the tests start, the JVM of the library tests) goes
// under one folder, which the teardown removes: a run leaves nothing behind.
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default async function globalSetup() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-test-'));
  // PostgreSQL runs as its own user when the suite runs as root: it must reach its folders.
  chmodSync(root, 0o755);
  globalThis.__TEST_TMP__ = root;
  // Workers and child processes inherit it; os.tmpdir() follows TMPDIR.
  process.env.TMPDIR = root;
  if (process.env.DATABASE_URL) {
    process.env.TEST_ADMIN_DATABASE_URL = process.env.DATABASE_URL;
    process.env.TEST_POSTGRES = 'DATABASE_URL';
  } else {
    const { openEmbedded } = await import('../../dist/store/embedded.js');
    const dir = mkdtempSync(path.join(root, 'pg-'));
    chmodSync(dir, 0o755);
    const handle = await openEmbedded(dir, 'serve');
    globalThis.__EMBEDDED_PG__ = handle;
    process.env.TEST_ADMIN_DATABASE_URL = handle.url;
    process.env.TEST_POSTGRES = 'embedded';
  }
  // Tests build their own configuration; nothing may fall back to the caller's.
  delete process.env.DATABASE_URL;
}
