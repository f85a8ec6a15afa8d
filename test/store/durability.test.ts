// An ID token's audit row is committed durably before the token is returned,
// even on a database whose default says otherwise (issue 11: "every ID token
// has its durable audit row before it is returned").
import pg from 'pg';
import { closePrisma, poolOf } from '../../src/store/prisma.js';
import { createEmptyDatabase, testPrisma } from '../helpers/database.js';

test('the service\'s connections commit synchronously on a database set to synchronous_commit=off', async () => {
  const database = await createEmptyDatabase();
  try {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${database.name} SET synchronous_commit = off`);
    await admin.end();
    // Any other connection gets the database's default.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    expect((await other.query('SHOW synchronous_commit')).rows).toEqual([{ synchronous_commit: 'off' }]);
    await other.end();

    const db = testPrisma(database.url, 2);
    try {
      const pool = poolOf(db);
      // Two at once: both of the pool's connections, each set on connect.
      const both = await Promise.all([pool.query('SHOW synchronous_commit'), pool.query('SHOW synchronous_commit')]);
      expect(both.map((r) => r.rows)).toEqual([[{ synchronous_commit: 'on' }], [{ synchronous_commit: 'on' }]]);
      expect(pool.totalCount).toBe(2);
      expect(await db.$queryRaw`SHOW synchronous_commit`).toEqual([{ synchronous_commit: 'on' }]);
    } finally {
      await closePrisma(db);
    }
  } finally {
    await database.drop();
  }
});
