// Logs 3000 lines of about 560 bytes through createLogger (dist/, built by
// `npm test`) as fast as it can, then reports on stderr the largest single
// write(2) its stdout destination made. argv: the logger module's path, and
// `shared` for the option `serve` uses when processes share stdout.
import { pino } from 'pino';

const { createLogger, flushLogs } = await import(process.argv[2]);
const logger = createLogger('info', undefined, { sharedStdout: process.argv[3] === 'shared' });
const sizes = [];
logger[pino.symbols.streamSym].on('write', (n) => sizes.push(n));
for (let i = 0; i < 3000; i += 1) logger.info({ i, pad: 'x'.repeat(500) }, 'line');
await flushLogs(logger);
process.stderr.write(JSON.stringify({ largestWrite: Math.max(...sizes), writes: sizes.length }));
