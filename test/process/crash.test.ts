// A crash's reason is the log's last line, after every line logged before it,
// even while the log writer's own write is held up (a slow log collector):
// a real child process with createLogger and exitOnCrash (dist/), whose
// thread pool is held for 300 ms past the crash (helpers/crash-logging.mjs).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const helper = path.resolve(here, '../helpers/crash-logging.mjs');
const dist = path.resolve(here, '../../dist');

describe.each([
  ['an uncaught exception', 'throw', 'uncaught exception: exiting', 'crash test: thrown'],
  ['an unhandled rejection', 'reject', 'unhandled promise rejection: exiting', 'crash test: rejected'],
])('a crash by %s while the log writer is held up', (_name, mode, msg, message) => {
  test('every line arrives whole and in order, the fatal line last, exit 1', () => {
    const run = spawnSync(process.execPath, [helper, `${dist}/logger.js`, `${dist}/process/crash.js`, mode], {
      env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
      timeout: 60_000,
    });
    expect([run.status, run.signal]).toEqual([1, null]);
    const lines = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; i?: number; level: number; err?: { message: string } });
    expect(lines.filter((l) => l.msg === 'line').map((l) => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(lines).toHaveLength(2001);
    expect(lines.at(-1)).toMatchObject({ level: 60, msg, err: { message } });
  });
});
