// The 20261204190000_relying_party_claims migration on a database that
// already has clients: they keep numbers and booleans in their tokens (their
// trust policies and session tags were written against them); a client
// registered after it gets string claims.
import { cpSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR, migrate, readMigrations } from '../../src/store/migrate.js';
import { createEmptyDatabase } from '../helpers/database.js';

const MIGRATION = '20261204190000_relying_party_claims';

test('clients registered before the migration keep json claims; new ones get string claims and no sub template', async () => {
  const db = await createEmptyDatabase();
  const before = mkdtempSync(path.join(os.tmpdir(), 'jo-mig-'));
  for (const m of readMigrations().filter((m) => m.name < MIGRATION)) cpSync(path.join(MIGRATIONS_DIR, m.name), path.join(before, m.name), { recursive: true });
  const c = new pg.Client({ connectionString: db.url });
  try {
    await migrate(db.url, { dir: before });
    await c.connect();
    const insert = `INSERT INTO clients (name, jenkins_url, audiences, sub_claims, max_request_token_ttl, secret_hash, secret_prefix, secret_last4)
      VALUES ($1, 'https://jenkins.example.com', '{sts.amazonaws.com}', '{jenkins_instance,job}', 3600, 'h', 'jocs_', 'abcd')`;
    await c.query(insert, ['ci-old']);
    expect(await migrate(db.url)).toEqual({ applied: [MIGRATION], alreadyApplied: readMigrations().map((m) => m.name).filter((n) => n !== MIGRATION), modified: [] });
    await c.query(insert, ['ci-new']);
    expect((await c.query('SELECT name, claim_types, sub_template FROM clients ORDER BY name')).rows).toEqual([
      { name: 'ci-new', claim_types: 'string', sub_template: null },
      { name: 'ci-old', claim_types: 'json', sub_template: null },
    ]);
    await expect(c.query("UPDATE clients SET claim_types = 'number' WHERE name = 'ci-old'")).rejects.toThrow(/clients_claim_types_check/);
  } finally {
    await c.end();
    await db.drop();
  }
});
