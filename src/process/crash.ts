// What `serve` does when a bug escapes every handler (an uncaught exception
// or an unhandled rejection): the reason goes into the JSON log as its last
// line, after every line logged before it, and the process exits 1.
//
// Not "logger.fatal, then process.exit(1)" at once. The log's writer
// (logger.ts) writes asynchronously, and one of its writes may be under way on
// libuv's thread pool right then (blocked on a full stdout pipe while a log
// collector reads slowly, say). pino's fatal() writes everything still
// buffered synchronously, beside that write rather than after it: lines
// logged before the crash came after the fatal one (seen in
// test/process/shutdown.test.ts under load; test/process/crash.test.ts holds
// the write deterministically), and two writes into a full pipe can
// interleave, cutting a line in two (seen with a log reader that started
// late). So the crash first lets the writer finish what it has, in order
// (flushLogs, bounded by `timeoutMs`), then logs the reason and exits. The
// process runs on for those milliseconds; a second crash meanwhile logs and
// exits at once.
import { flushLogs, type Logger } from '../logger.js';

export function exitOnCrash(logger: Logger, timeoutMs = 2000): void {
  let crashing = false;
  const crash = (msg: string) => (err: unknown) => {
    if (crashing) {
      logger.fatal({ err }, msg);
      process.exit(1);
    }
    crashing = true;
    void flushLogs(logger, timeoutMs).then(() => {
      logger.fatal({ err }, msg);
      process.exit(1);
    });
  };
  process.on('uncaughtException', crash('uncaught exception: exiting'));
  process.on('unhandledRejection', crash('unhandled promise rejection: exiting'));
}
