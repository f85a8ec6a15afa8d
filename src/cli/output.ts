// Printing is kept apart from the commands: a command returns data, and the
// CLI shows it either as JSON (--json, for scripts) or as text for humans.
import { once } from 'node:events';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => (Array.isArray(v) ? v.join(',') : v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
}

export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [k, v] of Object.entries(record)) {
    process.stdout.write(`${k.padEnd(width)}  ${Array.isArray(v) ? v.join(', ') : String(v)}\n`);
  }
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * stdout for a long stream (`audit export`): waits when the reader is slower
 * than the database (backpressure), and fails instead of hanging or crashing
 * when the reader goes away (EPIPE from `| head`, a dead forwarder).
 */
export class StdoutStream {
  private failure: Error | undefined;
  private readonly onError = (err: Error) => {
    this.failure = err;
  };

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    // Never removed: an EPIPE can still arrive after the last write.
    out.on('error', this.onError);
  }

  async write(chunk: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.out.write(chunk)) return;
    // once() rejects if 'error' comes first.
    await once(this.out, 'drain');
  }
}
